"""One training stage: what it is (:class:`StageSpec`) and its minibatch walk (:func:`run_stage`).

Every stage of a run -- a layer of layer-wise training (Elad et al. 2019, Sec. 4), the
linear read-out, end-to-end cross-entropy -- walks its rows the same way
(:class:`~layerib.utils.loop.BatchLoop`: a seeded permutation per epoch, fixed-size
batches) and tells the same callbacks (:mod:`layerib.ib.callbacks`) about each step. A
stage with a validation split runs twice under ``val_refit``: its *search* (early
stopped on the validation rows) and its *refit* (on all rows, for the search's best
step count); a stage without a refit is a *fit*. Every record a stage writes carries
that ``"phase"``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import torch

from layerib.utils.loop import BatchLoop

if TYPE_CHECKING:  # typing only: callbacks.py imports nothing from here at run time
    from layerib.ib.callbacks import CallbackList

#: a stage record's ``"phase"``: the validation search, the refit on all rows, or a plain fit
PHASES = ("search", "refit", "fit")


@dataclass
class StageSpec:
    """What a stage is, for the loop and its callbacks.

    Attributes:
        unit: the unit it trains, as records and checkpoints name it: ``layer1`` ..
            ``layerK``, ``readout`` or ``ce``.
        steps: its planned steps (its budget; the checkpoints' last step).
        limit: the most steps it may run (``budget_extend`` times ``steps`` while early
            stopping; default ``steps``).
        phase: ``"search"``, ``"refit"`` or ``"fit"`` (:data:`PHASES`).
        resume: the stage's saved state (what ``on_step``'s ``state()["local"]`` held) to
            continue from, or None to start it.
        extra: more state saved with the stage's own (a refit: its phase, the initial
            weights, the best step), or None.

    Raises:
        ValueError: an unknown phase.

    Example:
        >>> StageSpec("layer2", steps=12, phase="refit").name
        'layer2.refit'
    """

    unit: str
    steps: int
    limit: int | None = None
    phase: str = "fit"
    resume: dict | None = None
    extra: Callable[[], dict] | None = None

    def __post_init__(self):
        if self.phase not in PHASES:
            raise ValueError(f"stage phase must be one of {', '.join(PHASES)}, got {self.phase!r}")
        if self.limit is None:
            self.limit = self.steps

    @property
    def name(self) -> str:
        """The checkpoint's and kill points' name: ``unit``, ``unit.refit`` for a refit."""
        return f"{self.unit}.refit" if self.phase == "refit" else self.unit


def with_phase(record: dict, phase: str) -> dict:
    """``record`` with ``"phase"`` right after its ``"stage"`` key (a copy).

    Example:
        >>> with_phase({"stage": "layer", "step": 3}, "search")
        {'stage': 'layer', 'phase': 'search', 'step': 3}
    """
    return {"stage": record["stage"], "phase": phase, **record}


def run_stage(spec: StageSpec, loop: BatchLoop, step_fn: Callable[[torch.Tensor], None],
              callbacks: CallbackList, state: Callable[[], dict] = dict) -> None:
    """Run ``step_fn(idx)`` for every batch ``idx`` (int64 ``(batch,)``) of ``loop``.

    ``loop`` continues from ``spec.resume["loop"]`` when resuming (the caller restores its
    models, optimisers and generator from the rest of ``spec.resume``). Calls
    ``callbacks.on_stage_start(spec, step)`` first, then after every step
    ``callbacks.on_step(spec, steps done, local)`` where ``local()`` is the stage's
    resumable state: ``{"loop": ..., **state(), **spec.extra()}``.

    Example:
        >>> from layerib.ib.callbacks import CallbackList
        >>> seen = []
        >>> loop = BatchLoop(8, 4, 3, torch.Generator().manual_seed(0))
        >>> run_stage(StageSpec("ce", 3), loop, lambda idx: seen.append(len(idx)), CallbackList())
        >>> seen, loop.step
        ([4, 4, 4], 3)
    """
    if spec.resume is not None:
        loop.load_state_dict(spec.resume["loop"])
    callbacks.on_stage_start(spec, loop.step)

    def local() -> dict:
        out = {"loop": loop.state_dict(), **state()}
        if spec.extra is not None:
            out.update(spec.extra())
        return out
    for idx in loop:
        step_fn(idx)
        callbacks.on_step(spec, loop.step, local)
