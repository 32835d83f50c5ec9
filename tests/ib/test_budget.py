"""Training within a wall-clock budget (``budget_minutes``): the plan, the probe, the record."""

from __future__ import annotations

import itertools

import pytest
import torch

import layerib.ib.budget as budget
import layerib.ib.trainers as trainers
from layerib.config import TrainConfig
from layerib.data.mnist import ImageDataset
from layerib.errors import ConfigError
from layerib.ib.callbacks import Callback
from layerib.ib.trainers import make_trainer, resolve_settings
from layerib.models.mlp import mlp

TINY = dict(widths=(16, 10), batch_size=32, epochs_per_layer=1, min_steps_per_layer=8,
            readout_epochs=1, ce_epochs=1, critic_hidden=8, mi_restarts=1, mi_baseline=False,
            mi_max_steps=30, mi_eval_batch_size=50, evals_per_layer=2, infoplane_evals=0,
            val_fraction=0.0, download=False)
#: the fake clock's tick: a power of two, so seconds per step come out exact
TICK = 1 / 64


def _toy(n=160, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 8, generator=g) * 0.3
    x[torch.arange(n), y] += 2.0
    return ImageDataset(x, y, 4, "toy")


class _Ends(Callback):
    def __init__(self):
        self.ends = {}

    def on_stage_end(self, name, steps, state):
        self.ends[name] = steps


@pytest.fixture
def fake_clock(monkeypatch):
    """Every probe step takes TICK seconds and the run has spent nothing when a stage plans."""
    ticks = itertools.count()
    monkeypatch.setattr(budget, "clock", lambda: next(ticks) * TICK)
    monkeypatch.setattr(trainers._Trainer, "elapsed", lambda self: 0.0)


def _fit(method, data, callbacks=(), **kw):
    cfg = TrainConfig(method=method, **{**TINY, **kw})
    torch.manual_seed(0)
    net = mlp((8,), cfg.widths)
    return make_trainer(net, resolve_settings(cfg, len(data.labels))).fit(
        data, data, callbacks=callbacks)


def test_the_share_of_each_stage_is_its_weight_over_the_stages_left():
    w = budget.stage_weights(3, "ib")
    assert list(w) == ["layer1", "layer2", "layer3", "readout"]
    left = total = 100.0
    assert budget.stage_share("layer1", w, left, total) == pytest.approx(100 / 3.05)
    assert budget.stage_share("readout", w, left, total) == pytest.approx(100.0)  # all left
    assert budget.stage_share("layer3", w, 30.0, total) == pytest.approx(30 / 1.05)
    # overrun: a quarter of the stage's part of the whole budget, not nothing
    assert budget.stage_share("layer2", w, -5.0, total) == pytest.approx(0.25 * 100 / 3.05)
    assert budget.stage_weights(3, "ce") == {"ce": 1.0}
    assert budget.plan_steps(10.0, 0.5) == 20 and budget.plan_steps(0.1, 0.5) == 1


def test_split_by_steps_gives_every_layer_stage_the_same_steps():
    """Shares in proportion to seconds per step: the time left, spent stage after stage,
    buys each layer stage the same number of steps (the read-out keeps its weight)."""
    per_step = {"layer1": 0.9, "layer2": 0.6, "layer3": 0.2}
    w = budget.stage_weights(3, "ib", per_step)
    assert w["readout"] == budget.READOUT_WEIGHT
    assert w["layer1"] / w["layer3"] == pytest.approx(4.5)
    left, steps = 600.0, []
    for unit in per_step:
        share = budget.stage_share(unit, w, left, 600.0)
        steps.append(share / per_step[unit])
        left -= share
    assert steps == pytest.approx([steps[0]] * 3)
    with pytest.raises(KeyError):
        budget.stage_weights(3, "ib", {"layer1": 1.0})


def test_split_by_steps_probes_every_layer_before_the_first(fake_clock, monkeypatch):
    """``budget_split="steps"``: the layer stages are probed up front, in order, once; their
    seconds per step weight the shares and are the plans' seconds per step."""
    seconds = {"layer1": 3 * TICK, "layer2": TICK, "readout": TICK}
    calls = []

    def probe(run, unit, device):
        calls.append(unit)
        budget.probe_seconds_per_step(run, unit, device)  # the stage runs (rows and shapes work)
        return seconds[unit]
    monkeypatch.setattr(trainers, "probe_seconds_per_step", probe)
    ends = _Ends()
    fitted = _fit("ib", _toy(), [ends], budget_minutes=0.02, budget_split="steps")
    b = fitted.result["budget"]
    assert calls == ["layer1", "layer2", "readout"] and b["split"] == "steps"
    assert b["probed_seconds_per_step"] == {"layer1": 3 * TICK, "layer2": TICK}
    weights = budget.stage_weights(2, "ib", b["probed_seconds_per_step"])
    assert weights["layer1"] == 1.5 and weights["layer2"] == 0.5
    for unit, plan in b["stages"].items():
        assert plan["seconds_per_step"] == seconds[unit]
        assert plan["share_seconds"] == pytest.approx(budget.stage_share(unit, weights, 1.2, 1.2))
        assert ends.ends[unit] == plan["steps"]
    time_split = _fit("ib", _toy(), budget_minutes=0.02).result["budget"]
    assert time_split["split"] == "time" and "probed_seconds_per_step" not in time_split


