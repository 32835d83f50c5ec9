"""Layer-by-layer IB training (Elad et al. 2019, Sec. 4; NOTES.md Sec. 4).

For i = 1 .. K: layer i is trained on the cached output of the frozen layers
1 .. i-1, with its critics (one Adam optimiser for the critics, its own for the
layer) maximising their bounds and the layer maximising I(Y; L_i) - beta
I(X; L_i + eps); then it is frozen and its output on the whole data set is
cached for layer i+1. ``critic_update="alternating"`` (the paper's scheme)
makes ``critic_steps`` critic updates, then one layer update against the updated
critics.

With ``critic_update="joint"`` one forward and one backward pass per step
update the label critic and the layer together (each with its own Adam). This
is exact gradient ascent on both, not an approximation of the alternating
scheme, when the two ascend the same function of the critic's parameters: the
label critic's training objective is its InfoNCE bound itself (``y_bound``
infonce, no EMA-corrected surrogate), and the AA-MINE term has no trained
parameters (``x_critic`` gaussian with ``x_bound`` infonce, where q(z) cancels;
``IBObjective.q_free``). The Lagrangian I(Y; L) - beta I(X; L + eps) then has
the critic's gradient of I(Y; L) alone. It differs from alternating in that the
layer's step uses the critic from before (not after) this step's critic update;
it saves one label-critic forward and backward pass per step.

``layer_first`` (alternating only) makes the layer's step against the critics from
before this step's critic updates, the order of the joint update (with InfoNCE bounds and
one critic step it is the joint update). In the paper's order the layer follows a critic
just fitted to the same batch, and its output grows without a brake below beta ~ 1 (on
MNIST 1 % layer 1's RMS 0.3 -> 9, then 80-95 % of layer 2's ReLUs dead: 16-55 % test
accuracy at beta = 0.1, issue 15; ``examples/probe_stage.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from layerib.utils.rng import rng_state, set_rng_state
from layerib.utils.optim import adam
from layerib.errors import ConfigError, NumericalError
from layerib.ib.objective import IBObjective
from layerib.mi.protocol import heldout_estimate

log = logging.getLogger(__name__)


@dataclass
class StageSettings:
    """What one layer stage needs from the run's config (see :class:`TrainConfig`)."""

    beta: float
    noise_var: float
    batch_size: int
    steps: int
    steps_per_epoch: int
    lr_layer: float
    lr_critic: float
    critic_steps: int
    critic_hidden: int
    ema_rate: float
    x_marginal: str
    x_critic: str
    x_bound: str
    y_bound: str
    weight_decay: float
    grad_clip: float | None
    evals_per_layer: int
    eval_batch_size: int
    y_critic: str = "concat"
    #: "alternating" or "joint" (already resolved: ``TrainConfig``'s "auto" is resolved by
    #: :func:`layerib.config.resolve_critic_update` in ``train._layer_settings``)
    critic_update: str = "alternating"
    #: how the label critic reads L: "none" (as it is), "rms" or "standard" (divided by the
    #: batch RMS, and centred: a scale-invariant I(Y; L); see LabelCritic; issue 15)
    y_input_norm: str = "none"
    #: alternating only: the layer's step comes first, against the critics as they were
    #: before this step's critic updates (as in "joint"); False: after them (the paper's order)
    layer_first: bool = False


def _check_finite(value: torch.Tensor | None, term: str, layer: int, step: int) -> None:
    if value is not None and not torch.isfinite(value).all():
        raise NumericalError(f"non-finite {term} at layer {layer}, step {step}; lower the learning "
                             "rates or set grad_clip (the last good checkpoint is kept)")


def _step(opt: torch.optim.Optimizer, loss: torch.Tensor, params, clip: float | None) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()


def _layer_step(obj, layer, l, yb, z, opt_l, s, index, step):
    """One layer update on the Lagrangian with the critics frozen; returns its I(X) term."""
    obj.requires_grad_(False)
    lagrangian, _, ix_layer = obj.layer_objective(l, yb, z)
    _check_finite(lagrangian, "IB Lagrangian", index, step)
    _step(opt_l, -lagrangian, list(layer.parameters()), s.grad_clip)
    obj.requires_grad_(True)
    return ix_layer


