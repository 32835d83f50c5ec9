"""``layerib.measure_layers``: every named layer's I(X; L + eps) and I(Y; L) for ANY ``nn.Module``."""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from layerib.api.data import as_labelled
from layerib.api.result import LayerMI, layer_mi_from_report
from layerib.config import config_from_dict
from layerib.errors import ConfigError
from layerib.models.taps import LayerTaps


def measure_layers(model: nn.Module, data: Any, layers: Sequence[str], *, noise_var: float,
                   train_data: Any = None, x_critic: str = "mixture", bound: str = "dv",
                   steps: int = 300, batch_size: int = 512, seed: int = 0,
                   labels: bool = True) -> list[LayerMI]:
    """I(X; L + eps) by AA-MINE beside its Monte-Carlo truth, and I(Y; L), per named layer.

    The layers' outputs come from forward hooks (:class:`~layerib.models.taps.LayerTaps`,
    eval mode, no gradients; the model is left as it was), flattened to ``(N, d)``. The
    critics are fitted on ``train_data`` (default: a seeded half of ``data``) and reported
    on the other rows by the protocol of ``layerib estimate``
    (:func:`layerib.mi.recipes.estimate_x` / ``estimate_y``: held-out averages over random
    batches with their standard error, B, ln B, a shuffled-pairs baseline). The truth is the
    Monte-Carlo I(X; L + eps) for X uniform on the held-out rows
    (:func:`layerib.mi.ground_truth.mixture_mi`).

    Args:
        model: any module; ``layers``: names as in ``model.named_modules()``.
        data: ``(x, y)`` tensors or numpy arrays or a ``Dataset`` of ``(x, label)`` (held out).
        noise_var: sigma^2 > 0 of eps, in squared units of the layers' outputs.
        train_data: data to fit the critics on (default: half of ``data``).
        x_critic: the AA-MINE critic (``mixture``, default: exact Gaussian term and a mixture
            over training features; ``gaussian``, ``concat``, ``separable``); bound: ``dv``
            (default), ``nwj`` or ``infonce`` (:mod:`layerib.mi.recipes`).
        steps, batch_size, seed: critic training steps, the batch size B, the seed.
        labels: also estimate I(Y; L) (label critic, exact class marginal).

    Returns:
        One :class:`~layerib.api.result.LayerMI` per name, in order.

    Raises:
        ConfigError: unknown layer names or critic/bound names, a bad ``noise_var``, too
            few rows for two held-out batches, data of the wrong type.
    """
    from layerib.ib.layerwise import output_rms
    from layerib.ib.report import mi_flags
    from layerib.mi.ground_truth import mixture_mi
    from layerib.mi.recipes import CriticSettings, estimate_x, estimate_y
    config_from_dict({"noise_var": noise_var})  # one-line error for a bad variance
    x, y = as_labelled(data, "data")
    if train_data is None:
        perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
        half = len(x) // 2
        (x_tr, y_tr), (x, y) = (x[perm[:half]], y[perm[:half]]), (x[perm[half:]], y[perm[half:]])
    else:
        x_tr, y_tr = as_labelled(train_data, "train_data")
    bs = min(batch_size, len(x) // 2)
    if bs < 2:
        raise ConfigError(f"{len(x)} held-out rows give no two batches; pass more data")
    dev = next((p.device for p in model.parameters()), torch.device("cpu"))
    taps = LayerTaps(model, layers)
    feats_tr, feats_te = taps.on(x_tr.to(dev)), taps.on(x.to(dev))
    s = CriticSettings(steps=steps, batch_size=bs, seed=seed, baseline=True)
    prior = torch.bincount(y_tr, minlength=int(max(y.max(), y_tr.max())) + 1).float() / len(y_tr)
    out = []
    for i, (name, f_tr, f_te) in enumerate(zip(layers, feats_tr, feats_te), start=1):
        rx = estimate_x(x_critic, bound, f_tr, f_tr, f_te, f_te, noise_var, s)
        ry = estimate_y(bound, f_tr, y_tr.to(dev), f_te, y.to(dev), prior.to(dev), s) if labels else None
        mc = mixture_mi(f_te.double(), noise_var, n_samples=4096,
                        generator=torch.Generator(device=f_te.device).manual_seed(seed + i))
        out.append(layer_mi_from_report({
            "index": i, "width": f_te.shape[1], "noise_var": noise_var, "i_x": rx.to_dict(),
            "i_x_monte_carlo_nats": mc.value, "i_x_monte_carlo_stderr": mc.stderr,
            "i_y": ry.to_dict() if ry is not None else None, "output_rms": output_rms(f_te),
            "flags": mi_flags(rx.value, mc.value, rx.ln_batch, rx.bound)}, name=name))
    return out
