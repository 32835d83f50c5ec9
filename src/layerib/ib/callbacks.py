"""What a trainer tells the outside world: the :class:`Callback` protocol.

A trainer (:mod:`layerib.ib.trainers`) calls a list of callbacks; each method is a no-op
by default, so a callback overrides only what it needs:

* ``on_stage_start(spec, step)``: a stage (:class:`~layerib.ib.stage.StageSpec`) starts,
  at ``step`` (0, or where a resumed stage continues); the final MI report is announced
  as a stage named ``report`` with no steps.
* ``on_step(spec, step, state)``: after every training step; ``state()`` builds the run's
  whole resumable state (a checkpoint, see :mod:`layerib.runs.checkpoint`).
* ``on_eval(record)``: every evaluation record (``metrics.jsonl``'s lines): held-out MI of a
  layer, validation checks, epoch losses, refits, information-plane points, the final
  accuracy; each stage record has ``"stage"`` and ``"phase"`` (search, refit or fit).
* ``on_stage_end(name, steps, state)``: a stage finished (``layer2``, ``readout``, ``ce``).
* ``state_dict()`` / ``load_state_dict(state)``: the callback's own state, saved in (and
  restored from) every checkpoint; its keys sit beside the trainer's, so name them uniquely.

The run folder (:mod:`layerib.runs`) is made of such callbacks: the metrics log,
checkpoints and resume, progress bars. :class:`TensorBoardCallback` is one a user can
pass to :func:`layerib.train_layerwise`.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Callable, Iterable

if TYPE_CHECKING:  # typing only
    from layerib.ib.stage import StageSpec

State = Callable[[], dict]


class Callback:
    """A no-op callback: subclass it and override what you need (see the module doc).

    Example:
        >>> class CountSteps(Callback):
        ...     def __init__(self):
        ...         self.steps = 0
        ...     def on_step(self, spec, step, state):
        ...         self.steps += 1
        >>> CountSteps().state_dict()
        {}
    """

    def on_stage_start(self, spec: StageSpec, step: int) -> None:
        """A stage starts at ``step`` (0, or where a resumed stage continues)."""

    def on_step(self, spec: StageSpec, step: int, state: State) -> None:
        """``step`` steps of the stage are done; ``state()`` is the run's resumable state."""

    def on_eval(self, record: dict) -> None:
        """An evaluation record (MI in nats, accuracies as fractions)."""

    def on_stage_end(self, name: str, steps: int, state: State) -> None:
        """Stage ``name`` (budget ``steps``) finished; ``state()`` as for :meth:`on_step`."""

    def state_dict(self) -> dict:
        """This callback's state for a checkpoint (keys beside the trainer's)."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore from a checkpoint dictionary (the whole one: pick your keys)."""


class Hooks(Callback):
    """A callback from plain functions: ``progress(1)`` per step, ``on_step(step)``,
    ``on_eval(record)``; any may be None.

    Example:
        >>> recs = []
        >>> Hooks(on_eval=recs.append).on_eval({"stage": "layer"}); recs
        [{'stage': 'layer'}]
    """

    def __init__(self, progress: Callable[[int], None] | None = None,
                 on_step: Callable[[int], None] | None = None,
                 on_eval: Callable[[dict], None] | None = None):
        self.progress, self.step_fn, self.eval_fn = progress, on_step, on_eval

    def on_step(self, spec, step, state) -> None:
        if self.progress:
            self.progress(1)
        if self.step_fn:
            self.step_fn(step)

    def on_eval(self, record: dict) -> None:
        if self.eval_fn:
            self.eval_fn(record)


class Records(Callback):
    """Keeps every record in :attr:`records` (a run without a run folder) as
    ``metrics.jsonl`` would hold it: non-finite numbers become None.

    Example:
        >>> r = Records(); r.on_eval({"stage": "final", "test_accuracy": float("nan")})
        >>> r.records
        [{'stage': 'final', 'test_accuracy': None}]
    """

    def __init__(self):
        self.records: list[dict] = []

    def on_eval(self, record: dict) -> None:
        self.records.append({k: None if isinstance(v, float) and not math.isfinite(v) else v
                             for k, v in record.items()})