@pytest.mark.parametrize("method", ["ib", "ce"])
def test_the_budget_sets_each_stage_plan_and_the_stage_runs_it(fake_clock, method):
    ends = _Ends()
    fitted = _fit(method, _toy(), [ends], budget_minutes=0.02)  # 1.2 s
    plans = fitted.result["budget"]["stages"]
    weights = budget.stage_weights(2, method)
    assert list(plans) == list(weights) and fitted.result["budget"]["minutes"] == 0.02
    for unit, plan in plans.items():
        share = budget.stage_share(unit, weights, 1.2, 1.2)
        assert plan["seconds_per_step"] == TICK
        assert plan["share_seconds"] == pytest.approx(share)
        assert plan["steps"] == int(share / TICK)
        assert ends.ends[unit] == plan["steps"]  # the stage ran its plan, not its epochs
    if method == "ib":  # layer 1: 1.2 s * 1 / 2.05 at 1/64 s a step
        assert plans["layer1"]["steps"] == 37


def test_the_last_layer_weight_gives_its_time_to_the_other_layers(fake_clock):
    """``budget_last_layer_weight``: the last layer stage plans that fraction of a layer's
    share, the layers before it get the rest (1.2 s at 1/64 s a step, as above)."""
    fitted = _fit("ib", _toy(), budget_minutes=0.02, budget_last_layer_weight=0.25)
    b = fitted.result["budget"]
    weights = budget.stage_weights(2, "ib", last_layer_weight=0.25)
    assert weights == {"layer1": 1.0, "layer2": 0.25, "readout": 0.05}
    assert b["last_layer_weight"] == 0.25
    assert b["stages"]["layer1"]["steps"] == int(1.2 / 1.3 / TICK) == 59  # 37 at weight 1
    # (the fake clock spends nothing, so layer 2 plans with the whole 1.2 s left: 0.25 / 0.3)
    assert b["stages"]["layer2"]["steps"] == int(budget.stage_share("layer2", weights, 1.2, 1.2)
                                                 / TICK) == 64


def test_a_bigger_budget_plans_more_steps(fake_clock):
    small = _fit("ib", _toy(), budget_minutes=0.01).result["budget"]["stages"]
    big = _fit("ib", _toy(), budget_minutes=0.03).result["budget"]["stages"]
    assert all(big[u]["steps"] >= 3 * small[u]["steps"] - 2 for u in small)


def test_the_probes_leave_no_trace_in_the_run(monkeypatch):
    """A budgeted run whose plans equal the epoch budget's steps equals the run without a
    budget: the probes draw from their own generator and restore the global RNG."""
    monkeypatch.setattr(trainers, "plan_steps", lambda share, per_step: 8)
    data = _toy()
    with_budget = _fit("ib", data, budget_minutes=1.0)
    without = _fit("ib", data)
    assert with_budget.result["layers"] == without.result["layers"]
    assert with_budget.result["test_accuracy"] == without.result["test_accuracy"]
    a, b = with_budget.net.state_dict(), without.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in b)
    assert "budget" not in without.result


def test_result_names_the_machine():
    m = _fit("ce", _toy()).result["machine"]
    assert m["device"] == "cpu" and m["gpu"] is None and m["threads"] == torch.get_num_threads()
    assert isinstance(m["cpu"], str) and m["cpu"]


@pytest.mark.parametrize("kw,match", [
    (dict(budget_minutes=0), "budget_minutes must be a number of minutes > 0"),
    (dict(budget_minutes=5, val_fraction=0.0, budget_split="epochs"),
     "budget_split must be one of time, steps"),
    (dict(budget_minutes=5, val_fraction=0.2, val_refit=True), "--val-refit false"),
    (dict(budget_minutes=5, val_fraction=0.0, budget_last_layer_weight=0),
     r"budget_last_layer_weight must be in \(0, 1\]"),
    (dict(budget_minutes=5, val_fraction=0.2, val_refit=False, budget_extend=2),
     "use budget_extend 1"),
])
def test_bad_budget_settings_are_one_line_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kw)
