"""The one resumable minibatch loop of every training stage.

Layer stages, the read-out, end-to-end cross-entropy (and the information-plane
critics) all walk their data the same way: epochs of a fresh seeded permutation of
the ``n`` rows, batches of ``batch_size`` (the last partial batch of an epoch is
dropped), for a fixed number of steps. :class:`BatchLoop` owns that walk and its
resumable state (step, permutation, position), so a checkpoint taken after any step
continues bit-identically; :func:`run_stage` adds the per-step hooks every stage
shares (progress, step callbacks, checkpoints).
"""

from __future__ import annotations

from typing import Callable, Iterator

import torch


class BatchLoop:
    """Seeded minibatch indices over ``n`` rows for ``steps`` steps, resumable.

    Args:
        n: number of rows; batch_size: rows per batch (capped at ``n``).
        steps: total steps of the stage.
        g: the run's generator (draws each epoch's permutation).
        device: where the index tensors live (that of the data).

    Iterating yields ``idx`` (int64 ``(batch,)``); during each step :attr:`step` counts
    the steps done including it, :attr:`epoch_ended` says whether it ends an epoch and
    :attr:`epoch` counts the epochs ended so far (including this step's).
    """

    def __init__(self, n: int, batch_size: int, steps: int, g: torch.Generator,
                 device: torch.device | str = "cpu"):
        self.n, self.bs, self.steps, self.g, self.device = n, min(batch_size, n), steps, g, device
        self.per_epoch = max(n // self.bs, 1)
        self.step, self.epoch, self.perm, self.start = 0, 0, None, 0

    def state_dict(self) -> dict:
        """Where the loop is: step, epochs done, the permutation and the position in it."""
        return {"step": self.step, "epoch": self.epoch, "perm": self.perm, "start": self.start,
                "steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.epoch, self.start = state["step"], state["epoch"], state["start"]
        self.steps = state.get("steps", self.steps)
        self.perm = state["perm"].to(self.device) if state["perm"] is not None else None

    def stop(self) -> None:
        """End the stage after the current step (early stopping)."""
        self.steps = self.step

    @property
    def epoch_ended(self) -> bool:
        """True right after the last step of an epoch (or of the stage)."""
        return self.start >= self.per_epoch * self.bs or self.step >= self.steps

    def __iter__(self) -> Iterator[torch.Tensor]:
        while self.step < self.steps:
            if self.perm is None or self.start >= self.per_epoch * self.bs:
                self.perm, self.start = torch.randperm(self.n, generator=self.g, device=self.device), 0
            idx = self.perm[self.start:self.start + self.bs]
            self.start += self.bs
            self.step += 1
            if self.epoch_ended:
                self.epoch += 1
            yield idx


def run_stage(loop: BatchLoop, step: Callable[[torch.Tensor], None], *,
              state: Callable[[], dict] = dict, progress: Callable[[int], None] | None = None,
              on_step: Callable[[int], None] | None = None,
              on_checkpoint: Callable[[int, Callable[[], dict]], None] | None = None) -> None:
    """Run ``step(idx)`` for every batch of ``loop``, then the shared hooks.

    After each step: ``progress(1)``, ``on_step(steps done)``, then
    ``on_checkpoint(steps done, state_fn)`` where ``state_fn()`` returns the loop's
    state (``"loop"``) merged with the stage's own ``state()`` (models, optimisers,
    generator); a stage resumes from it with :meth:`BatchLoop.load_state_dict`.
    """
    for idx in loop:
        step(idx)
        if progress:
            progress(1)
        if on_step:
            on_step(loop.step)
        if on_checkpoint:
            on_checkpoint(loop.step, lambda: {"loop": loop.state_dict(), **state()})
