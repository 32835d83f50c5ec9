"""The bound registry: every bound's per-row terms average to its batch value; names checked."""

import pytest
import torch

from layerib.errors import ConfigError
from layerib.mi.bounds import BOUND_NAMES, BOUNDS, Scores, get_bound
from layerib.mi.critics import LabelHeadsCritic, SeparableCritic
from layerib.mi.estimators import MIEstimator


@pytest.mark.parametrize("name", BOUND_NAMES)
def test_rows_average_to_the_batch_value(name):
    torch.manual_seed(0)
    u = torch.randn(32, 3)
    est = MIEstimator(SeparableCritic(3, 3, 16), bound=name, marginal="all", ema_rate=None)
    with torch.no_grad():
        v = u + 0.5 * torch.randn(32, 3)
        assert torch.allclose(est.row_terms(u, v).mean(), est.value(u, v), atol=1e-5)


@pytest.mark.parametrize("name", [n for n in BOUND_NAMES if BOUNDS[n].exact])
def test_exact_variant_rows_average_to_the_batch_value(name):
    torch.manual_seed(1)
    l, y = torch.randn(40, 4), torch.randint(0, 3, (40,))
    est = MIEstimator(LabelHeadsCritic(4, 3, 8), bound=name, marginal="exact",
                      prior=torch.tensor([0.5, 0.3, 0.2]))
    assert est.spec is BOUNDS[BOUNDS[name].exact] and est.bound == name
    with torch.no_grad():
        assert torch.allclose(est.row_terms(l, y).mean(), est.value(l, y), atol=1e-5)


def test_unknown_bound_is_an_error_listing_the_choices():
    with pytest.raises(ConfigError, match="unknown bound 'mine2'; choose from dv, nwj, infonce"):
        get_bound("mine2")
    with pytest.raises(ConfigError, match="unknown bound"):
        MIEstimator(SeparableCritic(2, 2, 4), bound="mine2")


def test_nwj_has_no_exact_variant_and_exact_variants_need_classes():
    with pytest.raises(ConfigError, match="exact-marginal variant"):
        MIEstimator(LabelHeadsCritic(2, 3, 4), bound="nwj", marginal="exact", prior=torch.ones(3) / 3)
    with pytest.raises(ConfigError, match="marginal='exact'"):
        MIEstimator(LabelHeadsCritic(2, 3, 4), bound="dv_known", marginal="all")


def test_registry_flags():
    assert BOUNDS["infonce"].capped_at_ln_b and not BOUNDS["dv"].capped_at_ln_b
    assert BOUNDS["dv"].mine and not BOUNDS["nwj"].mine and BOUNDS["infonce"].marginal_term is None
    zero = Scores(torch.zeros(4), marginal=torch.zeros(12), matrix=torch.zeros(4, 4))
    for name in BOUND_NAMES:
        expect = -torch.exp(torch.tensor(-1.0)) if name == "nwj" else torch.tensor(0.0)
        assert torch.allclose(BOUNDS[name].batch(zero), expect, atol=1e-6)
