"""Tests of the closed-form and Monte-Carlo MI references (nats).

Closed forms are checked against each other to rounding; Monte-Carlo values against
closed forms, a 1-D quadrature and the KDE bounds, with tolerances justified inline.
All random draws are seeded.
"""

from __future__ import annotations

import math

import pytest
import torch

from layerib.errors import ConfigError
from layerib.mi.ground_truth import (
    MonteCarloMI,
    gaussian_mi,
    gaussian_mi_from_rho,
    kde_mi_bounds,
    linear_gaussian_mi,
    mixture_mi,
    monte_carlo_mi_of_net,
    rho_for_mi,
    sample_correlated_gaussians,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _random_cov(dim: int, seed: int) -> torch.Tensor:
    a = torch.randn(dim, dim, generator=_gen(seed), dtype=F64)
    return a @ a.T / dim + 0.1 * torch.eye(dim, dtype=F64)


def _whitened_sample(n: int, dim: int, seed: int) -> torch.Tensor:
    """``(n, dim)`` Gaussian draws shifted and whitened so the empirical mean is 0 and covariance I exactly."""
    x = torch.randn(n, dim, generator=_gen(seed), dtype=F64)
    x = x - x.mean(0)
    chol = torch.linalg.cholesky(x.T @ x / n)
    return torch.linalg.solve_triangular(chol, x.T, upper=False).T


def _entropy(counts: list[int]) -> float:
    total = sum(counts)
    return -sum(c / total * math.log(c / total) for c in counts)


# ----------------------------------------------------------------------------- closed forms


@pytest.mark.parametrize("mi", [2.0, 4.0, 6.0, 8.0, 10.0])  # the Poole et al. staircase, 20 dims
def test_rho_for_mi_inverts_gaussian_mi_from_rho(mi):
    rho = rho_for_mi(mi, 20)
    assert 0.0 < rho < 1.0
    assert gaussian_mi_from_rho(rho, 20) == pytest.approx(mi, rel=1e-12)
    assert rho_for_mi(0.0, 20) == 0.0 and gaussian_mi_from_rho(0.0, 20) == 0.0


@pytest.mark.parametrize("rho", [-0.9, 0.01, 0.5, 0.999])
def test_gaussian_mi_from_rho_matches_gaussian_mi(rho):
    eye = torch.eye(7, dtype=F64)
    assert gaussian_mi(eye, eye, rho * eye) == pytest.approx(gaussian_mi_from_rho(rho, 7), rel=1e-12)


@pytest.mark.parametrize("d_out, d_in", [(3, 5), (5, 3), (4, 4)])
def test_linear_gaussian_mi_matches_joint_gaussian(d_out, d_in):
    # (X, WX + eps) is jointly Gaussian with Syy = W Sx W^T + s2 I and Sxy = Sx W^T.
    w = torch.randn(d_out, d_in, generator=_gen(1), dtype=F64)
    sx, s2 = _random_cov(d_in, seed=2), 0.3
    syy = w @ sx @ w.T + s2 * torch.eye(d_out, dtype=F64)
    expected = gaussian_mi(sx, syy, sx @ w.T)
    assert linear_gaussian_mi(w, sx, s2) == pytest.approx(expected, rel=1e-10)


def test_linear_gaussian_mi_limits():
    w, sx = torch.randn(3, 3, generator=_gen(3), dtype=F64), _random_cov(3, seed=4)
    # Small weights: 0.5 logdet(I + A) = tr(A) / 2 + O(|A|^2), here |A| ~ 1e-8 (NOTES.md Sec. 3).
    small = 1e-4 * w
    assert linear_gaussian_mi(small, sx, 1.0) == pytest.approx(
        float(torch.trace(small @ sx @ small.T)) / 2.0, rel=1e-6)
    # Tiny noise: 0.5 logdet(W Sx W^T) - d/2 log s2 + O(s2); a direct logdet would overflow its I.
    s2 = 1e-30
    expected = 0.5 * float(torch.logdet(w @ sx @ w.T)) - 1.5 * math.log(s2)
    assert linear_gaussian_mi(w, sx, s2) == pytest.approx(expected, rel=1e-12)
    # A singular input covariance (rank 1) is allowed: only the direction v carries information.
    v = torch.tensor([1.0, 2.0, 2.0], dtype=F64) / 3.0
    u = w @ v
    assert linear_gaussian_mi(w, torch.outer(v, v), 0.5) == pytest.approx(
        0.5 * math.log1p(float(u @ u) / 0.5), rel=1e-10)


def test_sample_correlated_gaussians():
    x, y = sample_correlated_gaussians(20000, 3, 0.6, generator=_gen(5))
    assert x.shape == y.shape == (20000, 3) and x.dtype == torch.float32
    corr = ((x * y).mean(0) - x.mean(0) * y.mean(0)) / (x.std(0) * y.std(0))
    # The sample correlation has standard deviation (1 - rho^2) / sqrt(n) = 0.0045; allow 5 of them.
    assert torch.allclose(corr, torch.full((3,), 0.6), atol=5 * 0.64 / math.sqrt(20000))


# ----------------------------------------------------------------------------- Monte-Carlo


def test_mixture_mi_matches_linear_gaussian_layer():
    n, s2 = 10000, 0.5
    w = torch.tensor([[1.0, 0.5], [0.0, 0.8]], dtype=F64)
    x = _whitened_sample(n, 2, seed=6)
    expected = linear_gaussian_mi(w, torch.eye(2, dtype=F64), s2)  # about 1.0 nat
    result = mixture_mi(x @ w.T, s2, n_samples=5000, generator=_gen(7))
    # X is the empirical set, not N(0, I): the mixture entropy differs from the Gaussian one by
    # -int dp log p - 1/2 int dp^2 / p. The first-order term is a quadratic moment of the points,
    # zero here because the sample is whitened exactly; the second-order one averages to
    # -(exp(2 I) - 1) / (2 N) = -3e-4 nats (chi-square of a component against the mixture).
    # So allow twice that bias plus 4 reported (conservative) standard errors: about 1.5e-3 nats.
    finite_n = (math.exp(2.0 * expected) - 1.0) / (2.0 * n)
    assert abs(result.value - expected) <= 4.0 * result.stderr + 2.0 * finite_n
    assert result.stderr < 1e-3  # the Gaussian control variate is doing its job
    assert (result.n_samples, result.n_points, result.noise_var) == (5000, n, s2)


def _mixture_mi_by_quadrature(points: list[float], s2: float) -> float:
    """``h(Z) - h(Z | X)`` for the 1-D mixture, by the trapezoid rule on a fine grid."""
    z = torch.linspace(min(points) - 12 * math.sqrt(s2), max(points) + 12 * math.sqrt(s2), 200001, dtype=F64)
    comps = torch.stack([torch.exp(-(z - p) ** 2 / (2 * s2)) for p in points]) / math.sqrt(2 * math.pi * s2)
    dens = comps.mean(0)
    h_z = -torch.trapezoid(dens * torch.log(dens.clamp_min(1e-300)), z)
    return float(h_z) - 0.5 * math.log(2 * math.pi * math.e * s2)


@pytest.mark.parametrize("s2", [0.3, 1.0, 4.0])
def test_mixture_mi_matches_quadrature_and_lies_within_kde_bounds(s2):
    points = [0.0, 1.0, 3.0]
    expected = _mixture_mi_by_quadrature(points, s2)  # trapezoid error far below 1e-8 here
    feats = torch.tensor(points, dtype=F64)[:, None]
    result = mixture_mi(feats, s2, n_samples=6000, generator=_gen(8))
    assert abs(result.value - expected) <= 4.0 * result.stderr + 1e-8  # 4 sigma: fails 1 in 16000
    lower, upper = kde_mi_bounds(feats, s2)
    assert lower <= expected <= upper  # the bounds are exact inequalities


@pytest.mark.parametrize("s2", [0.01, 0.1, 1.0, 10.0])
def test_mixture_mi_within_kde_bounds_in_five_dims(s2):
    gen = _gen(9)
    centres = 2.0 * torch.randn(6, 5, generator=gen, dtype=F64)
    feats = centres[torch.randint(6, (400,), generator=gen)] + 0.3 * torch.randn(400, 5, generator=gen, dtype=F64)
    result = mixture_mi(feats, s2, n_samples=2000, generator=gen)
    lower, upper = kde_mi_bounds(feats, s2)
    assert 0.0 <= lower <= upper <= math.log(400) + 1e-12
    # The true value is inside [lower, upper]; the estimate may stray by its Monte-Carlo error.
    assert lower - 4.0 * result.stderr <= result.value <= upper + 4.0 * result.stderr


def test_tiny_noise_gives_log_n_and_huge_noise_gives_zero():
    feats = torch.randn(300, 4, generator=_gen(10), dtype=F64)  # distinct, well separated vs 1e-12
    tiny = mixture_mi(feats, 1e-12, n_samples=300, generator=_gen(11))
    # Every other component is ~exp(-1e10) away, so each integrand value is ln N to rounding.
    assert tiny.value == pytest.approx(math.log(300), abs=1e-12) and tiny.stderr < 1e-12
    assert kde_mi_bounds(feats, 1e-12) == pytest.approx((math.log(300), math.log(300)), abs=1e-12)
    huge = mixture_mi(feats, 1e12, n_samples=300, generator=_gen(12))
    # I <= 0.5 logdet(I + Cov / s2) ~ tr(Cov) / (2 s2) ~ 2e-12 nats (Gaussian maximises entropy).
    assert abs(huge.value) < 1e-9
    assert max(kde_mi_bounds(feats, 1e12)) < 1e-9
    single = mixture_mi(feats[:1], 1.0, n_samples=10, generator=_gen(13))
    assert single.value == 0.0 and kde_mi_bounds(feats[:1], 1.0) == (0.0, 0.0)


def test_duplicated_points():
    base = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 5.0]], dtype=F64)
    feats = base[[0, 0, 0, 1, 1, 2]]  # counts 3, 2, 1
    # Tiny noise: the MI is the entropy of the counts, exactly (each row's value is -log w_i and
    # whole passes average it exactly); never above ln(#distinct).
    tiny = mixture_mi(feats, 1e-14, n_samples=600, generator=_gen(14))
    assert tiny.value == pytest.approx(_entropy([3, 2, 1]), abs=1e-9) and tiny.value <= math.log(3)
    moderate = mixture_mi(feats, 0.5, n_samples=3000, generator=_gen(15))
    assert moderate.value <= math.log(3) + 4.0 * moderate.stderr
    # Repeating every point leaves the mixture, hence the MI and both bounds, unchanged.
    repeated = mixture_mi(feats.repeat(4, 1), 0.5, n_samples=3000, generator=_gen(16))
    assert abs(repeated.value - moderate.value) <= 4.0 * math.hypot(repeated.stderr, moderate.stderr)
    assert kde_mi_bounds(feats.repeat(4, 1), 0.5) == pytest.approx(kde_mi_bounds(feats, 0.5), abs=1e-12)


