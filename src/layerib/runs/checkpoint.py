"""Checkpoints of a training run: atomic save, checked load, and the resume point.

A run folder's ``checkpoint.pt`` holds everything needed to continue a run as
if it had never stopped (see :func:`layerib.runs.training.run_training`; :class:`Checkpointer`
saves it as a trainer's callback): the net, the
stage's critics and optimisers (MINE's moving averages travel in the critics'
``state_dict``), the batch permutation and position in it, the state of the
run's ``torch.Generator`` and of torch's global generator, the step, the
config, the wall time so far and the length of ``metrics.jsonl`` at that
moment. Stages run in a fixed order, ``layer1 .. layerK, readout`` for
layer-wise methods and ``ce`` for cross-entropy; the resume point is
``(stages done, the current stage's step)``.

Writes go to a temporary file in the same folder, are flushed and fsynced,
then renamed over ``checkpoint.pt`` (:func:`atomic_torch_save`): a run killed
at any moment leaves either the previous or the new checkpoint, never a
partial one, and a full disk leaves no temporary file.

Test-only hook: when the environment variable ``LAYERIB_TEST_KILL_AT`` is set
to ``STAGE:STEP`` (e.g. ``layer2:5``, ``readout:3``, ``ce:7``), ``after:STAGE``
(right after the checkpoint that ends that stage) or ``report`` (at the start
of the final MI report), the process sends itself SIGKILL when it gets there
(:func:`kill_point`). It exists for the interruption tests and has no other use.
"""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path
from typing import Any

import torch

from layerib.config import RESULT_NEUTRAL_KEYS, effective_settings
from layerib.errors import NumericalError, RunDirError
from layerib.ib.callbacks import Callback
from layerib.ib.stage import StageSpec
from layerib.ib.trainers import REPORT
from layerib.runs.folder import atomic_write, versions

CHECKPOINT = "checkpoint.pt"
#: Format version of the checkpoint dictionary (2: stage state under "loop"/"update", layerib 0.2).
FORMAT = 2
#: Test-only: ``STAGE:STEP``, ``after:STAGE`` or ``report``; see the module doc.
KILL_ENV = "LAYERIB_TEST_KILL_AT"


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save(obj)`` to ``path`` via a temporary file, fsync and ``os.replace``.

    Raises:
        RunDirError: the folder is not writable or the disk is full; the
            temporary file is removed and ``path`` keeps its old content.
    """
    def write(f) -> None:
        try:
            torch.save(obj, f)
        except RuntimeError as e:  # torch.save wraps write errors of its zip writer
            if "write" not in str(e).lower() and "space" not in str(e).lower():
                raise
            raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)} or write error") from None

    atomic_write(path, write, binary=True, kept=" (the previous checkpoint is kept)")


def load_checkpoint(path: Path) -> dict | None:
    """The checkpoint dictionary at ``path``, or None when there is none.

    Raises:
        RunDirError: the file exists but cannot be read or is not a layerib checkpoint.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)  # runs no pickled code
    except Exception as e:  # noqa: BLE001 - any unpickling failure means a corrupt file
        raise RunDirError(f"cannot read checkpoint {path} ({type(e).__name__}); delete it or "
                          "pass --force to start the run again") from None
    if isinstance(state, dict) and state.get("format") == 1:
        raise RunDirError(f"{path} was written by layerib 0.1 (checkpoint format 1), which this "
                          "version cannot continue; finish the run with layerib 0.1, or pass "
                          "--force to start it again")
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise RunDirError(f"{path} is not a layerib checkpoint (format {FORMAT}); delete it or "
                          "pass --force to start the run again")
    return state


def check_finite_state(state: Any, stage: str, step: int, _path: str = "") -> None:
    """Raise :class:`NumericalError` naming the first non-finite float tensor in ``state``.

    ``state`` is a nested dict/list of tensors (state dicts of the net, critics,
    optimisers). Called before every checkpoint, so a saved checkpoint never
    holds NaN or inf and the last good one survives a numerical failure.
    """
    if isinstance(state, torch.Tensor):
        if state.is_floating_point() and not torch.isfinite(state).all():
            raise NumericalError(f"non-finite parameter {_path.lstrip('.')} in stage {stage} at "
                                 f"step {step}; lower the learning rates or set grad_clip "
                                 "(the last good checkpoint is kept)")
    elif isinstance(state, dict):
        for k, v in state.items():
            check_finite_state(v, stage, step, f"{_path}.{k}")
    elif isinstance(state, (list, tuple)):
        for k, v in enumerate(state):
            check_finite_state(v, stage, step, f"{_path}.{k}")


