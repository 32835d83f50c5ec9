"""Baselines and read-out: end-to-end cross-entropy training and the linear read-out.

* :func:`train_cross_entropy`: the same net trained end to end with CE, its
  last layer being the CE head (Elad et al. 2019, Table 1, "Cross-Entropy").
* :func:`fit_readout`: after layer-wise training, a linear layer fitted with CE
  on the frozen net's cached output (Sec. 4); accuracy comes only through it.

Both run the shared resumable loop of :mod:`layerib.utils.loop`.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from layerib.errors import NumericalError
from layerib.utils.early import EarlyStopping
from layerib.utils.loop import BatchLoop, run_stage
from layerib.utils.optim import adam, scheduled_lr, set_lr
from layerib.utils.precision import training_autocast
from layerib.utils.rng import rng_state, set_rng_state


def _minibatch_epochs(model: nn.Module, params, x: torch.Tensor, y: torch.Tensor, *,
                      steps: int, batch_size: int, lr: float, g: torch.Generator,
                      weight_decay: float = 0.0, grad_clip: float | None = None,
                      on_epoch: Callable[[int, int, float], None] | None = None,
                      progress: Callable[[int], None] | None = None,
                      on_step: Callable[[int], None] | None = None, what: str = "CE",
                      resume: dict | None = None,
                      on_checkpoint: Callable[[int, Callable[[], dict]], None] | None = None,
                      transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
                      val: tuple[torch.Tensor, torch.Tensor] | None = None, val_checks: int = 20,
                      patience: int = 5, on_val: Callable[[dict], None] | None = None,
                      on_best: Callable[[int], None] | None = None, budget_extend: int = 1,
                      lr_schedule: str = "constant", lr_horizon: int | None = None,
                      precision: str = "float32") -> None:
    opt = adam(params, lr=lr, weight_decay=weight_decay)
    horizon = lr_horizon or steps  # the schedule's length (a refit: the search's budget, scaled)
    stopper = EarlyStopping(model, patience) if val is not None else None
    limit = stage_limit(steps, budget_extend, stopper is not None)
    loop = BatchLoop(len(x), batch_size, limit, g, x.device)
    total = [0.0]  # running loss sum of the current epoch
    check = max(steps // val_checks, 1)
    if resume is not None:  # continue exactly where the checkpoint left off
        model.load_state_dict(resume["model"])
        opt.load_state_dict(resume["opt"])
        loop.load_state_dict(resume["loop"])
        total[0] = resume["total"]
        set_rng_state(g, resume["rng"])
        if stopper is not None:
            stopper.load_state_dict(resume["early"])

    def step(idx: torch.Tensor) -> None:
        if lr_schedule != "constant":  # a function of the step: resumes bit-identically
            set_lr(opt, scheduled_lr(lr, loop.step - 1, horizon, lr_schedule))
        xb = x[idx] if transform is None else transform(x[idx], g)
        with training_autocast(xb.device, precision):  # bfloat16: the forward pass only
            logits = model(xb)
        loss = F.cross_entropy(logits.float(), y[idx])
        if not torch.isfinite(loss):
            raise NumericalError(f"non-finite cross-entropy loss in stage {what} at step "
                                 f"{loop.step - 1}; lower the learning rate or set grad_clip "
                                 "(the last good checkpoint is kept)")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip:
            torch.nn.utils.clip_grad_norm_(params, grad_clip)
        opt.step()
        total[0] += float(loss.detach())
        if loop.epoch_ended:
            if on_epoch:
                on_epoch(loop.epoch, loop.step, total[0] / loop.per_epoch)
            total[0] = 0.0
        if stopper is not None and (loop.step % check == 0 or loop.step == limit):
            was = model.training
            score = accuracy(model.eval(), *val)
            model.train(was)
            if stopper.update(score, loop.step):
                loop.stop()
            if on_val:
                on_val({"stage": "validation", "unit": what, "step": loop.step,
                        "val_accuracy": score, "best_step": stopper.best_step})

    run_stage(loop, step, progress=progress, on_step=on_step, on_checkpoint=on_checkpoint,
              state=lambda: {"total": total[0], "model": model.state_dict(),
                             "opt": opt.state_dict(), "rng": rng_state(g),
                             "early": stopper.state_dict() if stopper is not None else None})
    if stopper is not None:
        stopper.restore()
        if on_best:
            on_best(stopper.best_step)


def train_cross_entropy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, **kw) -> None:
    """Train ``net`` (output = logits ``(batch, num_classes)``) end to end with CE.

    Keyword args are those of the shared loop: ``steps, batch_size, lr, g,
    weight_decay, grad_clip, on_epoch, progress, on_step, resume, on_checkpoint, transform``
    (``on_step(n)`` is called after each of the ``n`` steps, e.g. an
    information-plane recorder; ``on_checkpoint(n, state)`` after that, where
    ``state()`` is the loop's resumable state, which ``resume=`` continues from;
    ``transform(xb, g)`` augments each batch, e.g. :func:`layerib.data.augment.crop_flip`;
    ``precision`` (``"float32"`` or ``"bfloat16"``: the forward pass under
    :func:`~layerib.utils.precision.training_autocast`, the loss in float32);
    ``lr_schedule`` (``"constant"`` or ``"cosine"``, :func:`~layerib.utils.optim.scheduled_lr`)
    sets the rate of each step over ``lr_horizon`` steps (default ``steps``);
    ``val=(x_val, y_val)`` checks the accuracy on a validation split ``val_checks`` times,
    stops after ``patience`` checks without a better one and keeps the best weights
    (:class:`~layerib.utils.early.EarlyStopping`), writing ``on_val(record)`` and telling
    ``on_best(step)`` the best check's step at the end); with ``val``, ``budget_extend``
    lets it run past ``steps`` while the score still improves (:func:`stage_limit`).

    Raises:
        NumericalError: the loss became non-finite.
    """
    net.train()
    _minibatch_epochs(net, list(net.parameters()), x, y, what="cross-entropy", **kw)
    net.eval()


def fit_readout(features: torch.Tensor, y: torch.Tensor, num_classes: int,
                readout: nn.Linear | None = None, **kw) -> nn.Linear:
    """Fit a linear read-out ``(batch, dim) -> (batch, num_classes)`` with CE on frozen features.

    No nonlinearity, so the read-out composes with the net's linear last layer
    and adds no capacity (Elad et al. 2019, Sec. 4). Keyword args as for
    :func:`train_cross_entropy` (``resume`` restores the read-out's weights too);
    ``readout``: the linear layer to train in place (default: a fresh one).

    Raises:
        NumericalError: the loss became non-finite.
    """
    if readout is None:
        readout = nn.Linear(features.shape[1], num_classes).to(features.device)
    readout.train()
    _minibatch_epochs(readout, list(readout.parameters()), features, y, what="read-out", **kw)
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