def _unique_reference(feats):
    """What ``_distinct_rows`` returned when it called ``torch.unique(dim=0)``: the reference."""
    rows, inverse, counts = torch.unique(feats, dim=0, return_inverse=True, return_counts=True)
    n = feats.shape[0]
    first = torch.full((len(rows),), n, dtype=torch.int64).scatter_reduce_(
        0, inverse, torch.arange(n), "amin")
    points = feats[first].to(F64)
    weights = counts.to(F64) / n
    return points - weights @ points, weights, inverse


def _with_duplicates(seed: int, dtype) -> torch.Tensor:
    """Rows with exact duplicates, rows that differ from another in one coordinate only (first,
    middle, last), rows tied on a long prefix, signed zeros, a constant column."""
    g = _gen(seed)
    base = torch.randn(12, 9, generator=g).round(decimals=1).to(dtype)
    base[:, 4] = 0.0
    base[3:7, :6] = base[3, :6]  # tied on a prefix of six columns
    near = base[[0, 1, 2, 5]].clone()
    near[0, 0] += 1.0
    near[1, 4] = 1e-30 if dtype == F64 else 1e-7
    near[2, 8] = -near[2, 8] + 0.5
    near[3, 5] = torch.nextafter(near[3, 5], torch.tensor(float("inf"), dtype=dtype))
    signed = base[[8]].clone()
    signed[0, 4] = -0.0  # equal to row 8 as floats: one row, the first occurrence's values
    rows = torch.cat([base, near, signed, base[[0, 0, 3, 11]]])
    return rows[torch.randperm(len(rows), generator=g)].contiguous()


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_distinct_rows_equal_torch_unique(dtype, seed):
    from layerib.mi.ground_truth import _distinct_rows
    feats = _with_duplicates(seed, dtype)
    points, weights, inverse = _distinct_rows(feats)
    ref_points, ref_weights, ref_inverse = _unique_reference(feats)
    assert len(points) < len(feats)  # there are duplicates
    assert torch.equal(inverse, ref_inverse) and torch.equal(weights, ref_weights)
    assert torch.equal(points, ref_points)  # bit for bit, in torch.unique's order
    # signed zeros: the representative holds the first occurrence's bits
    assert torch.equal(torch.signbit(points), torch.signbit(ref_points))


