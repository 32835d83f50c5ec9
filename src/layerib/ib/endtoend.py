"""Baselines and read-out: end-to-end cross-entropy training and the linear read-out.

* :func:`train_cross_entropy`: the same net trained end to end with CE, its
  last layer being the CE head (Elad et al. 2019, Table 1, "Cross-Entropy").
* :func:`fit_readout`: after layer-wise training, a linear layer fitted with CE
  on the frozen net's cached output (Sec. 4); accuracy comes only through it.

Both are :func:`ce_stage`, a stage of :mod:`layerib.ib.stage` (resumable, with callbacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from layerib.errors import NumericalError
from layerib.ib.callbacks import CallbackList, Hooks
from layerib.ib.stage import StageSpec, run_stage, with_phase
from layerib.utils.early import EarlyStopping
from layerib.utils.loop import BatchLoop
from layerib.utils.optim import adam, scheduled_lr, set_lr
from layerib.utils.precision import training_autocast
from layerib.utils.rng import rng_state, set_rng_state


@dataclass(frozen=True)
class CEOptions:
    """How a cross-entropy stage (end-to-end CE or the read-out) optimises.

    Attributes:
        batch_size: rows per step; lr: Adam's learning rate (of step 0 with a schedule).
        weight_decay: Adam's L2 weight decay; grad_clip: gradient-norm clip (None: off).
        transform: ``(x_batch, g) -> x_batch`` augmentation per batch, or None.
        lr_schedule: ``"constant"`` or ``"cosine"`` (:func:`~layerib.utils.optim.scheduled_lr`).
        precision: ``"float32"`` or ``"bfloat16"`` (the forward pass under
            :func:`~layerib.utils.precision.training_autocast`; the loss in float32).
        val_checks, patience: early stopping on a validation split (accuracy), checked
            ``val_checks`` times per budget, stopping after ``patience`` checks without a
            better score (:class:`~layerib.utils.early.EarlyStopping`).
        optimizer: ``"adam"`` or ``"nesterov"`` (SGD with Nesterov momentum 0.9 and the
            same weight decay; :data:`CE_OPTIMIZERS`).
        label_smoothing: the cross-entropy's label smoothing (``F.cross_entropy``), in [0, 1).

    Example:
        >>> CEOptions(batch_size=64, lr=1e-2).lr_schedule
        'constant'
    """

    batch_size: int
    lr: float
    weight_decay: float = 0.0
    grad_clip: float | None = None
    transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    lr_schedule: str = "constant"
    precision: str = "float32"
    val_checks: int = 20
    patience: int = 5
    optimizer: str = "adam"
    label_smoothing: float = 0.0


#: CE optimisers: Adam, or SGD with Nesterov momentum (the recipes CE is usually trained
#: with on CIFAR-10, e.g. airbench's: Jordan 2024, arXiv:2404.00498)
CE_OPTIMIZERS = ("adam", "nesterov")
#: the Nesterov SGD's momentum
NESTEROV_MOMENTUM = 0.9


def ce_optimizer(params: list, opts: CEOptions) -> torch.optim.Optimizer:
    """The optimiser ``opts.optimizer`` names over ``params`` at ``opts.lr``.

    Raises:
        ValueError: an unknown optimiser.

    Example:
        >>> p = [nn.Parameter(torch.zeros(2))]
        >>> type(ce_optimizer(p, CEOptions(8, 0.1, optimizer="nesterov"))).__name__
        'SGD'
    """
    if opts.optimizer == "adam":
        return adam(params, lr=opts.lr, weight_decay=opts.weight_decay)
    if opts.optimizer == "nesterov":
        return torch.optim.SGD(params, lr=opts.lr, momentum=NESTEROV_MOMENTUM, nesterov=True,
                               weight_decay=opts.weight_decay)
    raise ValueError(f"CE optimizer must be one of {', '.join(CE_OPTIMIZERS)}, "
                     f"got {opts.optimizer!r}")


def ce_stage(model: nn.Module, x: torch.Tensor, y: torch.Tensor, g: torch.Generator,
             opts: CEOptions, spec: StageSpec, callbacks: CallbackList, *,
             val: tuple[torch.Tensor, torch.Tensor] | None = None, what: str = "CE",
             lr_horizon: int | None = None) -> int | None:
    """One cross-entropy stage: ``model`` (inputs ``x`` ``(N, ...)`` -> logits ``(N, C)``)
    trained on labels ``y`` ``(N,)`` for ``spec.limit`` steps (:func:`~layerib.ib.stage.run_stage`).

    Writes ``{"stage": spec.unit, "phase", "epoch", "step", "train_ce"}`` at every epoch's
    end and, with ``val=(x_val, y_val)``, ``{"stage": "validation", "unit": what, ...,
    "val_accuracy", "best_step"}`` at every check; then keeps the best check's weights.
    ``lr_horizon``: the schedule's length (default ``spec.steps``; a refit: the search's
    budget, scaled). ``spec.resume`` continues the stage bit-identically.

    Returns:
        The best check's step (None without ``val``).

    Raises:
        NumericalError: the loss became non-finite (names the stage and step).
    """
    params = list(model.parameters())
    opt = ce_optimizer(params, opts)
    horizon = lr_horizon or spec.steps
    stopper = EarlyStopping(model, opts.patience) if val is not None else None
    loop = BatchLoop(len(x), opts.batch_size, spec.limit, g, x.device)
    total = [0.0]  # running loss sum of the current epoch
    check = max(spec.steps // opts.val_checks, 1)
    if spec.resume is not None:  # continue exactly where the checkpoint left off
        model.load_state_dict(spec.resume["model"])
        opt.load_state_dict(spec.resume["opt"])
        total[0] = spec.resume["total"]
        set_rng_state(g, spec.resume["rng"])
        if stopper is not None:
            stopper.load_state_dict(spec.resume["early"])

    def step(idx: torch.Tensor) -> None:
        if opts.lr_schedule != "constant":  # a function of the step: resumes bit-identically
            set_lr(opt, scheduled_lr(opts.lr, loop.step - 1, horizon, opts.lr_schedule))
        xb = x[idx] if opts.transform is None else opts.transform(x[idx], g)
        with training_autocast(xb.device, opts.precision):  # bfloat16: the forward pass only
            logits = model(xb)
        loss = F.cross_entropy(logits.float(), y[idx], label_smoothing=opts.label_smoothing)
        if not torch.isfinite(loss):
            raise NumericalError(f"non-finite cross-entropy loss in stage {what} at step "
                                 f"{loop.step - 1}; lower the learning rate or set grad_clip "
                                 "(the last good checkpoint is kept)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if opts.grad_clip:
            torch.nn.utils.clip_grad_norm_(params, opts.grad_clip)
        opt.step()
        total[0] += float(loss.detach())
        if loop.epoch_ended:
            callbacks.on_eval(with_phase({"stage": spec.unit, "epoch": loop.epoch, "step": loop.step,
                                          "train_ce": total[0] / loop.per_epoch}, spec.phase))
            total[0] = 0.0
        if stopper is not None and (loop.step % check == 0 or loop.step == spec.limit):
            was = model.training
            score = accuracy(model.eval(), *val)
            model.train(was)
            if stopper.update(score, loop.step):
                loop.stop()
            callbacks.on_eval(with_phase({"stage": "validation", "unit": what, "step": loop.step,
                                          "val_accuracy": score, "best_step": stopper.best_step},
                                         spec.phase))

    run_stage(spec, loop, step, callbacks,
              state=lambda: {"total": total[0], "model": model.state_dict(),
                             "opt": opt.state_dict(), "rng": rng_state(g),
                             "early": stopper.state_dict() if stopper is not None else None})
    if stopper is None:
        return None
    stopper.restore()
    return stopper.best_step


def _convenience(model: nn.Module, x, y, unit: str, what: str, *, steps: int, batch_size: int,
                 lr: float, g: torch.Generator, weight_decay: float = 0.0,
                 grad_clip: float | None = None, transform=None, lr_schedule: str = "constant",
                 lr_horizon: int | None = None, precision: str = "float32", val=None,
                 val_checks: int = 20, patience: int = 5, budget_extend: int = 1,
                 on_epoch: Callable[[int, int, float], None] | None = None,
                 on_val: Callable[[dict], None] | None = None,
                 on_best: Callable[[int], None] | None = None,
                 progress: Callable[[int], None] | None = None,
                 on_step: Callable[[int], None] | None = None) -> None:
    """:func:`ce_stage` from the keyword arguments of :func:`train_cross_entropy`."""
    def on_eval(rec: dict) -> None:
        if rec["stage"] == "validation":
            if on_val:
                on_val(rec)
        elif on_epoch:
            on_epoch(rec["epoch"], rec["step"], rec["train_ce"])
    opts = CEOptions(batch_size, lr, weight_decay, grad_clip, transform, lr_schedule, precision,
                     val_checks, patience)
    spec = StageSpec(unit, steps, stage_limit(steps, budget_extend, val is not None))
    best = ce_stage(model, x, y, g, opts, spec, CallbackList([Hooks(progress, on_step, on_eval)]),
                    val=val, what=what, lr_horizon=lr_horizon)
    if best is not None and on_best:
        on_best(best)


def train_cross_entropy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, **kw) -> None:
    """Train ``net`` (output = logits ``(batch, num_classes)``) end to end with CE.

    Keyword args: ``steps, batch_size, lr, g`` and the rest of :class:`CEOptions`
    (``weight_decay, grad_clip, transform, lr_schedule, precision, val_checks, patience``);
    ``lr_horizon`` (the schedule's length, default ``steps``); ``val=(x_val, y_val)``
    checks the accuracy on a validation split ``val_checks`` times, stops after
    ``patience`` checks without a better one and keeps the best weights, writing
    ``on_val(record)`` and telling ``on_best(step)`` the best check's step at the end;
    with ``val``, ``budget_extend`` lets it run past ``steps`` while the score still
    improves (:func:`stage_limit`); ``on_epoch(epoch, step, mean loss)``, ``progress(1)``
    and ``on_step(steps done)`` are called as it goes. A run with checkpoints and
    callbacks calls :func:`ce_stage` instead.

    Raises:
        NumericalError: the loss became non-finite.

    Example:
        >>> net = nn.Linear(4, 3)
        >>> x, y = torch.randn(64, 4), torch.arange(64) % 3
        >>> train_cross_entropy(net, x, y, steps=4, batch_size=16, lr=1e-2,
        ...                     g=torch.Generator().manual_seed(0))
    """
    net.train()
    _convenience(net, x, y, "ce", "cross-entropy", **kw)
    net.eval()


def fit_readout(features: torch.Tensor, y: torch.Tensor, num_classes: int,
                readout: nn.Linear | None = None, **kw) -> nn.Linear:
    """Fit a linear read-out ``(batch, dim) -> (batch, num_classes)`` with CE on frozen features.

    No nonlinearity, so the read-out composes with the net's linear last layer
    and adds no capacity (Elad et al. 2019, Sec. 4). Keyword args as for
    :func:`train_cross_entropy`; ``readout``: the linear layer to train in place
    (default: a fresh one).

    Raises:
        NumericalError: the loss became non-finite.

    Example:
        >>> f, y = torch.randn(64, 5), torch.arange(64) % 2
        >>> fit_readout(f, y, 2, steps=4, batch_size=16, lr=1e-2,
        ...             g=torch.Generator().manual_seed(0)).weight.shape
        torch.Size([2, 5])
    """
    if readout is None:
        readout = nn.Linear(features.shape[1], num_classes).to(features.device)
    readout.train()
    _convenience(readout, features, y, "readout", "read-out", **kw)
    return readout.eval()


@torch.inference_mode()
def accuracy(model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, y: torch.Tensor,
             chunk: int = 4096) -> float:
    """Fraction of ``x`` ``(N, ...)`` whose argmax logit equals ``y`` ``(N,)``; in [0, 1]."""
    correct = sum(int((model(x[s:s + chunk]).argmax(1) == y[s:s + chunk]).sum())
                  for s in range(0, len(x), chunk))
    return correct / len(x)


def stage_limit(steps: int, budget_extend: int, early_stopping: bool) -> int:
    """The most steps an early-stopped stage may run: ``budget_extend`` times its budget
    ``steps``, checked every ``steps // val_checks`` steps throughout, so it stops when
    ``patience`` checks in a row bring no better validation score, past the budget if the
    score was still improving there. Without early stopping: ``steps``."""
    return steps * budget_extend if early_stopping else steps


def steps_for(n: int, batch_size: int, epochs: int, min_steps: int) -> tuple[int, int]:
    """``(total steps, steps per epoch)`` for ``epochs`` passes, but at least ``min_steps``."""
    per_epoch = max(n // min(batch_size, n), 1)
    return max(epochs * per_epoch, min_steps), per_epoch
