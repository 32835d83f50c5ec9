"""The learning-rate schedule (``lr_schedule``): values, what each loop applies, errors.

Resuming a cosine-scheduled stage bit-identically is in ``tests/runs/test_resume.py``.
"""

import math

import pytest
import torch

import layerib.ib.endtoend as endtoend
import layerib.ib.layerwise as layerwise
from layerib.config import TrainConfig
from layerib.errors import ConfigError
from layerib.ib.endtoend import train_cross_entropy
from layerib.ib.layerwise import stage_steps, train_layer
from layerib.models.mlp import mlp
from layerib.utils.optim import scheduled_lr


def test_cosine_values_and_constant():
    assert scheduled_lr(0.1, 0, 10, "cosine") == pytest.approx(0.1, abs=1e-15)
    assert scheduled_lr(0.1, 5, 10, "cosine") == pytest.approx(0.05, abs=1e-15)
    assert scheduled_lr(0.1, 10, 10, "cosine") == pytest.approx(0.0, abs=1e-15)
    assert scheduled_lr(0.1, 25, 10, "cosine") == pytest.approx(0.0, abs=1e-15)  # past it: 0
    lrs = [scheduled_lr(1.0, t, 50, "cosine") for t in range(51)]
    assert all(a > b for a, b in zip(lrs, lrs[1:]))  # strictly decreasing to the horizon
    assert all(scheduled_lr(0.3, t, 7, "constant") == 0.3 for t in range(20))
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'step'"):
        scheduled_lr(0.1, 0, 10, "step")
    with pytest.raises(ValueError, match="horizon=0"):
        scheduled_lr(0.1, 0, 0, "cosine")


def _toy(n=256):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 4
    x = torch.randn(n, 8, generator=g) * 0.3
    x[torch.arange(n), y] += 2.0
    return x, y, g


def _record(monkeypatch, module):
    """Every rate the loop sets, in order (the optimiser's, after set_lr)."""
    seen = []
    real = module.set_lr

    def spy(opt, lr):
        real(opt, lr)
        seen.append(opt.param_groups[0]["lr"])
    monkeypatch.setattr(module, "set_lr", spy)
    return seen


@pytest.mark.parametrize("schedule", ["constant", "cosine"])
def test_a_layer_stage_follows_the_schedule_and_the_critics_keep_their_rate(monkeypatch, schedule):
    x, y, g = _toy()
    cfg = TrainConfig(widths=(16, 4), batch_size=64, epochs_per_layer=3, min_steps_per_layer=0,
                      critic_hidden=16, beta=1e-2, lr_layer=0.02, lr_schedule=schedule)
    steps, _ = stage_steps(cfg, len(x))
    seen = _record(monkeypatch, layerwise)
    opts = []
    real_update = layerwise.LayerUpdate

    class Spy(real_update):
        def __init__(self, *a, **k):
            super().__init__(*a, **k)
            opts.append(self)
    monkeypatch.setattr(layerwise, "LayerUpdate", Spy)
    train_layer(mlp((8,), (16, 4)).layers[0], 1, x, y, torch.full((4,), 0.25), cfg, g)
    if schedule == "constant":  # the paper's fixed rate: never touched
        assert seen == [] and opts[0].opt_l.param_groups[0]["lr"] == 0.02
    else:
        assert seen == pytest.approx([0.02 * 0.5 * (1 + math.cos(math.pi * t / steps))
                                      for t in range(steps)], abs=1e-12)
    assert opts[0].opt_c.param_groups[0]["lr"] == cfg.lr_critic


def test_ce_follows_the_schedule_over_its_horizon(monkeypatch):
    x, y, g = _toy()
    seen = _record(monkeypatch, endtoend)
    train_cross_entropy(mlp((8,), (16, 4)), x, y, steps=12, batch_size=64, lr=0.01, g=g,
                        lr_schedule="cosine", lr_horizon=24)  # a refit's longer horizon
    assert seen == pytest.approx([0.01 * 0.5 * (1 + math.cos(math.pi * t / 24))
                                  for t in range(12)], abs=1e-12)


def test_config_errors_name_the_fix():
    with pytest.raises(ConfigError, match="lr_schedule must be one of constant, cosine"):
        TrainConfig(lr_schedule="linear")
    with pytest.raises(ConfigError, match="budget_extend 2 could only add steps at a rate of 0"):
        TrainConfig(lr_schedule="cosine", budget_extend=2)