def test_distinct_rows_exact_under_hash_collisions(monkeypatch):
    """Rows are grouped by a hash, then checked: with every row hashed alike the result is the same."""
    import layerib.mi.ground_truth as gt
    feats = _with_duplicates(3, torch.float32)
    expected = gt._distinct_rows(feats)
    monkeypatch.setattr(gt, "_row_hashes", lambda f: torch.zeros(len(f), dtype=torch.int64))
    got = gt._distinct_rows(feats)
    assert all(torch.equal(a, b) for a, b in zip(got, expected))
    ref = _unique_reference(feats)
    assert all(torch.equal(a, b) for a, b in zip(got, ref))


def test_distinct_rows_long_ties_and_small_chunks(monkeypatch):
    """Rows equal but for the last of 300 columns, hashed and checked over many small chunks."""
    import layerib.mi.ground_truth as gt
    monkeypatch.setattr(gt, "_ROW_CHUNK_BYTES", 8 * 300 * 3)  # 3 rows a chunk
    g = _gen(4)
    feats = torch.zeros(40, 300)
    feats[:, -1] = torch.randint(0, 7, (40,), generator=g).float()
    feats[::5, 150] = 2.0
    got = gt._distinct_rows(feats)
    ref = _unique_reference(feats)
    assert all(torch.equal(a, b) for a, b in zip(got, ref))


