"""``layerib.measure_layers``: every named layer's I(X; L + eps) and I(Y; L) for ANY ``nn.Module``."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from layerib.api.data import as_labelled
from layerib.api.result import LayerMI, layer_mi_from_report
from layerib.mi.channel import GaussianChannel
from layerib.mi.rng import keeps_global_rng
from layerib.models.taps import LayerTaps


@keeps_global_rng
def measure_layers(model: nn.Module, data: Any, layers: Sequence[str], *, noise_var: float,
                   train_data: Any = None, seed: int = 0, labels: bool = True,
                   max_rows: int = 10000, **options) -> list[LayerMI]:
    """I(X; L + eps) by Monte Carlo (exact on the rows) with AA-MINE beside it, and I(Y; L), per named layer.

    For a deterministic net, I(X; L + eps) with X uniform on the held-out rows is computed
    exactly, up to its Monte-Carlo error, by :func:`~layerib.mi.ground_truth.mixture_mi`
    (Elad et al. 2019, Eq. 5): :attr:`LayerMI.i_x_nats` and the first number printed. The
    neural estimate is its cross-check; each flag has a reason and a remedy
    (:attr:`LayerMI.flag_reasons`). The global RNG states are left as they were.

    The layers' outputs come from forward hooks (:class:`~layerib.models.taps.LayerTaps`,
    eval mode, no gradients; the model is left as it was), flattened to ``(N, d)``. Each
    value is :func:`layerib.estimate_mi`'s, the protocol of the trainer's final report
    (:func:`layerib.ib.report.measure_layer`): its "auto" critics (I(X; L + eps): the
    mixture critic under DV; I(Y; L): the per-class heads critic with the exact class
    marginal under InfoNCE and DV) fitted on ``train_data``'s features (default: a seeded
    half of ``data``; at most ``max_rows`` rows), split into training and validation rows
    with early stopping on the validation bound, and the value reported on the held-out
    rows with a 95 % interval over those rows and critic restarts, a shuffled-pairs
    baseline and flags. The truth is the Monte-Carlo I(X; L + eps) for X uniform on the
    held-out rows (:func:`layerib.mi.ground_truth.mixture_mi`).

    Args:
        model: any module; ``layers``: names as in ``model.named_modules()``.
        data: ``(x, y)`` tensors or numpy arrays or a ``Dataset`` of ``(x, label)`` (held out).
        noise_var: sigma^2 > 0 of eps, in squared units of the layers' outputs.
        train_data: data to fit the critics on (default: half of ``data``).
        seed: seeds the split, the critics and the truth.
        labels: also estimate I(Y; L).
        max_rows: at most this many training rows fit the critics.
        **options: :class:`~layerib.mi.settings.EstimatorSettings` fields, e.g.
            ``restarts=1``, ``baseline=False``, ``eval_batch_size=512``,
            ``candidates=("mixture-dv",)`` (then for both terms: use names that fit both).

    Returns:
        One :class:`~layerib.api.result.LayerMI` per name, in order.

    Raises:
        ConfigError: unknown layer names or options, a bad ``noise_var``, too few rows
            (estimate_mi needs >= 16 rows per split), data of the wrong type.
        NumericalError: every candidate critic of a term diverged.
    """
    from layerib.ib.report import measure_layer
    GaussianChannel.check(noise_var)  # the one rule for sigma^2: a one-line error
    x, y = as_labelled(data, "data")
    if train_data is None:
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        half = len(x) // 2
        (x_tr, y_tr), (x, y) = (x[perm[:half]], y[perm[:half]]), (x[perm[half:]], y[perm[half:]])
    else:
        x_tr, y_tr = as_labelled(train_data, "train_data")
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    taps = LayerTaps(model, layers)
    feats_tr, feats_te = taps.on(x_tr.to(dev)), taps.on(x.to(dev))
    out = []
    for i, (name, f_tr, f_te) in enumerate(zip(layers, feats_tr, feats_te), start=1):
        entry = measure_layer(f_tr.cpu(), y_tr if labels else None, f_te.cpu(),
                              y if labels else None, noise_var, seed=seed + i,
                              max_rows=max_rows, mc_samples=4096, **options)
        out.append(layer_mi_from_report({"index": i, **entry}, name=name))
    return out
