"""Benchmark samplers (closed forms checked by Monte-Carlo), KSG and CCA, the copula map, row terms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import gammaln

from layerib.mi import bounds
from layerib.mi.baselines import cca_mi, ksg_mi
from layerib.mi.critics import SeparableCritic
from layerib.mi.estimators import MIEstimator
from layerib.mi.critics import GaussianRatioCritic
from layerib.mi.ground_truth import rho_for_mi
from layerib.mi.tasks import student_task, suite_tasks
from layerib.mi.transforms import MarginalMap


def _log_t(z, s, nu):
    p = z.shape[1]
    q = np.einsum("ni,ij,nj->n", z, np.linalg.inv(s), z)
    return (gammaln((nu + p) / 2) - gammaln(nu / 2) - p / 2 * math.log(nu * math.pi)
            - 0.5 * np.linalg.slogdet(s)[1] - (nu + p) / 2 * np.log1p(q / nu))


@pytest.mark.parametrize("dim, gauss_mi, nu", [(3, 1.0, 3.0), (2, 0.0, 1.0)])
def test_student_t_closed_form_matches_monte_carlo(dim, gauss_mi, nu):
    # E[log p(x,y) - log p(x) - log p(y)] over 100 000 draws: stderr < 0.006 nats; allow 0.03
    t = student_task(dim, gauss_mi, nu)
    x, y = t.sample(100_000, 0)
    rho = rho_for_mi(gauss_mi, dim) if gauss_mi else 0.0
    s = np.block([[np.eye(dim), rho * np.eye(dim)], [rho * np.eye(dim), np.eye(dim)]])
    mc = np.mean(_log_t(np.hstack([x, y]), s, nu) - _log_t(x, np.eye(dim), nu) - _log_t(y, np.eye(dim), nu))
    assert abs(mc - t.mi) < 0.03, (mc, t.mi)


def test_suite_shapes_and_truths():
    for t in suite_tasks():
        x, y = t.sample(7, 0)
        assert x.shape == (7, t.dim_x) and t.mi > 0
        assert y.shape == ((7,) if t.discrete_y else (7, t.dim_y))


def test_ksg_and_cca_on_a_gaussian():
    # 2-d a side, 1 nat, N = 4000: KSG's bias is small in low dimension (measured -0.03), CCA's
    # sampling error ~0.02; allow 0.1 nats
    rng = np.random.default_rng(0)
    rho = rho_for_mi(1.0, 2)
    x = rng.standard_normal((4000, 2))
    y = rho * x + math.sqrt(1 - rho ** 2) * rng.standard_normal((4000, 2))
    assert abs(ksg_mi(x, y) - 1.0) < 0.1 and abs(cca_mi(x, y) - 1.0) < 0.1
    labels = (x[:, 0] > 0).astype(np.int64)  # I(Y; X) for a sign label: H(Y) = ln 2
    assert abs(ksg_mi(x, labels) - math.log(2)) < 0.1


def test_copula_map_is_strictly_increasing_and_invariant():
    rng = np.random.default_rng(1)
    a = rng.standard_t(1.0, size=(500, 2))
    m = MarginalMap(a, "copula")
    grid = np.linspace(-1e4, 1e4, 20001)[:, None].repeat(2, 1)
    assert (np.diff(m(grid), axis=0) > 0).all()
    b = MarginalMap(a ** 3, "copula")
    assert np.allclose(m(a), b(a ** 3))  # exact at the training points
    # between them the map is piecewise linear in its own input: nearly the same (measured 5e-4)
    assert np.allclose(m(a[:5] * 2), b((a[:5] * 2) ** 3), atol=2e-3)


@pytest.mark.parametrize("bound", ["dv", "nwj", "infonce"])
def test_row_terms_average_to_the_bound(bound):
    torch.manual_seed(0)
    u, v = torch.randn(64, 3), torch.randn(64, 3)
    est = MIEstimator(SeparableCritic(3, 3, 16), bound=bound, marginal="all", ema_rate=None)
    with torch.no_grad():
        assert torch.allclose(est.row_terms(u, v).mean(), est.value(u, v), atol=1e-5)


def test_gaussian_ratio_critic_is_the_log_density_ratio():
    torch.manual_seed(0)
    u = torch.randn(20000, 2)
    v = 0.8 * u + 0.6 * torch.randn(20000, 2)
    c = GaussianRatioCritic(u, v)
    with torch.no_grad():
        joint, pair = c.scores(u[:5], v[:5]), c.pair_scores(u[:5], v[:5])
    assert torch.allclose(joint, pair.diagonal(), atol=1e-5)
    # E_joint[T] is the MI of the fitted Gaussian: -log(1 - 0.64) = 1.02 nats per... 2 pairs
    assert abs(float(c.scores(u, v).mean()) - (-math.log(1 - 0.64))) < 0.03
    assert abs(float(bounds.dv_bound(c.scores(u, v), c.scores(u, v.roll(1, 0)))) - 1.02) < 0.1