def test_stderr_covers_the_spread_of_independent_runs():
    feats = _whitened_sample(200, 2, seed=17) @ torch.tensor([[1.0, 0.3], [0.0, 2.0]], dtype=F64)
    runs = [mixture_mi(feats, 0.3, n_samples=100, generator=_gen(100 + s)) for s in range(30)]
    values = torch.tensor([r.value for r in runs], dtype=F64)
    reference = mixture_mi(feats, 0.3, n_samples=20000, generator=_gen(18))
    mean_stderr = sum(r.stderr for r in runs) / len(runs)
    # The reported stderr is conservative, so the spread over 30 runs should not exceed it by more
    # than the sampling noise of a 30-sample std (about 13%); allow 1.5x.
    assert float(values.std()) <= 1.5 * mean_stderr
    # Unbiased: the mean of 30 runs sits within 4 of its standard errors of a long run.
    assert abs(float(values.mean()) - reference.value) <= 4.0 * math.hypot(
        mean_stderr / math.sqrt(30), reference.stderr)


def test_reproducible_and_shift_invariant():
    feats = torch.randn(500, 3, generator=_gen(19), dtype=F64)
    a = mixture_mi(feats, 0.2, n_samples=700, generator=_gen(20))
    b = mixture_mi(feats, 0.2, n_samples=700, generator=_gen(20))
    assert a == b and isinstance(a, MonteCarloMI)
    shifted = mixture_mi(feats + 100.0, 0.2, n_samples=700, generator=_gen(20))
    assert shifted.value == pytest.approx(a.value, abs=1e-9)  # features are centred internally
    assert kde_mi_bounds(feats + 100.0, 0.2) == pytest.approx(kde_mi_bounds(feats, 0.2), abs=1e-9)
    # Blocking only changes the order of the sums.
    assert kde_mi_bounds(feats, 0.2, block_size=7) == pytest.approx(kde_mi_bounds(feats, 0.2), abs=1e-12)


