"""The issue's exact properties, through the estimator API for every bound and marginal."""

import math

import pytest
import torch

from layerib.mi.critics import LabelCritic, SeparableCritic
from layerib.mi.estimators import MIEstimator


class _Constant(torch.nn.Module):
    def __init__(self, c: float):
        super().__init__()
        self.c = c

    def scores(self, u, v):
        return torch.full((len(u),), self.c)

    def pair_scores(self, u, v):
        return torch.full((len(u), len(v)), self.c)

    def class_scores(self, u):
        return torch.full((len(u), 3), self.c)


@pytest.mark.parametrize("bound,marginal,over", [
    ("dv", "all", "v"), ("dv", "shuffle", "v"), ("infonce", "all", "v"), ("infonce", "all", "u"),
    ("dv", "exact", "v"), ("infonce", "exact", "v"), ("nwj", "all", "v"), ("nwj", "shuffle", "v")])
@pytest.mark.parametrize("c", [-5.0, 1.0, 3e3])
def test_constant_critic_gives_zero_for_every_bound(bound, marginal, over, c):
    prior = torch.tensor([0.2, 0.3, 0.5]) if marginal == "exact" else None
    est = MIEstimator(_Constant(c), bound=bound, marginal=marginal, prior=prior, infonce_over=over)
    u, v = torch.randn(12, 2), torch.randint(0, 3, (12,))
    value = est.value(u, v).item()
    if bound == "nwj":  # NWJ of a constant critic is c - exp(c - 1): 0 at c = 1, below 0 elsewhere
        assert value == pytest.approx(c - math.exp(c - 1) if c < 50 else -math.inf, abs=1e-4)
    else:
        assert value == pytest.approx(0.0, abs=1e-4)


def test_dv_at_least_nwj_and_infonce_at_most_ln_batch_on_the_same_critic():
    torch.manual_seed(0)
    critic = SeparableCritic(3, 3, hidden=16, embed=4)
    with torch.no_grad():
        for p in critic.parameters():
            p.mul_(5.0)  # large, varied scores
    for seed in range(5):
        g = torch.Generator().manual_seed(seed)
        u, v = torch.randn(32, 3, generator=g), torch.randn(32, 3, generator=g)
        dv = MIEstimator(critic, bound="dv", marginal="all").value(u, v)
        nwj = MIEstimator(critic, bound="nwj", marginal="all").value(u, v)
        assert dv >= nwj - 1e-5
        for over in ("u", "v"):
            nce = MIEstimator(critic, bound="infonce", marginal="all", infonce_over=over).value(u, u)
            assert nce.item() <= math.log(32) + 1e-5


def test_label_critic_finite_with_huge_scores():
    critic = LabelCritic(4, 3, hidden=8)
    with torch.no_grad():
        critic.head[-1].bias.fill_(1e4)
        critic.head[-1].weight.mul_(1e4)
    l, y = 10 * torch.randn(16, 4), torch.randint(0, 3, (16,))
    prior = torch.full((3,), 1 / 3)
    for bound in ("dv", "infonce"):
        value = MIEstimator(critic, bound=bound, marginal="exact", prior=prior).value(l, y)
        assert torch.isfinite(value)
