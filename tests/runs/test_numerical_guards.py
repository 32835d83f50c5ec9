"""Numerical guards: the bounds on extreme critic outputs, and what training does with them.

Critic outputs of +-1e4 must give finite bounds (every log-mean-exp is a
logsumexp) and training goes on; NaN or inf must stop training with a
NumericalError naming layer, step and term, keep the last good checkpoint and
make the CLI exit with status 2.
"""

from __future__ import annotations

import math

import pytest
import torch

from layerib.runs.checkpoint import CHECKPOINT, check_finite_state, load_checkpoint
from layerib.cli import main
from layerib.config import TrainConfig
from layerib.errors import NumericalError
from layerib.ib.layerwise import train_layer
from layerib.ib.objective import IBObjective
from layerib.mi import bounds
from layerib.mi.channel import GaussianChannel
from layerib.mi.critics import GaussianNoiseCritic, LabelCritic
from layerib.mi.mine import MovingAverageLogMeanExp, mine_surrogate
from layerib.models.mlp import mlp
from layerib.ib.layerwise import stage_steps

B, C = 16, 10


def _scores(value: float, shape=(B, B)) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return value + torch.randn(shape, generator=g)  # +-1e4 plus spread: no ties


@pytest.mark.parametrize("value", [1e4, -1e4])
def test_every_bound_is_finite_for_critic_outputs_of_1e4(value):
    s = _scores(value)
    prior = torch.full((C,), 1.0 / C)
    cls = _scores(value, (B, C))
    y = torch.arange(B) % C
    joint = cls[torch.arange(B), y]
    values = {
        "log_mean_exp": bounds.log_mean_exp(s),
        "dv": bounds.dv_bound(s.diagonal(), s),
        "infonce": bounds.infonce_bound(s),
        "dv_known_marginal": bounds.dv_known_marginal(joint, cls, prior),
        "infonce_known_marginal": bounds.infonce_known_marginal(joint, cls, prior),
    }
    for name, v in values.items():
        assert torch.isfinite(v), (name, v)
    # the scores' common offset cancels: a bound of 1e4-scale scores is O(1) nats
    assert abs(float(values["dv"])) < 10 and float(values["infonce"]) <= math.log(B) + 1e-4
    # NWJ's E[exp(T - 1)] is really 1e4-scale-exponential: -inf on +1e4, finite on -1e4
    nwj = bounds.nwj_bound(s.diagonal(), s)
    assert torch.isfinite(nwj) if value < 0 else float(nwj) == -math.inf


def test_mine_moving_average_stays_finite_on_1e4_jumps():
    ema = MovingAverageLogMeanExp(0.01)
    for value in (0.0, 1e4, -1e4, 1e4):
        s = _scores(value, (B,)).requires_grad_(True)
        surrogate = mine_surrogate(s, s, ema)
        surrogate.backward()
        assert torch.isfinite(surrogate) and torch.isfinite(s.grad).all()
        # the batch is folded in before use, so exp(lme - log_ema) <= 1 / rate
        # (float32 at the 1e4 scale: a relative tolerance of 1e-3)
        assert float((s.mean() - surrogate).detach()) <= (1 / 0.01) * (1 + 1e-3)
    before = ema.log_ema
    assert ema.update(torch.tensor(float("nan"))) == before  # a NaN batch leaves it as it was
    assert ema.update(torch.tensor(float("inf"))) == before


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_critic_outputs_propagate(bad):
    s = _scores(0.0)
    s[3, 5] = bad
    for v in (bounds.dv_bound(s.diagonal(), s), bounds.infonce_bound(s)):
        # one marginal pair at -inf only drops out (exp(-inf) = 0); NaN and +inf propagate
        assert bool(torch.isfinite(v)) == (bad == -float("inf"))
    s = _scores(0.0)
    s[2, 2] = bad  # on the diagonal (a joint pair) every bound is non-finite
    assert not torch.isfinite(bounds.dv_bound(s.diagonal(), s))
    assert not torch.isfinite(bounds.infonce_bound(s))


def _toy(n=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 8, generator=g) * 0.3
    x[torch.arange(n), y] += 2.0
    return x, y, g


def _stage(**kw):
    cfg = TrainConfig(widths=(16, 12, 4), batch_size=32, epochs_per_layer=1,
                      min_steps_per_layer=6, critic_hidden=16, beta=1e-2, **kw)
    return cfg


def _force_outputs(monkeypatch, value, critic="label"):
    """Make the label critic (or the Gaussian AA-MINE critic) output ``value`` everywhere,
    still as a function of its parameters (so gradients flow)."""
    if critic == "label":
        orig = LabelCritic.class_scores
        monkeypatch.setattr(LabelCritic, "class_scores", lambda self, l: orig(self, l) * 0 + value)
    else:
        # pair_scores = gauss_pair_scores + q(v): patching the exact part reaches both the
        # DV path and the default q-free InfoNCE path (IBObjective.q_free)
        orig = GaussianNoiseCritic.gauss_pair_scores
        monkeypatch.setattr(GaussianNoiseCritic, "gauss_pair_scores",
                            lambda self, u, v: orig(self, u, v) * 0 + value)
        orig_ch = GaussianChannel.pair_scores  # the q-free path's parameter-free critic
        monkeypatch.setattr(GaussianChannel, "pair_scores",
                            lambda self, u, v: orig_ch(self, u, v) * 0 + value)