def test_monte_carlo_mi_of_net_equals_mixture_mi_of_its_features():
    x = torch.randn(300, 2, 3, generator=_gen(21))
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(6, 4), torch.nn.Tanh())
    with torch.no_grad():
        feats = net(x)
    direct = mixture_mi(feats, 0.1, n_samples=400, generator=_gen(22))
    via_net = monte_carlo_mi_of_net(net, x, 0.1, n_samples=400, generator=_gen(22), net_batch_size=7)
    assert via_net == direct


# ----------------------------------------------------------------------------- bad inputs

_FEATS = torch.zeros(4, 2)


@pytest.mark.parametrize("noise_var", [0.0, -1.0, float("nan"), float("inf")])
def test_bad_noise_var_raises(noise_var):
    with pytest.raises(ConfigError, match="noise_var"):
        mixture_mi(_FEATS, noise_var)
    with pytest.raises(ConfigError, match="noise_var"):
        kde_mi_bounds(_FEATS, noise_var)
    with pytest.raises(ConfigError, match="noise_var"):
        linear_gaussian_mi(torch.eye(2), torch.eye(2), noise_var)


@pytest.mark.parametrize("features", [torch.zeros(4), torch.zeros(4, 2, 2), torch.zeros(0, 3),
                                      torch.tensor([[0.0, float("nan")]]), torch.tensor([[float("inf")]]),
                                      [[0.0, 1.0]]])
def test_bad_features_raise(features):
    with pytest.raises(ConfigError, match="features"):
        mixture_mi(features, 1.0)
    with pytest.raises(ConfigError, match="features"):
        kde_mi_bounds(features, 1.0)


def test_bad_sizes_raise():
    with pytest.raises(ConfigError, match="n_samples"):
        mixture_mi(_FEATS, 1.0, n_samples=1)
    with pytest.raises(ConfigError, match="batch_size"):
        mixture_mi(_FEATS, 1.0, batch_size=0)
    with pytest.raises(ConfigError, match="block_size"):
        kde_mi_bounds(_FEATS, 1.0, block_size=0)
    with pytest.raises(ConfigError, match="net_batch_size"):
        monte_carlo_mi_of_net(torch.nn.Identity(), _FEATS, 1.0, net_batch_size=0)


def test_bad_gaussian_parameters_raise():
    with pytest.raises(ConfigError, match="rho"):
        gaussian_mi_from_rho(1.0, 3)
    with pytest.raises(ConfigError, match="dim"):
        gaussian_mi_from_rho(0.5, 0)
    with pytest.raises(ConfigError, match="mi"):
        rho_for_mi(-0.1, 3)
    with pytest.raises(ConfigError, match="rho"):
        sample_correlated_gaussians(10, 2, -1.0)
    eye = torch.eye(2, dtype=F64)
    with pytest.raises(ConfigError, match="cov_xx .* not a positive-definite"):
        gaussian_mi(-eye, eye, 0 * eye)
    with pytest.raises(ConfigError, match="cov_yy .* not a positive-definite"):
        gaussian_mi(eye, torch.ones(2, 3, dtype=F64), torch.zeros(2, 2, dtype=F64))
    with pytest.raises(ConfigError, match="cov_xy"):
        gaussian_mi(eye, eye, torch.zeros(3, 2, dtype=F64))
    with pytest.raises(ConfigError, match="singular"):
        gaussian_mi(eye, eye, eye)
    with pytest.raises(ConfigError, match="positive semi-definite"):
        linear_gaussian_mi(eye, torch.tensor([[1.0, 0.0], [0.0, -1.0]]), 1.0)
    with pytest.raises(ConfigError, match="positive semi-definite"):
        linear_gaussian_mi(eye, torch.tensor([[1.0, 0.5], [0.0, 1.0]]), 1.0)
    with pytest.raises(ConfigError, match="W"):
        linear_gaussian_mi(torch.ones(2, 3), eye, 1.0)


