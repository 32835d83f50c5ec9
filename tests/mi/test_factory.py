"""The one estimator factory, the critic registry, the one settings object, the channel."""

import math

import pytest
import torch

from layerib.errors import ConfigError
from layerib.mi.channel import GaussianChannel
from layerib.mi.critics import CRITICS, GaussianNoiseCritic, MixtureNoiseCritic
from layerib.mi.estimate import estimate_mi
from layerib.mi.factory import make_estimator
from layerib.mi.fit import Validation, fit_critic
from layerib.mi.protocol import train_estimator
from layerib.mi.settings import EstimatorSettings, settings_from_options


def test_marginal_pairs_follow_from_critic_and_bound():
    ch, s = GaussianChannel(1.0), EstimatorSettings(hidden=8)
    assert make_estimator("concat", "dv", (2, 2), settings=s).marginal == "shuffle"  # MINE
    assert make_estimator("concat", "dv", (2, 2), settings=EstimatorSettings(
        hidden=8, concat_marginal="all")).marginal == "all"
    assert make_estimator("separable", "nwj", (2, 2), settings=s).marginal == "all"
    assert make_estimator("gaussian", "infonce", (2, 2), channel=ch, settings=s).infonce_over == "u"
    assert make_estimator("separable", "infonce", (2, 2), settings=s).infonce_over == "v"
    prior = torch.full((3,), 1 / 3)
    assert make_estimator("heads", "dv", (4, 3), settings=s, prior=prior).spec.name == "dv_known"
    assert make_estimator("label", "nwj", (4, 3), settings=s, prior=prior).marginal == "all"
    assert make_estimator("gaussian", "dv", (2, 2), channel=ch).ema is not None
    assert make_estimator("channel", "infonce", (2, 2), channel=ch).critic is ch


def test_factory_errors_are_one_line_and_name_the_fix():
    with pytest.raises(ConfigError, match="unknown critic 'mlp'; choose from concat"):
        make_estimator("mlp", "dv", (2, 2))
    with pytest.raises(ConfigError, match="unknown bound 'mine'"):
        make_estimator("concat", "mine", (2, 2))
    with pytest.raises(ConfigError, match="pass channel=GaussianChannel"):
        make_estimator("mixture", "dv", (2, 2), rows=(None, torch.zeros(4, 2)))
    with pytest.raises(ConfigError, match="needs the class prior"):
        make_estimator("heads", "dv", (2, 3))


def test_every_registered_critic_builds_and_scores():
    u, ch = torch.randn(6, 3), GaussianChannel(0.5)
    for name, spec in CRITICS.items():
        labels = "labels" in spec.kinds
        v = torch.arange(6) % 2 if labels else u + 0.1
        est = make_estimator(name, "dv", (3, 2 if labels else 3), channel=ch,
                             settings=EstimatorSettings(hidden=4, n_centers=4),
                             rows=(u, u), prior=torch.full((2,), 0.5) if labels else None,
                             generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(est.value(u, v)), name


def test_noise_critics_hold_the_channel_and_load_old_state_dicts():
    ch = GaussianChannel(2.0)
    c = GaussianNoiseCritic(3, ch, hidden=4)
    assert c.channel is ch and float(c.scale) == 0.5
    old = {("scale" if k == "channel.scale" else k): v for k, v in c.state_dict().items()}
    fresh = GaussianNoiseCritic(3, 2.0, hidden=4)
    fresh.load_state_dict(old)  # a checkpoint of the time the critic kept its own scale
    m = MixtureNoiseCritic(torch.zeros(2, 3), ch)
    assert m.channel is ch
    with pytest.raises(ConfigError, match="noise variance 0"):
        MixtureNoiseCritic(torch.zeros(2, 3), 0)


@pytest.mark.parametrize("bad", [0, -1.0, math.inf, math.nan, True, "1"])
def test_channel_is_the_one_check_of_sigma2(bad):
    with pytest.raises(ConfigError, match="noise variance .* must be a finite number > 0"):
        GaussianChannel.check(bad)


def test_zero_is_no_channel_only_where_the_caller_says_so():
    assert GaussianChannel.check(0, zero_ok=True) == 0.0
    with pytest.raises(ConfigError, match=r">= 0 \(0: no noise\)"):
        GaussianChannel.check(-1e-3, zero_ok=True)
    assert GaussianChannel.check(torch.tensor(0.25)) == 0.25


def test_channel_sampler_draws_sd_times_standard_normals():
    ch, like = GaussianChannel(9.0), torch.zeros(1000, 4)
    eps = ch.sample(like, torch.Generator().manual_seed(0))
    assert torch.equal(eps, 3.0 * torch.randn(1000, 4, generator=torch.Generator().manual_seed(0)))
    rows = ch.row_noise(5, (4,), seed=3)
    assert torch.equal(rows[torch.tensor([4, 1])], rows[torch.arange(5)][[4, 1]])


def test_fixed_step_fit_is_train_estimator():
    u = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    runs = []
    for fixed in (True, False):
        torch.manual_seed(0)
        est = make_estimator("separable", "dv", (2, 2), settings=EstimatorSettings(hidden=8))
        if fixed:
            hist = train_estimator(est, u, u, epochs=3, batch_size=64, noise_var=0.5, seed=1)
        else:
            hist = fit_critic(est, u, u, steps=9, batch_size=64, lr=1e-3,
                              channel=GaussianChannel(0.5), seed=1).history
        runs.append((hist, [p.detach().clone() for p in est.parameters()]))
    assert runs[0][0] == runs[1][0] and len(runs[0][0]) == 9
    assert all(torch.equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))


def test_early_stopping_restores_the_best_check():
    g = torch.Generator().manual_seed(0)
    u = torch.randn(300, 2, generator=g)
    v = u + 0.3 * torch.randn(300, 2, generator=g)
    torch.manual_seed(0)
    est = make_estimator("separable", "infonce", (2, 2), settings=EstimatorSettings(hidden=16))
    log = fit_critic(est, u[:200], v[:200], steps=200, batch_size=32, lr=3e-2,
                     validation=Validation(u[200:], v[200:], 50, every=10, patience=2))
    assert log.best_value == max(val for _, val in log.curve)
    assert dict(log.curve)[log.best_step] == log.best_value


def test_settings_reject_unknown_and_excluded_options():
    with pytest.raises(ConfigError, match="unknown option.*steps; choose from"):
        settings_from_options({"steps": 3}, exclude=("steps",))
    with pytest.raises(ConfigError, match="hidden must be an integer >= 1"):
        EstimatorSettings(hidden=0)


def test_estimate_mi_rejects_the_recipes_options():
    x = torch.randn(100, 2)
    with pytest.raises(ConfigError, match=r"unknown option\(s\) passes, steps; choose from"):
        estimate_mi(x, x, steps=3, passes=2)
