"""Critic fitting with early stopping on a validation bound: :func:`fit_early_stopping`.

A critic trained long on a fixed sample over-fits: its training bound keeps rising while its
value on new rows falls (5 000 steps on 2 500 rows gave held-out values of -2.5 to -282
nats). Here the plain bound is measured every ``eval_every`` steps on validation rows (fixed
batches and fixed noise, so the values are comparable), training stops after ``patience``
evaluations without improvement, and the best critic is restored. An improvement counts
only when it exceeds ``min_improve`` standard errors of the validation value: a critic
that is near its optimum from the start (the mixture critic of AA-MINE gained 0.005 nats
in 4 000 steps, 0.1 of a standard error) then stops after ``patience`` checks instead of
running every step.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import torch

from layerib.mi.channel import RowNoise
from layerib.mi.evaluation import heldout_terms
from layerib.mi.estimators import MIEstimator
from layerib.mi.protocol import check_finite
from layerib.utils.optim import adam


@dataclass
class FitLog:
    """What :func:`fit_early_stopping` did (validation values in nats)."""

    best_value: float = -math.inf   # best validation bound
    best_step: int = 0              # training steps of the restored critic
    steps: int = 0                  # steps run
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, validation value)


def fit_early_stopping(est: MIEstimator, u: torch.Tensor, v: torch.Tensor, u_val: torch.Tensor,
                       v_val: torch.Tensor, *, batch_size: int, eval_batch_size: int, lr: float,
                       max_steps: int, eval_every: int, patience: int, seed: int = 0,
                       noise_var: float | None = None, min_improve: float = 0.0) -> FitLog:
    """Train ``est`` (in place) on ``(u, v)``, keep the critic with the best validation bound.

    Args:
        est: fresh estimator; trained in place and left holding the best critic.
        u, v: ``(n, ...)`` training rows; u_val, v_val: ``(n_val, ...)`` validation rows.
        batch_size: B of training batches; eval_batch_size: B of validation batches.
        lr: Adam learning rate. max_steps: step limit. eval_every: steps between validations.
        patience: validations without improvement before stopping.
        seed: seeds batch order and noise.
        noise_var: when set, fresh ``N(0, noise_var I)`` noise is added to v per training
            batch; the validation noise is fixed (a :class:`RowNoise`: the same per row at every check).
        min_improve: a validation value must beat the best by more than this many of its
            standard errors (over validation rows) to count as an improvement.

    Returns:
        A :class:`FitLog`.

    Raises:
        NumericalError: a training or validation value, or a weight, became non-finite.
    """
    g = torch.Generator(device=u.device).manual_seed(seed)
    opt = adam(est.parameters(), lr=lr)
    sd = math.sqrt(noise_var) if noise_var else 0.0
    # the validation rows' fixed noise, drawn per row when read (never held whole)
    val_noise = RowNoise(len(v_val), tuple(v_val.shape[1:]), sd, seed + 29, u.device) if sd else None
    log, best_state, bad = FitLog(), _changing_state(est), 0
    n, bs = len(u), min(batch_size, len(u))
    perm, pos = torch.randperm(n, generator=g, device=u.device), 0
    for step in range(1, max_steps + 1):
        if pos + bs > n:
            perm, pos = torch.randperm(n, generator=g, device=u.device), 0
        idx = perm[pos:pos + bs]
        pos += bs
        vb = v[idx] + sd * torch.randn(v[idx].shape, generator=g, device=u.device) if sd else v[idx]
        surrogate, value = est.objective(u[idx], vb)
        check_finite(est, step, surrogate, value)
        opt.zero_grad(set_to_none=True)
        (-surrogate).backward()
        opt.step()
        log.steps = step
        if step % eval_every and step != max_steps:
            continue
        terms = heldout_terms(est, u_val, v_val, eval_batch_size, val_noise, seed + 1)
        val = float(terms.mean())
        log.curve.append((step, val))
        check_finite(est, step, torch.tensor(val), weights=True)
        se = float(terms.std() / math.sqrt(len(terms))) if len(terms) > 1 else 0.0
        if val > log.best_value + min_improve * se:
            log.best_value, log.best_step, bad = val, step, 0
            best_state = _changing_state(est)
        else:
            bad += 1
            if bad >= patience:
                break
    est.load_state_dict({**est.state_dict(), **best_state})
    return log


def _changing_state(est: MIEstimator) -> dict[str, torch.Tensor]:
    """Copies of the entries of ``est.state_dict()`` that training can change: all but the
    parameters that require no gradient (the mixture critic's fixed centres: 134 MB at
    2048 x 16 384, copied at every improvement otherwise)."""
    fixed = {name for name, p in est.named_parameters() if not p.requires_grad}
    return {k: copy.deepcopy(v) for k, v in est.state_dict().items() if k not in fixed}
