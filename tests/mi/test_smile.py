"""SMILE (Song & Ermon, ICLR 2020, Eq. 17): one entry in the bound registry, usable everywhere."""

import json

import pytest
import torch
import torch.nn.functional as F

from layerib.cli import main
from layerib.config import config_from_dict
from layerib.ib.objective import IBObjective, trainer_settings
from layerib.mi.bounds import BOUNDS, SMILE_TAU, dv_bound, smile_bound
from layerib.mi.critics import SeparableCritic
from layerib.mi.estimate import estimate_mi
from layerib.mi.estimators import MIEstimator
from layerib.mi.ground_truth import rho_for_mi, sample_correlated_gaussians


def test_equals_dv_when_every_score_is_within_tau():
    g = torch.Generator().manual_seed(0)
    joint, marg = 8 * torch.rand(64, generator=g) - 4, 8 * torch.rand(64, 63, generator=g) - 4
    assert torch.equal(smile_bound(joint, marg), dv_bound(joint, marg))
    assert SMILE_TAU == 5.0  # the authors' default clip


def test_clips_marginal_scores_to_tau():
    joint = torch.zeros(8)
    assert float(smile_bound(joint, torch.full((8, 7), 30.0))) == pytest.approx(-SMILE_TAU)
    assert float(smile_bound(joint, torch.full((8, 7), -30.0))) == pytest.approx(SMILE_TAU)
    assert float(dv_bound(joint, torch.full((8, 7), 30.0))) == pytest.approx(-30.0)
    # joint scores are not clipped: only the marginal term is
    assert float(smile_bound(torch.full((8,), 30.0), torch.zeros(8, 7))) == pytest.approx(30.0)


def test_rows_average_to_the_value_and_training_follows_the_js_gradient():
    torch.manual_seed(0)
    u = torch.randn(32, 2)
    est = MIEstimator(SeparableCritic(2, 2, 8), bound="smile", marginal="all")
    v = u + 0.1 * torch.randn(32, 2)
    with torch.no_grad():
        assert torch.allclose(est.row_terms(u, v).mean(), est.value(u, v), atol=1e-5)
    surrogate, value = est.objective(u, v)
    assert est.ema is None and torch.allclose(surrogate, value, atol=1e-6)
    # the surrogate's gradient is the JS bound's (as in the authors' code)
    p = est.critic.pair_scores(u, v)
    off = p.masked_select(~torch.eye(32, dtype=torch.bool))
    js = -F.softplus(-p.diagonal()).mean() - F.softplus(off).mean()
    params = list(est.parameters())
    for a, b in zip(torch.autograd.grad(surrogate, params), torch.autograd.grad(js, params)):
        assert torch.allclose(a, b, atol=1e-6)
    assert BOUNDS["smile"].pairs == "marginal" and not BOUNDS["smile"].capped_at_ln_b


def test_estimate_mi_recovers_a_gaussian_pair():
    # 2-d Gaussian pair at I = 2 nats (closed form), 3 000 rows, 600 of them held out.
    # Tolerance 0.2 nats (10 %): the test value's standard error is ~0.05 nats and SMILE's
    # clipping at tau = 5 costs nothing at 2 nats (1.93 and 1.96 on seeds 0 and 1).
    x, y = sample_correlated_gaussians(3000, 2, rho_for_mi(2.0, 2), torch.Generator().manual_seed(1))
    r = estimate_mi(x, y, candidates=("separable-smile",), restarts=1, baseline=False, seed=1)
    assert r.bound == "smile" and r.critic == "separable"
    assert abs(r.value - 2.0) < 0.2, r.value


def test_layerib_estimate_accepts_bounds_smile(tiny_mnist, tmp_path):
    out = tmp_path / "est.json"
    assert main(["estimate", "--widths", "16,10", "--noise-var", "0.5", "--layers", "1",
                 "--critics", "mixture", "--bounds", "smile", "--data-root", str(tiny_mnist),
                 "--out", str(out), "--n-train", "300", "--n-test", "200", "--batch-size", "50",
                 "--steps", "4", "--passes", "1", "--mc-samples", "256", "--hidden", "16",
                 "--n-centers", "100", "--no-baseline", "--offline", "--no-progress"]) == 0
    (layer,) = json.loads(out.read_text())["layers"]
    assert layer["i_x"][0]["estimates"]["mixture/smile"]["bound"] == "smile"
    assert layer["i_y"]["smile"]["bound"] == "smile"


def test_training_accepts_x_bound_smile():
    assert config_from_dict({"x_bound": "smile"}).x_bound == "smile"
    torch.manual_seed(0)
    obj = IBObjective(6, torch.full((3,), 1 / 3), beta=0.5, noise_var=1.0, x_bound="smile",
                      settings=trainer_settings(8, 0.01))
    assert not obj.q_free and obj.reported_i_x.bound == "smile"
    l, y = torch.randn(32, 6, requires_grad=True), torch.arange(32) % 3
    z = l.detach() + obj.sample_noise(l, torch.Generator().manual_seed(0))
    surrogate, _, ix = obj.critic_objective(l, y, z)
    lagrangian, _, ix2 = obj.layer_objective(l, y, z)
    assert torch.isfinite(surrogate) and torch.isfinite(lagrangian) and torch.isfinite(ix2)
    lagrangian.backward()
    assert torch.isfinite(l.grad).all()