def train_layer(layer: nn.Module, index: int, h: torch.Tensor, y: torch.Tensor,
                prior: torch.Tensor, dim: int, s: StageSettings, g: torch.Generator,
                heldout: tuple[torch.Tensor, torch.Tensor] | None = None,
                on_eval: Callable[[dict], None] | None = None,
                progress: Callable[[int], None] | None = None,
                resume: dict | None = None,
                on_checkpoint: Callable[[int, Callable[[], dict]], None] | None = None
                ) -> IBObjective:
    """Train one layer with the IB objective; returns the stage's trained critics.

    ``s.critic_update``: ``"alternating"`` (``critic_steps`` critic updates, then one
    layer update) or ``"joint"`` (one shared pass; see the module docstring).

    Args:
        layer: the layer to train, mapping ``h`` ``(N, ...)`` to ``(N, dim)``.
        index: its 1-based position (for messages and metrics).
        h: cached input of the layer (output of frozen layers 1..i-1), ``(N, ...)``.
        y: int64 labels ``(N,)``; prior: ``(num_classes,)`` class frequencies.
        s: stage settings; g: generator for batches and noise.
        heldout: ``(h_test, y_test)`` for held-out MI estimates, ``evals_per_layer`` times.
        on_eval: called with one metrics record per evaluation.
        progress: called with the number of steps just done.
        resume: a dict returned by ``on_checkpoint``'s state function: the stage
            continues from it (the layer's weights must already be restored) and
            ends exactly as an uninterrupted stage would.
        on_checkpoint: called after every step as ``on_checkpoint(step, state)``;
            ``state()`` returns the stage's resumable state (step, batch
            permutation and position, critics with MINE's moving averages, both
            optimisers, generator states).

    Raises:
        NumericalError: a bound or the loss became non-finite (names layer, step, term).
        ConfigError: ``critic_update="joint"`` with settings under which it is not exact.
    """
    obj = IBObjective(dim, prior, s.beta, s.noise_var, s.critic_hidden, s.ema_rate,
                      s.x_critic, s.x_marginal, s.x_bound, s.y_bound, s.y_critic,
                      s.y_input_norm).to(h.device)
    critics = list(obj.parameters())
    joint = s.critic_update == "joint"
    if joint and not (obj.q_free and s.y_bound == "infonce" and s.critic_steps == 1):
        raise ConfigError("critic_update='joint' needs y_bound='infonce', the q-free AA-MINE "
                          "critic (x_critic='gaussian', x_bound='infonce') and critic_steps=1; "
                          "use critic_update='alternating'")
    opt_c = adam(critics, lr=s.lr_critic)
    opt_l = adam(layer.parameters(), lr=s.lr_layer, weight_decay=s.weight_decay)
    layer.train()
    n, bs = len(h), min(s.batch_size, len(h))
    step, sums = 0, {"i_y": 0.0, "i_x": 0.0, "n": 0}
    perm, start = None, 0
    if resume is not None:
        obj.load_state_dict(resume["obj"])
        opt_c.load_state_dict(resume["opt_c"])
        opt_l.load_state_dict(resume["opt_l"])
        step, sums, perm, start = resume["step"], dict(resume["sums"]), resume["perm"], resume["start"]
        perm = perm.to(h.device)
        set_rng_state(g, resume["rng"])
    eval_interval = max(s.steps // s.evals_per_layer, 1)
    while step < s.steps:
        if perm is None or start + bs > n:  # a new epoch: a fresh permutation
            perm, start = torch.randperm(n, generator=g, device=h.device), 0
        idx = perm[start:start + bs]
        start += bs
        hb, yb = h[idx], y[idx]
        l = layer(hb).flatten(1)
        z = l + obj.sample_noise(l, g)  # L + eps; eps only measures, the net stays deterministic
        if joint:  # one pass: the critic ascends I(Y;L), the layer the Lagrangian
            lagrangian, iy, ix_layer = obj.layer_objective(l, yb, z)
            if not torch.isfinite(lagrangian):  # one check per step; then name the culprit
                _check_finite(iy, "critic objective", index, step)
                _check_finite(lagrangian, "IB Lagrangian", index, step)
            opt_c.zero_grad(set_to_none=True)
            opt_l.zero_grad(set_to_none=True)
            (-lagrangian).backward()
            if s.grad_clip:
                torch.nn.utils.clip_grad_norm_(critics, s.grad_clip)
                torch.nn.utils.clip_grad_norm_(list(layer.parameters()), s.grad_clip)
            opt_c.step()
            opt_l.step()
            iy = iy.detach()
        else:
            if s.layer_first:  # the layer steps against the critic before its update
                ix_layer = _layer_step(obj, layer, l, yb, z, opt_l, s, index, step)
            for _ in range(s.critic_steps):
                surrogate, iy, ix = obj.critic_objective(l, yb, z)
                _check_finite(surrogate, "critic objective", index, step)
                _step(opt_c, -surrogate, critics, s.grad_clip)
            if not s.layer_first:
                ix_layer = _layer_step(obj, layer, l, yb, z, opt_l, s, index, step)
        if s.x_bound == "infonce":  # the value the layer saw (before its update)
            if ix_layer is None:  # beta = 0: the term is only reported
                with torch.no_grad():
                    ix_layer = obj.i_x_value(l, z)
            ix = ix_layer
        # accumulated on the device in float64: no device-to-host copy per step
        sums["i_y"] = sums["i_y"] + iy.detach().double()
        sums["i_x"] = sums["i_x"] + ix.detach().double()
        sums["n"] += 1
        step += 1
        if progress:
            progress(1)
        if step % eval_interval == 0 or step == s.steps:
            if on_eval:
                epoch = step / s.steps_per_epoch
                on_eval(_stage_record(layer, obj, index, step, epoch, sums, heldout, s))
            sums = {"i_y": 0.0, "i_x": 0.0, "n": 0}
        if on_checkpoint:
            on_checkpoint(step, lambda: {
                "step": step, "perm": perm, "start": start, "sums": dict(sums),
                "obj": obj.state_dict(), "opt_c": opt_c.state_dict(),
                "opt_l": opt_l.state_dict(), "rng": rng_state(g)})
    return obj


def _stage_record(layer, obj: IBObjective, index, step, epoch, sums, heldout, s) -> dict:
    rec = {"stage": "layer", "layer": index, "epoch": epoch, "step": step,
           "beta": s.beta, "noise_var": s.noise_var,
           "train_i_y_nats": float(sums["i_y"]) / max(sums["n"], 1),
           "train_i_x_nats": float(sums["i_x"]) / max(sums["n"], 1)}
    if heldout is not None:
        h_test, y_test = heldout
        with torch.inference_mode():
            layer.eval()
            l_test = layer(h_test).flatten(1)
            layer.train()
        bs = min(s.eval_batch_size, len(l_test) // 2)
        rec["test_i_y_nats"] = heldout_estimate(obj.i_y, l_test, y_test, bs, seed=step).value
        rec["test_i_x_nats"] = heldout_estimate(obj.reported_i_x, l_test, l_test, bs,
                                                noise_var=s.noise_var, seed=step).value
        rec["eval_batch_size"] = bs
        # the output's scale beside the noise's (sigma per unit): per-element RMS, mean
        # per-unit std over the held-out set, and the fraction of units zero on all of it
        rec["test_rms"] = float(l_test.pow(2).mean().sqrt())
        rec["test_unit_std"] = float(l_test.std(0).mean())
        rec["test_dead_units"] = float((l_test.abs().amax(0) == 0).float().mean())
    return rec


@torch.inference_mode()
def forward_cached(layer: nn.Module, h: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """The frozen layer's output on the whole cache, in chunks: ``(N, ...)``."""
    layer.eval()
    return torch.cat([layer(h[s:s + chunk]) for s in range(0, len(h), chunk)])
