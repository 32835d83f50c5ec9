"""The reporting protocol: held-out batches, passes, the ln B flag and the shuffled-pairs baseline."""

import math

import pytest
import torch

from layerib.mi.critics import ConcatCritic, SeparableCritic
from layerib.mi.estimators import MIEstimator
from layerib.mi.protocol import (heldout_estimate, reported_estimate, reporting_estimator,
                                 shuffled_baseline, steps_to_epochs)


class _Fixed(torch.nn.Module):
    """A critic with fixed scores ``-scale * |u - v|^2``: no parameters to train."""

    def __init__(self, scale: float = 1.0):
        super().__init__()
        self.scale = scale

    def scores(self, u, v):
        return -self.scale * (u - v).pow(2).sum(-1)

    def pair_scores(self, u, v):
        return -self.scale * torch.cdist(u, v).pow(2)


def _correlated(n, rho, seed, dim=2):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dim, generator=g)
    return x, rho * x + math.sqrt(1 - rho * rho) * torch.randn(n, dim, generator=g)


def test_batches_are_shuffled_by_default_and_passes_multiply_batches():
    # Sorted held-out data: consecutive batches hold near-identical u, so their off-diagonal
    # "marginal" pairs are not independent and DV comes out biased; random batches are not.
    u = torch.sort(torch.randn(1024, generator=torch.Generator().manual_seed(0))).values[:, None]
    est = MIEstimator(_Fixed(5.0), bound="dv", marginal="all")
    ordered = heldout_estimate(est, u, u, 64, noise_var=0.1, shuffle=False)
    shuffled = heldout_estimate(est, u, u, 64, noise_var=0.1, passes=3)
    assert shuffled.n_batches == 3 * 16 and ordered.n_batches == 16
    assert shuffled.n_points == 1024
    assert ordered.value < shuffled.value - 0.5  # within-batch pairs look alike: the bias is large
    again = heldout_estimate(est, u, u, 64, noise_var=0.1, passes=3)
    assert again.value == shuffled.value  # seeded: reproducible


def test_estimate_above_ln_batch_is_flagged_not_hidden():
    u = torch.arange(256.0)[:, None]
    est = MIEstimator(_Fixed(1e3), bound="dv", marginal="all")  # marginal scores <= -1e3
    res = heldout_estimate(est, u, u, 32)
    assert math.isfinite(res.value) and res.exceeds_ln_batch and res.value > res.ln_batch
    assert res.ln_batch == pytest.approx(math.log(32))


def test_heldout_errors():
    est = MIEstimator(_Fixed(), bound="dv", marginal="all")
    u = torch.randn(10, 2)
    with pytest.raises(ValueError, match="fewer than 2 batches"):
        heldout_estimate(est, u, u, 8)
    with pytest.raises(ValueError, match="passes"):
        heldout_estimate(est, u, u, 4, passes=0)


def test_reporting_estimator_shares_the_critic():
    est = MIEstimator(ConcatCritic(2, 2, hidden=8), bound="dv", marginal="shuffle")
    rep = reporting_estimator(est, "all")
    assert rep.critic is est.critic and rep.marginal == "all" and rep.bound == "dv"
    assert reporting_estimator(est, None) is est
    assert steps_to_epochs(100, 1000, 100) == 10 and steps_to_epochs(5, 1000, 100) == 1


def test_shuffled_baseline_is_about_zero_and_fills_the_result():
    x, y = _correlated(1024, 0.9, seed=1)
    xt, yt = _correlated(1024, 0.9, seed=2)

    def make():
        return MIEstimator(SeparableCritic(2, 2, hidden=32, embed=8), bound="dv", marginal="all")

    kw = dict(steps=80, batch_size=128, lr=1e-2, seed=0, passes=4)
    base = shuffled_baseline(make, x, y, xt, yt, **kw)
    # Independent pairs: the true MI is 0. The held-out DV of a critic fitted to noise is
    # <= 0 in expectation (up to the log-mean-exp bias, ~1e-3 here); allow 0.05 nats
    # (about 5 standard errors of this 32-batch average).
    assert abs(base.value) < 0.05 and base.shuffled is None
    res = reported_estimate(make, x, y, xt, yt, **kw)
    truth = -math.log(1 - 0.81)  # 2 dims of rho = 0.9: 1.66 nats
    assert res.shuffled == pytest.approx(base.value)  # the same fresh critic, same seeds
    assert 1.0 < res.value < truth + 0.1  # a short fit: well above 0, not above the truth
    assert reported_estimate(make, x, y, xt, yt, baseline=False, **kw).shuffled is None