def config_differences(saved: dict, config: dict) -> list[str]:
    """Keys whose values differ between two config dicts (JSON-normalised), but :data:`~layerib.config.RESULT_NEUTRAL_KEYS`."""
    a, b = json.loads(json.dumps(saved)), json.loads(json.dumps(config))
    if "method" in a and "method" in b:  # TrainConfig dicts: compare what they run
        a, b = effective_settings(a), effective_settings(b)
    return sorted(k for k in set(a) | set(b) if k not in RESULT_NEUTRAL_KEYS and a.get(k) != b.get(k))


def find_resume_state(out: Path, config: dict, *, force: bool = False,
                      resume: bool = False) -> dict | None:
    """The checkpoint to continue from in ``out``, None to start afresh, or an error.

    A folder that holds nothing (or only temporary files) starts a new run; one
    holding an unfinished run of the same ``config`` (its ``config.json``)
    continues from its ``checkpoint.pt`` (or starts again when the run was
    stopped before its first checkpoint). ``force`` always starts afresh.

    Raises:
        RunDirError: ``out`` holds files of another config, or files that are no
            layerib run (without ``force``); ``resume`` with nothing to resume, or
            with ``force``; an unreadable ``config.json`` or checkpoint.
    """
    out = Path(out)
    if force:
        if resume:
            raise RunDirError("--resume and --force contradict each other: --force starts the "
                              "run again; pass one of them")
        return None
    entries = [p for p in out.iterdir() if not p.name.startswith(".")] if out.is_dir() else []
    if not entries:
        if resume:
            raise RunDirError(f"--resume: {out} holds no run to resume; run without --resume")
        return None
    cfg_path = out / "config.json"
    if not cfg_path.is_file():
        raise RunDirError(f"{out} is not empty and holds no layerib run (no config.json); "
                          "choose a new or empty --out, or pass --force to write into it")
    try:
        saved = json.loads(cfg_path.read_text())["config"]
        if not isinstance(saved, dict):
            raise TypeError
    except (OSError, ValueError, KeyError, TypeError):
        raise RunDirError(f"cannot read {cfg_path}; pass --force to start the run again") from None
    diff = config_differences(saved, config)
    if diff:
        raise RunDirError(f"{out} holds a different run (config differs in {', '.join(diff)}); "
                          "continue it with the settings in its config.json, choose another "
                          "--out, or pass --force to overwrite it")
    state = load_checkpoint(out / CHECKPOINT)
    if state is None:
        if resume:
            raise RunDirError(f"--resume: {out} has no checkpoint yet; run without --resume "
                              "to start it again")
        return None
    diff = config_differences(state["config"], config)
    if diff:
        raise RunDirError(f"{out / CHECKPOINT} belongs to a different config ({', '.join(diff)}); "
                          "pass --force to start the run again")
    return state


def kill_point(where: str) -> None:
    """Test-only: SIGKILL this process when ``$LAYERIB_TEST_KILL_AT`` equals ``where``."""
    if os.environ.get(KILL_ENV) == where:
        os.kill(os.getpid(), signal.SIGKILL)


class Checkpointer(Callback):
    """Saves ``checkpoint.pt`` as a trainer's callback (see the module doc).

    Every ``every`` steps of a stage but its last (``on_step``; 0: never mid-stage) and
    at every stage's end (``on_stage_end``), the trainer's whole state (``state()``: net,
    stage state, generators, the callbacks' state such as ``metrics_bytes``) with the
    format, ``config``, the stage's name, the step and the versions. Put it last in the
    callback list, so it saves what the others did in the step. Also the test-only kill
    points ``STAGE:STEP``, ``after:STAGE`` and ``report``.

    Args:
        out: the run folder; config: the run's config dictionary (resolved).
        every: ``checkpoint_every``.

    Raises:
        NumericalError: a non-finite tensor in the state (the last good checkpoint is kept).
        RunDirError: the checkpoint cannot be written.
    """

    def __init__(self, out: Path, config: dict, every: int):
        self.out, self.config, self.every = Path(out), config, every

    def save(self, stage: str, step: int, state: dict) -> None:
        """Write ``state`` (checked finite first) as the checkpoint of ``stage`` at ``step``."""
        state = {"format": FORMAT, "config": self.config, "stage": stage, "step": step,
                 **state, "versions": versions()}
        check_finite_state(state, stage, step)  # never overwrite a good checkpoint with NaN
        atomic_torch_save(state, self.out / CHECKPOINT)

    def on_stage_start(self, spec: StageSpec, step: int) -> None:
        if spec.name == REPORT:
            kill_point(REPORT)

    def on_step(self, spec: StageSpec, step: int, state) -> None:
        if self.every and step % self.every == 0 and step < spec.limit:
            self.save(spec.name, step, state())
        kill_point(f"{spec.name}:{step}")

    def on_stage_end(self, name: str, steps: int, state) -> None:
        self.save(name, steps, state())
        kill_point(f"after:{name}")
