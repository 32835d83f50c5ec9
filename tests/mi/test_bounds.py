"""Exact properties of the bounds (no training, deterministic)."""

import math

import pytest
import torch

from layerib.mi.bounds import dv_bound, dv_known_marginal, infonce_bound, log_mean_exp, nwj_bound
from layerib.mi.mine import MovingAverageLogMeanExp, mine_surrogate


@pytest.mark.parametrize("c", [-3.0, 0.0, 1.0, 7.5])
def test_constant_critic_gives_zero(c):
    joint, marg = torch.full((64,), c), torch.full((64, 63), c)
    assert dv_bound(joint, marg).item() == pytest.approx(0.0, abs=1e-5)
    assert infonce_bound(torch.full((64, 64), c)).item() == pytest.approx(0.0, abs=1e-5)
    assert dv_known_marginal(joint, torch.full((64, 10), c), torch.full((10,), 0.1)).item() \
        == pytest.approx(0.0, abs=1e-5)


def test_nwj_of_constant_one_is_zero():
    assert nwj_bound(torch.ones(32), torch.ones(32)).item() == pytest.approx(0.0, abs=1e-6)


def test_dv_at_least_nwj():
    g = torch.Generator().manual_seed(0)
    for _ in range(20):
        joint, marg = 3 * torch.randn(50, generator=g), 3 * torch.randn(50, 49, generator=g)
        assert dv_bound(joint, marg) >= nwj_bound(joint, marg) - 1e-6


def test_infonce_never_above_ln_batch():
    g = torch.Generator().manual_seed(1)
    b = 32
    scores = torch.randn(b, b, generator=g)
    scores.diagonal().add_(1e3)  # a perfect critic
    assert infonce_bound(scores).item() <= math.log(b) + 1e-5
    assert infonce_bound(scores).item() == pytest.approx(math.log(b), abs=1e-4)


@pytest.mark.parametrize("scale", [1e4, -1e4])
def test_finite_with_huge_scores(scale):
    g = torch.Generator().manual_seed(2)
    joint = scale * torch.rand(16, generator=g)
    marg = scale * torch.rand(16, 15, generator=g)
    assert torch.isfinite(dv_bound(joint, marg))
    assert torch.isfinite(infonce_bound(scale * torch.rand(16, 16, generator=g)))
    assert torch.isfinite(log_mean_exp(marg))


def test_known_marginal_matches_direct_formula():
    g = torch.Generator().manual_seed(3)
    scores = torch.randn(8, 3, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    prior = torch.tensor([0.5, 0.3, 0.2])
    direct = scores.gather(1, y[:, None]).mean() - torch.log((scores.exp() * prior).sum(1).mean())
    got = dv_known_marginal(scores.gather(1, y[:, None]).squeeze(1), scores, prior)
    assert got.item() == pytest.approx(direct.item(), abs=1e-5)


def test_mine_surrogate_gradient_uses_moving_average():
    ema = MovingAverageLogMeanExp(rate=0.5)
    ema.update(torch.tensor(math.log(4.0)))  # the average starts at 4
    t = torch.zeros(4, requires_grad=True)
    marg = t + 0.0
    surrogate = mine_surrogate(torch.zeros(1), marg, ema)  # batch mean 1 -> ema 2.5
    surrogate.backward()
    # d/dT_k of -mean(exp T) / ema = -exp(T_k) / (4 * 2.5)
    assert t.grad == pytest.approx(torch.full((4,), -1 / (4 * 2.5)), abs=1e-6)
    with pytest.raises(ValueError, match="rate"):
        MovingAverageLogMeanExp(rate=0.0)


def test_infonce_known_marginal_properties():
    from layerib.mi.bounds import infonce_known_marginal
    prior = torch.tensor([0.5, 0.25, 0.25])
    y = torch.tensor([0, 0, 1, 2])
    const = torch.full((4, 3), 2.0)
    assert infonce_known_marginal(const[:, 0], const, prior).item() == pytest.approx(0.0, abs=1e-6)
    perfect = torch.full((4, 3), -50.0)
    perfect[torch.arange(4), y] = 50.0
    entropy = -(prior * prior.log()).sum().item()
    value = infonce_known_marginal(perfect[torch.arange(4), y], perfect, prior).item()
    # a perfect classifier reaches E[-log prior_y] = H(Y) on this balanced-to-prior sample
    assert value == pytest.approx(entropy, abs=1e-4)