@pytest.mark.parametrize("critic", ["label", "gaussian"])
@pytest.mark.parametrize("value", [1e4, -1e4])
def test_training_goes_on_with_critic_outputs_of_1e4(monkeypatch, critic, value):
    _force_outputs(monkeypatch, value, critic)
    x, y, g = _toy()
    net = mlp((8,), (16, 12, 4))
    records = []
    train_layer(net.layers[0], 1, x, y, torch.full((4,), 0.25), _stage(), g,
                heldout=(x, y), on_eval=records.append)
    assert all(torch.isfinite(p).all() for p in net.parameters())
    assert records and all(math.isfinite(r["train_i_y_nats"]) for r in records)


# with the default Gaussian critic + InfoNCE, no AA-MINE critic is trained (q cancels), so
# its non-finite output first shows in the layer's IB Lagrangian
@pytest.mark.parametrize("update", ["joint", "alternating"])
@pytest.mark.parametrize("critic,term", [("label", "critic objective"),
                                         ("gaussian", "IB Lagrangian")])
@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nan_or_inf_critic_outputs_stop_training_naming_layer_step_term(monkeypatch, critic,
                                                                        term, value, update):
    _force_outputs(monkeypatch, value, critic)
    x, y, g = _toy()
    net = mlp((8,), (16, 12, 4))
    with pytest.raises(NumericalError, match=f"non-finite {term} at layer 2, step 0"):
        train_layer(net.layers[1], 2, net.layers[0](x).detach(), y, torch.full((4,), 0.25),
                    _stage(critic_update=update), g)


@pytest.mark.parametrize("update", ["joint", "alternating"])
def test_nan_in_the_lagrangian_names_its_term(monkeypatch, update):
    orig = IBObjective.layer_objective

    def nan_lagrangian(self, l, y, z):
        lagrangian, iy, ix = orig(self, l, y, z)
        return lagrangian * float("nan"), iy, ix
    monkeypatch.setattr(IBObjective, "layer_objective", nan_lagrangian)
    x, y, g = _toy()
    net = mlp((8,), (16, 12, 4))
    with pytest.raises(NumericalError, match="non-finite IB Lagrangian at layer 1, step 0"):
        train_layer(net.layers[0], 1, x, y, torch.full((4,), 0.25), _stage(critic_update=update), g)


def test_parameter_guard_names_the_parameter():
    state = {"net": {"layers.0.1.weight": torch.ones(3)},
             "local": {"opt_l": {"state": {0: {"exp_avg": torch.tensor([1.0, float("inf")])}}}}}
    with pytest.raises(NumericalError, match=r"parameter local\.opt_l\.state\.0\.exp_avg in stage "
                                             r"layer2 at step 8"):
        check_finite_state(state, "layer2", 8)
    check_finite_state({"net": {"w": torch.ones(2)}, "perm": torch.arange(3)}, "layer1", 1)


def test_nan_mid_run_exits_2_and_keeps_the_last_good_checkpoint(tiny_mnist, tmp_path,
                                                                monkeypatch, capsys):
    orig, calls = IBObjective.layer_objective, []

    def layer_objective(self, l, y, z):  # NaN from layer 2's sixth step (step index 5) on
        calls.append(1)
        lag, iy, ix = orig(self, l, y, z)
        return (lag * float("nan") if len(calls) > 8 + 5 else lag), iy, ix

    monkeypatch.setattr(IBObjective, "layer_objective", layer_objective)
    out = tmp_path / "run"
    rc = main(["train", "--method", "ib", "--data-root", str(tiny_mnist), "--out", str(out),
               "--epochs-per-layer", "1", "--min-steps-per-layer", "8", "--readout-epochs", "1",
               "--batch-size", "64", "--widths", "32,16,10", "--critic-hidden", "16",
               "--beta", "0.01", "--noise-var", "0.5", "--checkpoint-every", "4",
               "--grad-clip", "5", "--val-fraction", "0", "--no-progress", "--offline"])
    err = capsys.readouterr().err
    assert rc == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "non-finite IB Lagrangian at layer 2, step 5" in err
    assert "last good checkpoint is kept" in err
    ck = load_checkpoint(out / CHECKPOINT)
    assert (ck["done"], ck["stage"], ck["step"]) == (1, "layer2", 4)
    assert ck["config"]["grad_clip"] == 5.0  # gradient clipping is part of the run's config
    check_finite_state(ck, "check", 0)
    assert not (out / "result.json").exists()


def test_grad_clip_is_applied(monkeypatch):
    seen = []
    real = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_",
                        lambda params, clip: seen.append(clip) or real(params, clip))
    x, y, g = _toy()
    net = mlp((8,), (16, 12, 4))
    train_layer(net.layers[0], 1, x, y, torch.full((4,), 0.25), _stage(grad_clip=0.5), g)
    assert seen and set(seen) == {0.5}
    seen.clear()
    train_layer(net.layers[1], 2, net.layers[0](x).detach(), y, torch.full((4,), 0.25),
                _stage(), g)
    assert seen == []  # off by default