class CallbackList:
    """The callbacks of one run, called in order, and the run's resumable state.

    Args:
        callbacks: :class:`Callback` s (order matters: a checkpoint callback last sees the
            others' state after their step).
        state: ``state(local)`` -> the trainer's checkpoint dictionary, given the current
            stage's state ``local`` (None between stages); the callbacks' ``state_dict()``
            are merged into it.

    Example:
        >>> recs = Records()
        >>> CallbackList([recs]).on_eval({"stage": "x"}); recs.records
        [{'stage': 'x'}]
    """

    def __init__(self, callbacks: Iterable[Callback] = (),
                 state: Callable[[dict | None], dict] | None = None):
        self.callbacks = list(callbacks)
        self._state = state if state is not None else (lambda local: {"local": local})

    def with_first(self, *first: Callback) -> "CallbackList":
        """The same list and state with ``first`` called before the others (stage-local hooks)."""
        return CallbackList([*first, *self.callbacks], self._state)

    def state(self, local: dict | None) -> dict:
        """The whole resumable state: the trainer's (with ``local``) and every callback's."""
        out = self._state(local)
        for cb in self.callbacks:
            out.update(cb.state_dict())
        return out

    def load_state_dict(self, state: dict) -> None:
        for cb in self.callbacks:
            cb.load_state_dict(state)

    def on_stage_start(self, spec: StageSpec, step: int) -> None:
        for cb in self.callbacks:
            cb.on_stage_start(spec, step)

    def on_step(self, spec: StageSpec, step: int, local: State) -> None:
        full = lambda: self.state(local())  # noqa: E731 - built only when a callback asks
        for cb in self.callbacks:
            cb.on_step(spec, step, full)

    def on_eval(self, record: dict) -> None:
        for cb in self.callbacks:
            cb.on_eval(record)

    def on_stage_end(self, name: str, steps: int) -> None:
        for cb in self.callbacks:
            cb.on_stage_end(name, steps, lambda: self.state(None))


class TensorBoardCallback(Callback):
    """Every numeric field of every record as a TensorBoard scalar (needs ``tensorboard``).

    The tag is ``STAGE[/UNIT][/PHASE]/FIELD`` (e.g. ``layer/2/test_i_y_nats``,
    ``validation/2/search/val_accuracy``), the x axis the record's ``step`` (each stage
    counts its own steps); MI in nats as recorded. Writes under ``log_dir`` with
    ``torch.utils.tensorboard.SummaryWriter``; flushed at every stage's end.

    Args:
        log_dir: the folder for the event files (``tensorboard --logdir`` reads it).

    Raises:
        ImportError: tensorboard is not installed (``pip install tensorboard``, or the
            ``layerib[tb]`` extra).

    Example:
        >>> import tempfile
        >>> tb = TensorBoardCallback(tempfile.mkdtemp())  # doctest: +SKIP
        >>> tb.on_eval({"stage": "layer", "phase": "fit", "layer": 1, "step": 5,
        ...             "test_i_y_nats": 1.2})  # doctest: +SKIP
    """

    def __init__(self, log_dir: str):
        try:
            from torch.utils.tensorboard import SummaryWriter  # optional dependency
        except ImportError:
            raise ImportError("TensorBoardCallback needs the tensorboard package: "
                              "pip install tensorboard") from None
        self.writer = SummaryWriter(log_dir=str(log_dir))

    def on_eval(self, record: dict) -> None:
        unit = record.get("layer", record.get("unit", record.get("name")))
        phase = record.get("phase")
        prefix = "/".join(str(p) for p in (record.get("stage"), unit,
                                           None if phase in (None, "fit") else phase)
                          if p is not None)
        step = record.get("step", 0)
        for key, value in record.items():
            if key in ("step", "layer") or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(f"{prefix}/{key}", value, global_step=step)

    def on_stage_end(self, name: str, steps: int, state: State) -> None:
        self.writer.flush()

    def close(self) -> None:
        """Flush and close the event file."""
        self.writer.close()
