"""The Gaussian-mixture AA-MINE critic: exact form, agreement with the truth, robustness, errors."""

import math

import pytest
import torch

from layerib.errors import ConfigError
from layerib.mi.critics import GaussianNoiseCritic
from layerib.mi.estimators import MIEstimator
from layerib.mi.ground_truth import mixture_mi
from layerib.mi.critics import MixtureNoiseCritic
from layerib.mi.protocol import heldout_estimate


def test_scores_are_the_log_density_ratio():
    g = torch.Generator().manual_seed(0)
    c, u, v = (torch.randn(n, 3, generator=g, dtype=torch.float64) for n in (5, 4, 6))
    s2 = 0.7
    critic = MixtureNoiseCritic(c, s2).double()
    with torch.no_grad():
        critic.logits.copy_(torch.randn(5, generator=g))
    w = torch.softmax(critic.logits.detach(), 0)

    def log_normal(z, mean):  # (len(z), len(mean))
        return -((z[:, None] - mean[None]) ** 2).sum(-1) / (2 * s2) - 1.5 * math.log(2 * math.pi * s2)

    p_v = (w * log_normal(v, c).exp()).sum(1)
    expected = log_normal(v, u).T - p_v.log()[None]  # [k, j] = log N(v_j; u_k) / p(v_j)
    assert torch.allclose(critic.pair_scores(u, v), expected, atol=1e-9)
    assert torch.allclose(critic.scores(u, v[:4]), expected.diagonal()[:4], atol=1e-9)


def test_dv_with_centres_at_the_data_matches_monte_carlo_truth():
    # Centres at the N points themselves make it the optimal critic: DV on all pairs then
    # estimates the mixture MI. B = 200 pairs, 10 passes: stderr ~0.01 nats; the log-mean-exp
    # bias is positive and ~1e-3 at 1 nat. Allow 0.05 nats (> 4 stderr of the two together).
    g = torch.Generator().manual_seed(1)
    pts = torch.randn(400, 2, generator=g)
    s2 = 0.3
    truth = mixture_mi(pts.double(), s2, n_samples=4000, generator=g)
    est = MIEstimator(MixtureNoiseCritic(pts, s2), bound="dv", marginal="all")
    res = heldout_estimate(est, pts, pts, 200, noise_var=s2, passes=10)
    assert abs(res.value - truth.value) < 0.05, (res.value, truth.value)


@pytest.mark.parametrize("bound", ["dv", "nwj", "infonce"])
@pytest.mark.parametrize("kind", ["mixture", "gaussian"])
def test_finite_with_huge_scores_and_all_equal_inputs(bound, kind):
    u = 1e2 * torch.randn(16, 4, generator=torch.Generator().manual_seed(2))
    z = u + 1e-3 * torch.randn(16, 4, generator=torch.Generator().manual_seed(3))

    def make(noise_var, feats):
        critic = (MixtureNoiseCritic(feats, noise_var) if kind == "mixture"
                  else GaussianNoiseCritic(4, noise_var, hidden=8))
        kw = {"infonce_over": "u"} if bound == "infonce" else {}
        return MIEstimator(critic, bound=bound, marginal="all", **kw)

    # scores of order |u|^2 / noise_var ~ 1e4 / 1e-2 = 1e6
    assert torch.isfinite(make(1e-2, u).value(u, z))
    same = torch.ones(16, 4)
    value = make(1.0, same).value(same, same)
    assert torch.isfinite(value)
    # All scores equal: DV and InfoNCE are exactly 0. (GaussianNoiseCritic, initialised from
    # a zero-variance batch, puts a -1e12 linear term on v that absorbs the rest in float32.)
    if bound != "nwj" and kind == "mixture":
        assert value.item() == pytest.approx(0.0, abs=1e-5)


def test_from_features_and_errors():
    feats = torch.randn(50, 3)
    critic = MixtureNoiseCritic.from_features(feats, 1.0, 20, torch.Generator().manual_seed(0))
    assert critic.n_centers == 20 and not critic.centers.requires_grad
    assert MixtureNoiseCritic.from_features(feats, 1.0, 999).n_centers == 50
    with pytest.raises(ConfigError, match="noise_var"):
        MixtureNoiseCritic(feats, 0.0)
    with pytest.raises(ConfigError, match="centers"):
        MixtureNoiseCritic(torch.full((2, 3), float("nan")), 1.0)
    with pytest.raises(ConfigError, match="n_centers"):
        MixtureNoiseCritic.from_features(feats, 1.0, 0)


def test_fixed_centres_norms_are_computed_once_and_follow_changes():
    """|c|^2 of fixed centres is cached (no M x d temporary per step) and recomputed when the
    centres change in place (a loaded state) or are learnt."""
    import torch
    from layerib.mi.critics import MixtureNoiseCritic
    g = torch.Generator().manual_seed(0)
    c = MixtureNoiseCritic(torch.randn(6, 3, generator=g), noise_var=2.0)
    v = torch.randn(4, 3, generator=g)
    first = c.v_term(v)
    assert torch.equal(c._center_sq(), c.centers.pow(2).sum(1)) and torch.equal(c.v_term(v), first)
    with torch.no_grad():
        c.centers.mul_(2.0)  # in place: a new version of the centres
    assert torch.equal(c._center_sq(), c.centers.pow(2).sum(1)) and not torch.equal(c.v_term(v), first)
    learnt = MixtureNoiseCritic(torch.randn(6, 3, generator=g), noise_var=2.0, learn_centers=True)
    learnt.v_term(v).sum().backward()
    assert learnt.centers.grad is not None  # learnt centres keep their gradient through |c|^2
