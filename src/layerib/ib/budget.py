"""Training within a wall-clock budget (``budget_minutes``): each stage's share and plan.

A budgeted run gives every stage (each layer of layer-wise training, the read-out; the one
stage of end-to-end cross-entropy) a share of the time left when it starts, in proportion
to :func:`stage_weights` (never less than :data:`MIN_SHARE` of its part of the whole
budget; with ``budget_split="steps"`` every layer stage is probed before the first and
the layers' weights follow their seconds per step, so each plans the same number of
steps), and *plans* the stage for that share before its first step: a
short timed probe (:func:`probe_seconds_per_step`: :data:`PROBE_STEPS` steps of the same
stage on a copy of its module, with its own generator, the global RNG restored after it)
measures seconds per step, and the stage's step count -- and with it the length of its
cosine or constant learning-rate schedule -- is ``share / seconds per step``
(:func:`plan_steps`). No schedule is cut mid-way; evaluations, checkpoints and the final
MI report come on top of the steps and are absorbed by the later stages' shares (each
stage plans with the time *left*; with the floor, a run that overran its budget goes on
past it rather than starve its last stages). The trainer keeps every plan in its resumable state,
so a resumed run continues the same plan and ends bit-identical to an uninterrupted run
with that plan. :func:`machine` describes what a run ran on (``result.json``'s ``machine``).
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path
from typing import Callable

import torch

from layerib.ib.callbacks import Callback, CallbackList
from layerib.ib.stage import StageSpec

#: the clock of the probes (seconds); tests replace it to make plans deterministic
clock: Callable[[], float] = time.perf_counter
#: steps of a timing probe, and how many of its first steps are warm-up (not timed)
PROBE_STEPS, WARMUP_STEPS = 8, 3
#: a read-out stage's weight beside a layer stage's 1: a linear layer on cached features
#: needs a small part of the time to converge
READOUT_WEIGHT = 0.05
#: a stage's least share, as a fraction of its share of the whole budget: a run whose
#: earlier stages overran (evaluations, frozen-output passes) still trains every stage
MIN_SHARE = 0.25


def stage_weights(n_layers: int, method: str,
                  seconds_per_step: dict[str, float] | None = None,
                  last_layer_weight: float = 1.0) -> dict[str, float]:
    """Each stage's weight in the budget, in stage order: ``ce`` 1 (``ce``); for ``ib`` and
    ``iy`` ``layer1 .. layerK`` 1 each (``budget_split="time"``: the same part of the time
    left) and ``readout`` :data:`READOUT_WEIGHT`. With ``seconds_per_step`` (each layer
    stage's probed seconds per step; ``budget_split="steps"``) a layer's weight is its
    seconds per step over their mean, so every layer stage plans the same number of steps
    (a slow conv block gets more of the time than a cheap linear head). The last layer's
    weight is then multiplied by ``last_layer_weight`` (``budget_last_layer_weight``; below 1
    when the last unit is a cheap linear head that needs less of the time than a conv block).

    Raises:
        KeyError: ``seconds_per_step`` misses a layer.

    Example:
        >>> stage_weights(2, "ib")
        {'layer1': 1.0, 'layer2': 1.0, 'readout': 0.05}
        >>> stage_weights(2, "ib", {"layer1": 3.0, "layer2": 1.0})
        {'layer1': 1.5, 'layer2': 0.5, 'readout': 0.05}
        >>> stage_weights(3, "iy", last_layer_weight=0.25)
        {'layer1': 1.0, 'layer2': 1.0, 'layer3': 0.25, 'readout': 0.05}
    """
    if method == "ce":
        return {"ce": 1.0}
    names = [f"layer{i}" for i in range(1, n_layers + 1)]
    if seconds_per_step is None:
        layers = {n: 1.0 for n in names}
    else:
        mean = sum(seconds_per_step[n] for n in names) / n_layers
        layers = {n: seconds_per_step[n] / mean if mean > 0 else 1.0 for n in names}
    layers[names[-1]] *= last_layer_weight
    return {**layers, "readout": READOUT_WEIGHT}


def stage_share(unit: str, weights: dict[str, float], left_seconds: float,
                total_seconds: float) -> float:
    """Seconds for stage ``unit``: its weight over the weights of it and the stages after
    it (``weights`` in stage order), of ``left_seconds`` (the budget of ``total_seconds`` not
    yet spent), but at least :data:`MIN_SHARE` of its weight's part of ``total_seconds``.

    Raises:
        KeyError: ``unit`` is not in ``weights``.

    Example:
        >>> w = {"layer1": 1.0, "layer2": 1.0, "readout": 0.5}
        >>> stage_share("layer2", w, 60.0, 100.0), stage_share("layer2", w, -3.0, 100.0)
        (40.0, 10.0)
    """
    names = list(weights)
    later = names[names.index(unit):]
    floor = MIN_SHARE * total_seconds * weights[unit] / sum(weights.values())
    return max(max(left_seconds, 0.0) * weights[unit] / sum(weights[n] for n in later), floor)


def plan_steps(share_seconds: float, seconds_per_step: float) -> int:
    """A stage's planned steps: as many as fit in ``share_seconds`` at ``seconds_per_step``,
    at least 1.

    Example:
        >>> plan_steps(30.0, 0.25), plan_steps(0.0, 0.25)
        (120, 1)
    """
    if not seconds_per_step > 0:
        return 1
    return max(1, math.floor(share_seconds / seconds_per_step + 1e-9))


class StepTimer(Callback):
    """Reads :data:`clock` at a stage's start and after each of its steps (after
    ``torch.cuda.synchronize`` on a GPU); :meth:`seconds_per_step` averages the steps after
    the first :data:`WARMUP_STEPS`.

    Example:
        >>> t = StepTimer(torch.device("cpu"))
        >>> t.times = [0.0, 5.0, 6.0, 7.0, 7.5, 8.0]
        >>> t.seconds_per_step()
        0.5
    """

    def __init__(self, device: torch.device):
        self.device, self.times = device, []

    def _now(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return clock()

    def on_stage_start(self, spec: StageSpec, step: int) -> None:
        self.times = [self._now()]

    def on_step(self, spec: StageSpec, step: int, state) -> None:
        self.times.append(self._now())

    def seconds_per_step(self) -> float:
        """Mean seconds of the timed steps (all steps when there are no more than the warm-up).

        Raises:
            RuntimeError: no step was timed.
        """
        if len(self.times) < 2:
            raise RuntimeError("the timing probe ran no step")
        start = WARMUP_STEPS if len(self.times) > WARMUP_STEPS + 1 else 0
        return (self.times[-1] - self.times[start]) / (len(self.times) - 1 - start)


def probe_seconds_per_step(run: Callable[[StageSpec, CallbackList], object], unit: str,
                           device: torch.device) -> float:
    """Seconds per step of a stage, measured by ``run(spec, callbacks)``: the stage's own
    step on a copy of its module with a generator of its own, for :data:`PROBE_STEPS`
    steps. The global RNG (a critic's or read-out's initialisation) is restored after it,
    so the run's draws are those of a run without the probe.

    Example:
        >>> from layerib.ib.stage import run_stage
        >>> from layerib.utils.loop import BatchLoop
        >>> def run(spec, cbs):
        ...     run_stage(spec, BatchLoop(64, 8, spec.steps, torch.Generator()), lambda i: None, cbs)
        >>> probe_seconds_per_step(run, "layer1", torch.device("cpu")) >= 0
        True
    """
    timer = StepTimer(device)
    devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        run(StageSpec(unit, PROBE_STEPS), CallbackList([timer]))
    return timer.seconds_per_step()


def _cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo`` on Linux, else :func:`platform.processor`)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine(device: torch.device) -> dict:
    """What a run ran on: ``{"device", "cpu", "threads", "gpu", "platform"}`` (``gpu`` the
    CUDA device's name, None on the CPU; ``threads`` ``torch.get_num_threads()``).

    Example:
        >>> m = machine(torch.device("cpu"))
        >>> sorted(m), m["gpu"], m["threads"] >= 1
        (['cpu', 'device', 'gpu', 'platform', 'threads'], None, True)
    """
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else None
    return {"device": str(device), "cpu": _cpu_model(), "threads": torch.get_num_threads(),
            "gpu": gpu, "platform": platform.platform()}