def test_row_norms_in_chunks_are_the_whole_products_sums(monkeypatch):
    """The truth's ||l_j||^2 column term is summed a chunk of rows at a time (no M x d
    temporary), with the same values as the whole array's (and so the same truth)."""
    import layerib.mi.ground_truth as gt
    g = torch.Generator().manual_seed(0)
    p = torch.randn(300, 37, generator=g, dtype=torch.float64) * 3
    monkeypatch.setattr(gt, "_ROW_CHUNK_BYTES", 37 * 8 * 7)  # 7 rows a chunk, a last one of 6
    assert torch.equal(gt.row_sq_norms(p), (p * p).sum(1))
    f = torch.randn(200, 5, generator=g)
    small = gt.mixture_mi(f, 2.0, n_samples=256, generator=torch.Generator().manual_seed(1))
    monkeypatch.setattr(gt, "_ROW_CHUNK_BYTES", 1 << 24)
    assert small == gt.mixture_mi(f, 2.0, n_samples=256, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("d", [5, 40])  # 5: with the Gaussian control variate; 40: without
def test_mixture_rows_read_in_blocks_give_the_materialised_truth(monkeypatch, d):
    """The truth reads its distinct rows from the input a block at a time (no M x d float64
    array). The value equals, to rounding (1e-12 nats), a reference that holds every centred
    float64 row at once, for one-row blocks, blocks that do not divide M, and one block."""
    import layerib.mi.ground_truth as gt
    g = torch.Generator().manual_seed(3)
    f = (torch.randn(150, d, generator=g) * 2).relu()
    f[100:] = f[:50]  # duplicated rows: weights 2/150 for 50 of them
    n_samples = 30 if d == 40 else 300  # the control variate needs d <= n_samples

    def reference() -> float:  # the earlier formula, every row held in float64
        points, weights, inverse = gt._distinct_rows(f)
        col = weights.log() - (points * points).sum(1) / 4.0
        gen = torch.Generator().manual_seed(1)
        idx = gt._stratified_indices(len(f), n_samples, gen, f.device)
        k = inverse[idx]
        eps = torch.empty((len(k), d), dtype=torch.float64).normal_(std=math.sqrt(2.0), generator=gen)
        t = torch.addmm(col[None, :], points[k] + eps, points.T, alpha=0.5)
        t.sub_(((points[k] ** 2).sum(1) + 2.0 * (eps * points[k]).sum(1))[:, None] / 4.0)
        t[torch.arange(len(k)), k] = weights.log()[k]
        return float((-torch.logsumexp(t, 1)).mean())

    values = []
    for rows_per_block in (1, 7, 1000):
        monkeypatch.setattr(gt, "_BLOCK_BYTES", 8 * d * rows_per_block)
        mix = gt._Mixture.build(f, 2.0, with_control=False)
        assert mix.points._buf.shape == (min(rows_per_block, len(mix.points)), d)  # one block
        values.append(gt.mixture_mi(f, 2.0, n_samples=n_samples, batch_size=64,
                                    generator=torch.Generator().manual_seed(1)).value)
    assert max(values) - min(values) < 1e-12
    if d == 40:  # no control variate: the reference's draws are the same as mixture_mi's
        assert abs(values[0] - reference()) < 1e-12
