"""Layer-by-layer IB training (Elad et al. 2019, Sec. 4; ``docs/design.md``).

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
parameters (``x_critic`` gaussian with ``x_bound`` infonce; ``IBObjective.q_free``).
The Lagrangian I(Y; L) - beta I(X; L + eps) then has the critic's gradient of
I(Y; L) alone. It differs from alternating in that the layer's step uses the
critic from before (not after) this step's critic update; it saves one
label-critic forward and backward pass per step.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from layerib.config import TrainConfig, resolve_critic_update
from layerib.errors import ConfigError, NumericalError
from layerib.ib.cache import chunk_rows, fill_rows
from layerib.ib.callbacks import CallbackList, Hooks
from layerib.ib.endtoend import stage_limit, steps_for
from layerib.ib.objective import IBObjective, trainer_settings
from layerib.ib.stage import StageSpec, run_stage, with_phase
from layerib.mi.critics import label_view
from layerib.mi.protocol import heldout_estimate
from layerib.utils.early import EarlyStopping
from layerib.utils.loop import BatchLoop
from layerib.utils.optim import adam, scheduled_lr, set_lr
from layerib.utils.precision import training_autocast
from layerib.utils.rng import rng_state, set_rng_state


def stage_steps(cfg: TrainConfig, n: int) -> tuple[int, int]:
    """``(steps, steps per epoch)`` of one layer stage on ``n`` rows."""
    return steps_for(n, cfg.batch_size, cfg.epochs_per_layer, cfg.min_steps_per_layer)


def make_objective(cfg: TrainConfig, dim: int, prior: torch.Tensor,
                   shape: tuple[int, ...] | None = None) -> IBObjective:
    """The stage's :class:`IBObjective` for a layer of (flattened) output size ``dim``.

    ``shape``: one row's unflattened output shape; with ``cfg.y_pool >= 1`` and a ``(C, H, W)``
    shape the label critic reads each channel averaged over a ``y_pool x y_pool`` grid
    (:func:`~layerib.mi.critics.label_view`); without it (None) the flattened output."""
    view = label_view(tuple(shape), cfg.y_pool) if shape is not None else None
    return IBObjective(dim, prior, cfg.effective_beta, cfg.noise_var,
                       settings=trainer_settings(cfg.critic_hidden, cfg.ema_rate, cfg.y_input_norm),
                       x_critic=cfg.x_critic, x_marginal=cfg.x_marginal, x_bound=cfg.x_bound,
                       y_bound=cfg.y_bound, y_critic=cfg.y_critic, y_view=view)


def _check_finite(value: torch.Tensor | None, term: str, layer: int, step: int) -> None:
    if value is not None and not torch.isfinite(value).all():
        raise NumericalError(f"non-finite {term} at layer {layer}, step {step}; lower the learning "
                             "rates or set grad_clip (the last good checkpoint is kept)")


class LayerUpdate:
    """One step of a layer stage: critic and layer updates, joint or alternating.

    With ``cfg.precision="bfloat16"`` the layer's forward pass runs under
    :func:`~layerib.utils.precision.training_autocast`; its output is cast to float32
    before the critics read it. Calling it with a batch ``(h (B, ...), y (B,))`` draws the measuring noise from
    ``g``, updates the critics and the layer, and returns this batch's training
    ``(i_y, i_x)`` (nats, detached): the values the layer saw before its update.
    ``critic_update``: ``"joint"`` or ``"alternating"`` as the run resolved it
    (:class:`~layerib.ib.trainers.RunSettings`); None resolves ``cfg.critic_update``.

    Raises:
        ConfigError: ``critic_update="joint"`` with settings under which it is not exact.
        NumericalError: a bound or the loss became non-finite (names layer, step, term).
    """

    def __init__(self, layer: nn.Module, obj: IBObjective, cfg: TrainConfig, index: int,
                 critic_update: str | None = None):
        self.layer, self.obj, self.index, self.clip = layer, obj, index, cfg.grad_clip
        self.critics = obj.critic_parameters()
        self.joint = (critic_update or resolve_critic_update(cfg)) == "joint"
        self.critic_steps, self.layer_first = cfg.critic_steps, cfg.layer_first
        self.precision = cfg.precision
        if self.joint and not (obj.q_free and cfg.y_bound == "infonce" and cfg.critic_steps == 1):
            raise ConfigError("critic_update='joint' needs y_bound='infonce', the q-free AA-MINE "
                              "critic (x_critic='gaussian', x_bound='infonce') and critic_steps=1; "
                              "use critic_update='alternating'")
        self.opt_c = adam(self.critics, lr=cfg.lr_critic)
        self.opt_l = adam(layer.parameters(), lr=cfg.lr_layer, weight_decay=cfg.weight_decay)

    def state_dict(self) -> dict:
        return {"obj": self.obj.state_dict(), "opt_c": self.opt_c.state_dict(),
                "opt_l": self.opt_l.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.obj.load_state_dict(state["obj"])
        self.opt_c.load_state_dict(state["opt_c"])
        self.opt_l.load_state_dict(state["opt_l"])

    def _apply(self, loss: torch.Tensor, opts, params) -> None:
        for opt in opts:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip:
            for p in params:
                torch.nn.utils.clip_grad_norm_(p, self.clip)
        for opt in opts:
            opt.step()

    def _layer_step(self, l, yb, z, layer_params, step: int):
        """One layer update on the Lagrangian with the critics frozen; returns its I(X) term."""
        self.obj.requires_grad_(False)
        lagrangian, _, ix_layer = self.obj.layer_objective(l, yb, z)
        _check_finite(lagrangian, "IB Lagrangian", self.index, step)
        self._apply(-lagrangian, (self.opt_l,), (layer_params,))
        self.obj.requires_grad_(True)
        return ix_layer

    def __call__(self, hb: torch.Tensor, yb: torch.Tensor, g: torch.Generator, step: int):
        obj, i = self.obj, self.index
        with training_autocast(hb.device, self.precision):  # bfloat16: the layer's pass only
            l = self.layer(hb)
        l = l.float().flatten(1)  # the critics and bounds read float32
        z = l + obj.sample_noise(l, g)  # L + eps; eps only measures, the net stays deterministic
        layer_params = list(self.layer.parameters())
        if self.joint:  # one pass: the critic ascends I(Y;L), the layer the Lagrangian
            lagrangian, iy, ix_layer = obj.layer_objective(l, yb, z)
            if not torch.isfinite(lagrangian):  # one check per step; then name the culprit
                _check_finite(iy, "critic objective", i, step)
                _check_finite(lagrangian, "IB Lagrangian", i, step)
            self._apply(-lagrangian, (self.opt_c, self.opt_l), (self.critics, layer_params))
            ix = None
        else:
            if self.layer_first:  # the layer steps against the critics before their update
                ix_layer = self._layer_step(l, yb, z, layer_params, step)
            for _ in range(self.critic_steps):
                surrogate, iy, ix = obj.critic_objective(l, yb, z)
                _check_finite(surrogate, "critic objective", i, step)
                self._apply(-surrogate, (self.opt_c,), (self.critics,))
            if not self.layer_first:
                ix_layer = self._layer_step(l, yb, z, layer_params, step)
        if obj.x_bound == "infonce":  # the value the layer saw (before its update)
            if ix_layer is None:  # beta = 0: the term is only reported
                with torch.no_grad():
                    ix_layer = obj.i_x_value(l, z)
            ix = ix_layer
        return iy.detach(), ix.detach()


def layer_stage(layer: nn.Module, index: int, h: torch.Tensor, y: torch.Tensor,
                prior: torch.Tensor, cfg: TrainConfig, g: torch.Generator, spec: StageSpec,
                callbacks: CallbackList, *,
                heldout: tuple[torch.Tensor, torch.Tensor] | None = None,
                val: tuple[torch.Tensor, torch.Tensor] | None = None,
                lr_horizon: int | None = None,
                critic_update: str | None = None) -> tuple[IBObjective, int | None]:
    """One layer stage: ``layer`` trained with the IB objective of ``cfg`` (Elad et al. 2019,
    Eq. 2; :class:`LayerUpdate` per batch) for ``spec.limit`` steps (:func:`~layerib.ib.stage.run_stage`).

    Args:
        layer: the layer to train, mapping ``h`` ``(N, ...)`` to ``(N, ...)`` (flattened for
            the critics); index: its 1-based position (messages and records).
        h: its input (the frozen layers' output, cached or recomputed); y: int64 labels
            ``(N,)``; prior: ``(num_classes,)`` class frequencies; g: the generator of
            batches and noise.
        cfg: the settings (``beta`` resolved).
        spec: the stage (its budget ``steps``, ``limit``, ``phase``, ``resume``).
        callbacks: told of every step and record; a ``"layer"`` record (training and, with
            ``heldout=(h_test, y_test)``, held-out MI in nats) ``evals_per_layer`` times per
            stage (not in a search, whose records are its validation checks).
        val: ``(h_val, y_val)``, a validation split: ``val_checks`` times per budget
            :func:`validation_score` (``val_metric``) is the score of :class:`EarlyStopping`
            (``patience``); the layer keeps its best check's weights.
        lr_horizon: with ``cfg.lr_schedule="cosine"`` the layer's learning rate decays over
            this many steps (default ``spec.steps``); the critics keep ``lr_critic``.
        critic_update: ``"joint"`` or ``"alternating"`` as resolved for the run (None:
            :func:`~layerib.config.resolve_critic_update` of ``cfg``).

    Returns:
        ``(objective, best step)``: the stage's trained :class:`IBObjective` and its best
        validation check's step (None without ``val``).

    Raises:
        NumericalError, ConfigError: see :class:`LayerUpdate`.
    """
    steps, per_epoch = spec.steps, stage_steps(cfg, len(h))[1]
    with torch.no_grad():
        shape = tuple(layer.eval()(h[:2]).shape[1:])
    obj = make_objective(cfg, math.prod(shape), prior, shape).to(h.device)
    stopper = EarlyStopping(layer, cfg.patience) if val is not None else None
    limit = spec.limit
    update = LayerUpdate(layer.train(), obj, cfg, index, critic_update)
    loop = BatchLoop(len(h), cfg.batch_size, limit, g, h.device)
    sums = {"i_y": 0.0, "i_x": 0.0, "n": 0}
    if spec.resume is not None:
        update.load_state_dict(spec.resume["update"])
        sums = dict(spec.resume["sums"])
        set_rng_state(g, spec.resume["rng"])
        if stopper is not None:
            stopper.load_state_dict(spec.resume["early"])
    every, check = max(steps // cfg.evals_per_layer, 1), max(steps // cfg.val_checks, 1)
    horizon = lr_horizon or steps

    def step(idx: torch.Tensor) -> None:
        nonlocal sums
        if cfg.lr_schedule != "constant":  # a function of the step: resumes bit-identically
            set_lr(update.opt_l, scheduled_lr(cfg.lr_layer, loop.step - 1, horizon, cfg.lr_schedule))
        iy, ix = update(h[idx], y[idx], g, loop.step - 1)
        sums = {"i_y": sums["i_y"] + iy.double(), "i_x": sums["i_x"] + ix.double(),
                "n": sums["n"] + 1}  # on the device: no host copy per step
        if loop.step % every == 0 or loop.step == limit:
            if spec.phase != "search":  # a search writes only its validation checks
                callbacks.on_eval(with_phase(_stage_record(
                    layer, obj, index, loop.step, loop.step / per_epoch, sums, heldout, cfg),
                    spec.phase))
            sums = {"i_y": 0.0, "i_x": 0.0, "n": 0}
        if stopper is not None and (loop.step % check == 0 or loop.step == limit):
            score = validation_score(layer, obj, val, cfg.val_metric)
            if stopper.update(score, loop.step):
                loop.stop()
            callbacks.on_eval(with_phase({"stage": "validation", "layer": index, "step": loop.step,
                                          f"val_{cfg.val_metric}": score,
                                          "best_step": stopper.best_step}, spec.phase))

    run_stage(spec, loop, step, callbacks,
              state=lambda: {"update": update.state_dict(), "sums": dict(sums), "rng": rng_state(g),
                             "early": stopper.state_dict() if stopper is not None else None})
    if stopper is None:
        return obj, None
    stopper.restore()
    return obj, stopper.best_step


def train_layer(layer: nn.Module, index: int, h: torch.Tensor, y: torch.Tensor,
                prior: torch.Tensor, cfg: TrainConfig, g: torch.Generator, *,
                heldout: tuple[torch.Tensor, torch.Tensor] | None = None,
                val: tuple[torch.Tensor, torch.Tensor] | None = None,
                on_eval: Callable[[dict], None] | None = None,
                progress: Callable[[int], None] | None = None, steps: int | None = None,
                on_best: Callable[[int], None] | None = None,
                lr_horizon: int | None = None) -> IBObjective:
    """Train one layer with the IB objective of ``cfg``: :func:`layer_stage` with plain hooks.

    ``steps`` (None: :func:`stage_steps`; with ``val`` up to ``budget_extend`` times that
    while the validation score still improves, :func:`stage_limit`); ``on_eval(record)``
    gets every record, ``progress(1)`` every step, ``on_best(step)`` the best validation
    check's step at the end; the other arguments as for :func:`layer_stage`.

    Returns:
        The stage's trained :class:`IBObjective`.

    Raises:
        NumericalError, ConfigError: see :class:`LayerUpdate`.

    Example:
        >>> from layerib.models.mlp import mlp
        >>> x, y = torch.randn(64, 8), torch.arange(64) % 4
        >>> cfg = TrainConfig(batch_size=32, min_steps_per_layer=2, epochs_per_layer=1,
        ...                   critic_hidden=8, beta=0.01)
        >>> obj = train_layer(mlp((8,), (6, 4)).layers[0], 1, x, y, torch.full((4,), 0.25),
        ...                   cfg, torch.Generator().manual_seed(0))
    """
    steps = stage_steps(cfg, len(h))[0] if steps is None else steps
    spec = StageSpec(f"layer{index}", steps, stage_limit(steps, cfg.budget_extend, val is not None))
    obj, best = layer_stage(layer, index, h, y, prior, cfg, g, spec,
                            CallbackList([Hooks(progress, None, on_eval)]), heldout=heldout,
                            val=val, lr_horizon=lr_horizon)
    if best is not None and on_best:
        on_best(best)
    return obj


@torch.inference_mode()
def validation_score(layer: nn.Module, obj: IBObjective, val, metric: str = "i_y") -> float:
    """The stage's score on the validation split ``(h_val, y_val)``: its I(Y; L) bound (nats,
    ``metric="i_y"``) or the accuracy of its label critic used as a classifier,
    ``argmax_c T(l, c) + log p(c)`` (``"accuracy"``, a fraction)."""
    h_val, y_val = val
    was = layer.training
    layer.eval()
    l_val = torch.cat([layer(h_val[s:s + 4096]).flatten(1) for s in range(0, len(h_val), 4096)])
    layer.train(was)
    if metric == "accuracy":
        est = obj.i_y
        logits = est.critic.class_scores(l_val) + torch.log(est.prior.clamp_min(1e-30))
        return float((logits.argmax(1) == y_val).double().mean())
    return float(obj.i_y.value(l_val, y_val))


def _stage_record(layer, obj: IBObjective, index, step, epoch, sums, heldout, cfg) -> dict:
    rec = {"stage": "layer", "layer": index, "epoch": epoch, "step": step,
           "beta": cfg.effective_beta, "noise_var": cfg.noise_var,
           "train_i_y_nats": float(sums["i_y"]) / max(sums["n"], 1),
           "train_i_x_nats": float(sums["i_x"]) / max(sums["n"], 1)}
    if heldout is not None:
        h_test, y_test = heldout
        l_test = forward_cached(layer, h_test).flatten(1)  # in chunks: a conv unit's maps stay small
        layer.train()
        bs = min(cfg.mi_eval_batch_size, len(l_test) // 2)
        rec["test_i_y_nats"] = heldout_estimate(obj.i_y, l_test, y_test, bs, seed=step).value
        rec["test_i_x_nats"] = heldout_estimate(obj.reported_i_x, l_test, l_test, bs,
                                                noise_var=cfg.noise_var, seed=step).value
        rec["eval_batch_size"] = bs
        # the output's scale beside the noise's (sigma per unit): per-element RMS, mean
        # per-unit std over the held-out set, and the fraction of units zero on all of it
        rec["test_output_rms"] = output_rms(l_test)
        rec["test_unit_std"] = float(l_test.std(0).mean())
        rec["test_dead_units"] = float((l_test.abs().amax(0) == 0).float().mean())
    return rec


def output_rms(l: torch.Tensor) -> float:
    """Root-mean-square of a layer's output ``(N, d)``: ``sqrt(mean_k |l_k|^2 / d)``, in the
    layer's units. I(X; L + eps) depends on it relative to ``sqrt(noise_var)``."""
    if l.numel() <= 1 << 24:
        return float(l.double().pow(2).mean().sqrt())
    total = sum(float(c.double().pow_(2).sum()) for c in l.reshape(-1).split(1 << 22))
    return math.sqrt(total / l.numel())  # a large output: in float64 chunks of 4M values


@torch.inference_mode()
def forward_cached(layer: nn.Module, h: torch.Tensor, chunk: int | None = None) -> torch.Tensor:
    """The frozen layer's output on the whole cache, in chunks (of about 16 MiB of input, at most
    4096 rows: :func:`~layerib.ib.cache.chunk_rows`): ``(N, ...)``. ``h`` may be a
    :class:`~layerib.ib.cache.DiskRows`."""
    layer.eval()
    chunk = chunk or chunk_rows(h)
    return fill_rows((layer(h[s:s + chunk]) for s in range(0, len(h), chunk)), len(h))
