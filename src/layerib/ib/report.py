"""Per-layer MI report of a finished net: fresh critics, held-out averages, the truth beside them.

Each layer's I(Y; L_i) and I(X; L_i + eps) (AA-MINE, tied encoder, frozen net) are
measured the same way for every method, so CE and IB nets are compared on equal
terms: new critics of the run's estimator settings (``y_bound``/``y_critic``,
``x_bound``/``x_critic``; by default InfoNCE with the exact class marginal for
I(Y; L) and InfoNCE with the parameter-free Gaussian critic for I(X; L + eps)) are
trained on the training-set features, then the plain bound is averaged over
held-out (test-set) batches (:func:`layerib.mi.protocol.heldout_estimate`). The
Monte-Carlo ground truth of I(X; L_i + eps) and the layer's output scale (RMS) are
reported beside the estimate, with flags where the estimate is not to be trusted.
"""

from __future__ import annotations

import math

import torch
from tqdm.auto import tqdm

from layerib.ib.cache import as_tensor
from layerib.ib.layerwise import output_rms
from layerib.ib.objective import aa_estimator, label_estimator
from layerib.mi.ground_truth import mixture_mi
from layerib.mi.protocol import heldout_estimate, train_estimator

#: relative distance of an I(X; L + eps) estimate from its Monte-Carlo truth beyond which it
#: is flagged ``off_truth`` (where the truth is below ln B - 1, so a batch estimate can reach it)
TRUTH_TOLERANCE = 0.10


def mi_flags(value: float, truth: float | None, ln_b: float, bound: str) -> list[str]:
    """Flags of one reported I(X; L + eps) estimate (nats): ``non_finite``, ``negative``,
    ``exceeds_ln_batch``, ``saturated`` (InfoNCE within 1 % of ln B), ``off_truth`` (more than
    :data:`TRUTH_TOLERANCE` from a Monte-Carlo truth that is below ln B - 1)."""
    if not math.isfinite(value):
        return ["non_finite"]
    flags = []
    if value < 0:
        flags.append("negative")
    if value > ln_b:
        flags.append("exceeds_ln_batch")
    if bound == "infonce" and value >= 0.99 * ln_b:
        flags.append("saturated")
    if truth is not None and truth < ln_b - 1 and abs(value - truth) > TRUTH_TOLERANCE * max(truth, 1e-3):
        flags.append("off_truth")
    return flags


def layer_mi_report(feats: list[torch.Tensor], y: torch.Tensor, feats_test: list[torch.Tensor],
                    y_test: torch.Tensor, prior: torch.Tensor, cfg, seed: int = 0,
                    progress: bool = False) -> list[dict]:
    """One dict per layer: ``index`` (1-based), ``i_y_nats``, ``i_x_nats``, their details.

    Args:
        feats, feats_test: per-layer features ``(N, d_i)`` / ``(N_test, d_i)`` (tensors, or
            :class:`~layerib.ib.cache.DiskRows` read per batch / per layer).
        y, y_test: int64 labels; prior: ``(num_classes,)`` training class frequencies.
        cfg: the run's :class:`~layerib.config.TrainConfig` (critic sizes, noise
            variance, ``mi_eval_epochs``, ``mi_eval_batch_size``, ``min_steps_per_layer``).
        progress: show a progress bar over layers.

    ``i_x_monte_carlo_nats`` is the Monte-Carlo ground truth of I(X; L_i + eps)
    for X uniform on the held-out set (:func:`~layerib.mi.ground_truth.mixture_mi`),
    beside the AA-MINE estimate; ``output_rms`` the layer's held-out output scale;
    ``flags`` those of :func:`mi_flags`. Each MI entry's details give stderr, B, ln B,
    N and the ln B flag; values are nats.
    """
    out = []
    bs = min(cfg.mi_eval_batch_size, len(y_test) // 2)
    bar = tqdm(total=len(feats), desc="MI report", leave=False, disable=not progress)
    for i, (f, ft) in enumerate(zip(feats, feats_test), start=1):
        ft = as_tensor(ft)  # a layer's held-out features, in memory while it is measured
        torch.manual_seed(seed + i)
        n_batches = max(len(f) // min(bs, len(f)), 1)
        epochs = max(cfg.mi_eval_epochs, math.ceil(min(cfg.min_steps_per_layer, 1000) / n_batches))
        est_y = label_estimator(f.shape[1], prior, cfg.critic_hidden, cfg.ema_rate, cfg.y_bound,
                                cfg.y_critic).to(f.device)
        train_estimator(est_y, f, y, epochs=epochs, batch_size=bs, lr=cfg.lr_critic, seed=seed + i)
        ry = heldout_estimate(est_y, ft, y_test, bs, seed=seed + i)
        est_x = aa_estimator(f.shape[1], cfg.noise_var, cfg.critic_hidden, cfg.ema_rate,
                             cfg.x_critic, cfg.x_marginal, cfg.x_bound).to(f.device)
        if not (cfg.x_bound == "infonce" and cfg.x_critic == "gaussian"):  # else nothing to fit
            train_estimator(est_x, f, f, epochs=epochs, batch_size=bs, lr=cfg.lr_critic,
                            noise_var=cfg.noise_var, seed=seed + i)
        rx = heldout_estimate(est_x, ft, ft, bs, noise_var=cfg.noise_var, seed=seed + i)
        mc = mixture_mi(ft, cfg.noise_var, n_samples=2048,  # float64 inside, distinct rows only
                        generator=torch.Generator().manual_seed(seed + i))
        out.append({"index": i, "width": f.shape[1], "i_y_nats": ry.value,
                    "i_x_nats": rx.value, "i_x_monte_carlo_nats": mc.value,
                    "i_x_monte_carlo_stderr": mc.stderr, "batch_size": bs, "noise_var": cfg.noise_var,
                    "output_rms": output_rms(ft),
                    "flags": mi_flags(rx.value, mc.value, rx.ln_batch, rx.bound),
                    "i_y": ry.to_dict(), "i_x": rx.to_dict()})
        bar.update()
    bar.close()
    return out
