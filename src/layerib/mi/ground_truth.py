"""Reference values of mutual information to check the estimators against (nats).

Closed forms: correlated Gaussians (Poole et al. 2019), joint Gaussians, the linear-Gaussian layer (Elad
et al. 2019, Eq. 5). For any net on N points ``F(X) + eps`` is a Gaussian mixture, whose MI Monte-Carlo computes
to any precision (Goldfeld et al. 2019; docs/design.md Sec. 3) inside Kolchinsky & Tracey's (2017) bounds. In float64.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from layerib.errors import ConfigError
from layerib.mi.channel import GaussianChannel

_PILOT_DRAWS = 256       # independent extra draws (pairs sharing i) that fit the control coefficient
_CONTROL_MAX_DIM = 4096  # the Gaussian control variate is used for d <= min(this, n_samples)


def gaussian_mi_from_rho(rho: float, dim: int) -> float:
    """``-dim/2 log(1 - rho^2)`` nats: ``dim`` independent standard-normal pairs of correlation ``rho``.

    Raises:
        ConfigError: ``|rho| >= 1`` or ``dim < 1``.
    """
    if dim < 1 or not abs(rho) < 1.0:
        raise ConfigError(f"rho={rho}, dim={dim}: need |rho| < 1 and dim >= 1")
    return -0.5 * dim * math.log1p(-rho * rho)


def rho_for_mi(mi: float, dim: int) -> float:
    """The ``rho >= 0`` giving ``mi`` nats over ``dim`` pairs (Poole et al. 2019 staircase).

    Raises:
        ConfigError: ``mi`` negative or not finite, or ``dim < 1``.
    """
    if dim < 1 or not (math.isfinite(mi) and mi >= 0.0):
        raise ConfigError(f"mi={mi}, dim={dim}: need a finite mi >= 0 nats and dim >= 1")
    return math.sqrt(-math.expm1(-2.0 * mi / dim))


def sample_correlated_gaussians(n: int, dim: int, rho: float, generator: torch.Generator | None = None,
                                dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """``(x, y)``, each ``(n, dim)``, ``y = rho x + sqrt(1-rho^2) e``; MI ``gaussian_mi_from_rho(rho, dim)``.

    Raises:
        ConfigError: ``|rho| >= 1``, ``dim < 1`` or ``n < 1``.
    """
    if n < 1 or dim < 1 or not abs(rho) < 1.0:
        raise ConfigError(f"n={n}, dim={dim}, rho={rho}: need n >= 1, dim >= 1 and |rho| < 1")
    x, e = torch.randn(2, n, dim, generator=generator, dtype=torch.float64)
    return x.to(dtype), (rho * x + math.sqrt(1.0 - rho * rho) * e).to(dtype)


def gaussian_mi(cov_xx: torch.Tensor, cov_yy: torch.Tensor, cov_xy: torch.Tensor) -> float:
    """Joint-Gaussian MI ``0.5 (logdet Sxx + logdet Syy - logdet S)`` nats.

    Computed as ``-0.5 sum_k log(1 - rho_k^2)`` over the canonical correlations (singular values
    of ``Lx^-1 Sxy Ly^-T``, ``S.. = L L^T``): the same value without cancelling log-determinants.

    Args:
        cov_xx: ``(dx, dx)``; cov_yy: ``(dy, dy)``; cov_xy: ``(dx, dy)``, ``E[(X-EX)(Y-EY)^T]``.

    Raises:
        ConfigError: shapes disagree, or a block or the joint is not positive definite.
    """
    sxx, syy, sxy = (torch.as_tensor(c, dtype=torch.float64) for c in (cov_xx, cov_yy, cov_xy))
    lx, ly = _cholesky(sxx, "cov_xx"), _cholesky(syy, "cov_yy")
    if sxy.shape != (sxx.shape[0], syy.shape[0]):
        raise ConfigError(f"cov_xy {tuple(sxy.shape)} must be (dx, dy) = ({len(sxx)}, {len(syy)})")
    c = torch.linalg.solve_triangular(lx, sxy, upper=False)
    rho = torch.linalg.svdvals(torch.linalg.solve_triangular(ly, c.T, upper=False))
    if rho.numel() and rho.max() >= 1.0:
        raise ConfigError("joint covariance is singular (MI infinite); add noise or drop the shared directions")
    return float(-0.5 * torch.log1p(-rho * rho).sum())


def linear_gaussian_mi(W: torch.Tensor, cov_x: torch.Tensor, noise_var: float) -> float:
    """``I(X; W X + b + eps) = 0.5 logdet(I + W Sx W^T / sigma^2)`` nats, Elad et al. 2019, Eq. 5.

    ``X ~ N(mu, Sx)``, ``eps ~ N(0, sigma^2 I)``; as ``0.5 sum_k log1p(s_k^2 / sigma^2)`` over the
    singular values of ``W Sx^(1/2)``: exact for singular ``Sx`` and tiny or huge ``sigma^2``.

    Args:
        W: ``(d_out, d_in)``; cov_x: ``(d_in, d_in)`` symmetric PSD; noise_var: ``sigma^2 > 0``.

    Raises:
        ConfigError: bad ``noise_var``, shapes disagree, or ``cov_x`` is not symmetric PSD.
    """
    s2 = GaussianChannel.check(noise_var)
    w, sx = torch.as_tensor(W, dtype=torch.float64), torch.as_tensor(cov_x, dtype=torch.float64)
    if w.dim() != 2 or sx.shape != (w.shape[1], w.shape[1]):
        raise ConfigError(f"W {tuple(w.shape)}, cov_x {tuple(sx.shape)}: need (d_out, d_in), (d_in, d_in)")
    evals, evecs = torch.linalg.eigh(sx)
    scale = float(evals.abs().max().clamp_min(1e-300))
    if not torch.allclose(sx, sx.T, rtol=1e-8, atol=1e-12 * scale) or evals.min() < -1e-10 * scale:
        raise ConfigError("cov_x is not symmetric positive semi-definite; pass a covariance matrix")
    s = torch.linalg.svdvals(w @ (evecs * evals.clamp_min(0.0).sqrt()))
    return float(0.5 * torch.log1p(s * s / s2).sum())


@dataclass(frozen=True)
class MonteCarloMI:
    """A Monte-Carlo reference value of ``I(X; F(X) + eps)``."""

    value: float      # the MI estimate, nats
    stderr: float     # its standard error, nats (conservative: ignores the stratification)
    n_samples: int    # integrand evaluations averaged (the pilot draws not counted)
    n_points: int     # N, the size of the empirical input set
    noise_var: float  # sigma^2 of the additive Gaussian noise


def mixture_mi(features: torch.Tensor, noise_var: float, n_samples: int = 4096,
               generator: torch.Generator | None = None, batch_size: int | None = None) -> MonteCarloMI:
    """Monte-Carlo ``I(X; L + eps)`` for X uniform over N points and ``L = F(X)``.

    ``I = E_{i,eps}[log N(z; l_i, s2 I) - log mean_j N(z; l_j, s2 I)]``, ``z = l_i + eps`` (docs/design.md
    Sec. 3; Goldfeld et al. 2019), as ``-log sum_j w_j exp(-(||l_i - l_j||^2 + 2 eps.(l_i - l_j)) / (2 s2))``
    over the distinct rows (weights ``w``), j = i exact: each value is ``<= -log w_i``. Exact
    variance reduction: i stratified (each point equally often, the rest without replacement),
    and for ``d <= min(_CONTROL_MAX_DIM, n_samples)`` a moment-matched-Gaussian control variate.

    Args:
        features: ``(N, d)`` finite features ``F(x_j)``; any float dtype and device.
        noise_var: ``s2 = sigma^2 > 0``, finite.
        n_samples: integrand evaluations averaged, at least 2.
        generator: torch RNG on the device of ``features``; ``None`` uses the global one.
        batch_size: evaluations per chunk, using about ``3 * batch_size * N`` doubles; ``None``: ``2**21 // N``.

    Returns:
        :class:`MonteCarloMI`, value and stderr in nats.

    Raises:
        ConfigError: bad ``noise_var``, ``features``, ``n_samples`` or ``batch_size``.
    """
    s2, feats = GaussianChannel.check(noise_var), _check_features(features)
    if n_samples < 2 or (batch_size is not None and batch_size < 1):
        raise ConfigError(f"n_samples={n_samples}, batch_size={batch_size}: need >= 2 and >= 1 (or None)")
    n = feats.shape[0]
    batch_size = batch_size or max(1, 2**21 // n)
    mix = _Mixture.build(feats, s2, with_control=feats.shape[1] <= min(_CONTROL_MAX_DIM, n_samples))
    beta = _control_coef(mix, n_samples, generator, batch_size)  # from independent draws: no bias
    f, h = _evaluate(mix, _stratified_indices(n, n_samples, generator, feats.device), generator, batch_size)
    vals = f - beta * h
    return MonteCarloMI(value=float(vals.mean()), stderr=float(vals.std() / math.sqrt(vals.numel())),
                        n_samples=vals.numel(), n_points=n, noise_var=s2)


class _Points:
    """The mixture's ``M`` distinct rows ``(M, d)``, centred, in float64, read from the input rows
    when used: a block of rows at a time (:meth:`blocks`) or the rows of a batch (:meth:`rows`).

    No ``(M, d)`` float64 array is held (1.3 GB for 10 000 x 16 384 test features): each block is
    gathered from ``feats`` (which the caller holds anyway), converted and centred into one
    reused buffer of about ``_BLOCK_BYTES``. Converting costs one pass over the rows per batch of
    evaluations, against ``batch_size`` multiply-adds per number in the batch's product.
    """

    def __init__(self, feats: torch.Tensor, first: torch.Tensor, weights: torch.Tensor):
        self.src, self.first = feats, first
        self.shape = (len(first), feats.shape[1])
        self.device = feats.device
        self.step = max(1, _BLOCK_BYTES // (8 * max(1, self.shape[1])))
        self._buf = torch.empty((min(self.step, len(first)), self.shape[1]), dtype=torch.float64,
                                device=self.device)
        self.mean = torch.zeros(self.shape[1], dtype=torch.float64, device=self.device)
        mean = torch.zeros_like(self.mean)  # the weighted mean: MI is shift-invariant, and
        for s, b in self.blocks():          # centring keeps ||l||^2 (and cancellation) small
            mean.addmv_(b.T, weights[s:s + len(b)])
        self.mean = mean

    def __len__(self) -> int:
        return self.shape[0]

    def rows(self, k: torch.Tensor) -> torch.Tensor:
        """Distinct rows ``k`` ``(len(k),)``, centred, float64 ``(len(k), d)``."""
        return self.src[self.first[k]].to(torch.float64).sub_(self.mean)

    def blocks(self):
        """``(start, block)`` for consecutive blocks ``(<= step, d)`` of the centred rows; each
        block lives in the shared buffer, valid until the next one is made."""
        for s in range(0, len(self), self.step):
            b = self._buf[:min(self.step, len(self) - s)]
            b.copy_(self.src[self.first[s:s + len(b)]])
            yield s, b.sub_(self.mean)


_BLOCK_BYTES = 1 << 26  # float64 bytes of one block of the mixture's rows (64 MiB)


@dataclass(frozen=True)
class _Mixture:
    points: _Points            # (M, d) distinct components, centred at their weighted mean
    log_w: torch.Tensor        # (M,) log of their weights (counts / N)
    col: torch.Tensor          # (M,) log_w - ||l_j||^2 / (2 s2), the column term of the exponents
    inverse: torch.Tensor      # (N,) input row -> distinct component
    s2: float                  # noise variance
    chol: torch.Tensor | None  # (d, d) Cholesky factor of Cov + s2 I; None: no control variate

    @staticmethod
    def build(feats: torch.Tensor, s2: float, with_control: bool) -> "_Mixture":
        first, weights, inverse = _distinct_index(feats)
        points = _Points(feats, first, weights)
        d, dev = points.shape[1], points.device
        sq = torch.empty(len(points), dtype=torch.float64, device=dev)
        cov = torch.zeros((d, d), dtype=torch.float64, device=dev) if with_control else None
        for s, b in points.blocks():
            torch.sum(b * b, 1, out=sq[s:s + len(b)])
            if cov is not None:  # the weighted covariance of the (centred) points
                cov.addmm_((b * weights[s:s + len(b), None]).T, b)
        chol, info = None, 1
        if cov is not None:  # Cov + s2 I
            cov.diagonal().add_(s2)
            chol, info = torch.linalg.cholesky_ex(cov)
        col = weights.log() - sq / (2.0 * s2)
        return _Mixture(points, weights.log(), col, inverse, s2, chol if int(info) == 0 else None)

    def control(self, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """``log N(z; l_k, s2 I) - log N(z; 0, Cov + s2 I) - 0.5 logdet(I + Cov / s2)``, mean 0, ``(B,)``."""
        u = torch.linalg.solve_triangular(self.chol, (self.points.rows(k) + eps).T, upper=False)
        return 0.5 * (u * u).sum(0) - (eps * eps).sum(1) / (2.0 * self.s2)


def _evaluate(mix: _Mixture, rows: torch.Tensor, generator: torch.Generator | None,
              batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Integrand ``f`` and zero-mean control ``h``, each ``(R,)``, at input rows ``rows`` ``(R,)``."""
    fs, hs, channel = [], [], GaussianChannel(mix.s2)
    for k in mix.inverse[rows].split(batch_size):
        eps = channel.sample(torch.empty((len(k), mix.points.shape[1]), dtype=torch.float64,
                                             device=mix.points.device), generator)
        fs.append(_log_ratio(mix, k, eps))
        hs.append(mix.control(k, eps) if mix.chol is not None else torch.zeros_like(fs[-1]))
    return torch.cat(fs), torch.cat(hs)


def _control_coef(mix: _Mixture, n_samples: int, generator: torch.Generator | None, batch_size: int) -> float:
    """``beta`` minimising ``Var(mean(f - beta h))`` under the stratified design, from pilot pairs of draws
    sharing i: within-i (co)variances from pair differences, between-i (felt by partial passes) from means."""
    if mix.chol is None:
        return 0.0
    n_points = len(mix.inverse)
    pilot = torch.randint(n_points, (_PILOT_DRAWS // 2,), generator=generator, device=mix.points.device)
    f, h = (v.view(2, -1).T for v in _evaluate(mix, pilot.repeat(2), generator, batch_size))  # (P, 2)
    df, dh, mf, mh = f[:, 0] - f[:, 1], h[:, 0] - h[:, 1], f.mean(1) - f.mean(), h.mean(1) - h.mean()
    within = torch.stack([(df * dh).mean(), (dh * dh).mean()]) / 2.0
    between = torch.stack([(mf * mh).mean(), (mh * mh).mean()]) - within / 2.0
    rest = n_samples % n_points
    c = n_samples * within + rest * (1.0 - rest / n_points) * between
    return float(c[0] / c[1]) if c[1] > 0 else 0.0


def _log_ratio(mix: _Mixture, k: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """``log N(z; l_k) - log sum_j w_j N(z; l_j)``, ``z = l_k + eps``, ``(B,)``, via ``z.l_j``."""
    base, s2 = mix.points.rows(k), mix.s2
    z = base + eps
    t = torch.empty((len(k), len(mix.points)), dtype=torch.float64, device=z.device)
    for s, b in mix.points.blocks():  # z.l_j / s2 + col_j, a block of components at a time
        t[:, s:s + len(b)] = torch.addmm(mix.col[None, s:s + len(b)], z, b.T, alpha=1.0 / s2)
    t.sub_(((base * base).sum(1) + 2.0 * (eps * base).sum(1))[:, None] / (2.0 * s2))
    t[torch.arange(k.numel(), device=k.device), k] = mix.log_w[k]  # the j = k term, exactly
    return -torch.logsumexp(t, dim=1)


def kde_mi_bounds(features: torch.Tensor, noise_var: float, block_size: int = 1024) -> tuple[float, float]:
    """Pairwise-distance bounds ``(lower, upper)`` on ``I(X; L + eps)``, nats, both in ``[0, ln N]``.

    Kolchinsky & Tracey, "Estimating mixture entropy with pairwise distances" (Entropy 2017), for the
    mixture of ``N(l_j, sigma^2 I)``: ``-(1/N) sum_i log (1/N) sum_j exp(-D_ij)`` with ``D_ij`` the KL
    divergence ``||l_i - l_j||^2 / (2 sigma^2)`` (upper) or the Bhattacharyya distance ``/ (8 sigma^2)`` (lower).

    Args:
        features: ``(N, d)`` finite features; noise_var: ``sigma^2 > 0``, finite;
        block_size: rows per block (memory about ``3 * block_size^2`` doubles).

    Raises:
        ConfigError: bad ``noise_var``, ``features`` or ``block_size``.
    """
    s2 = GaussianChannel.check(noise_var)
    points, weights, _ = _distinct_rows(_check_features(features))
    if block_size < 1:
        raise ConfigError(f"block_size={block_size} must be >= 1")
    n, sq, sums = len(points), row_sq_norms(points), points.new_zeros(2, len(points))  # Bhattacharyya, KL
    for a in range(0, n, block_size):
        for b in range(a, n, block_size):
            ra, rb = slice(a, a + block_size), slice(b, b + block_size)
            dist = torch.addmm(sq[None, rb], points[ra], points[rb].T, alpha=-2.0)
            dist.add_(sq[ra, None]).clamp_min_(0.0)
            if a == b:
                dist.fill_diagonal_(0.0)
            bhat = dist.mul_(-1.0 / (8.0 * s2)).exp_()
            for row, kern in enumerate((bhat, bhat.square().square_())):  # exp(-D/8s2)^4 = exp(-D/2s2)
                sums[row, ra] += kern @ weights[rb]
                if a != b:
                    sums[row, rb] += kern.T @ weights[ra]
    bounds = (-(weights * sums.log()).sum(1)).clamp_min(0.0)  # (lower, upper)
    return float(bounds[0]), float(bounds[1])


def monte_carlo_mi_of_net(net_fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, noise_var: float,
                          n_samples: int = 4096, generator: torch.Generator | None = None,
                          net_batch_size: int = 1024, batch_size: int | None = None) -> MonteCarloMI:
    """:func:`mixture_mi` of ``I(X; net_fn(X) + eps)`` for X uniform over the rows of ``x``.

    ``net_fn`` must be deterministic (a module in eval mode); it runs under ``torch.no_grad``
    on ``x`` ``(N, ...)`` in batches of ``net_batch_size``; outputs are flattened to ``(N, d)``.

    Raises:
        ConfigError: as :func:`mixture_mi`, or ``net_batch_size < 1``.
    """
    if net_batch_size < 1:
        raise ConfigError(f"net_batch_size={net_batch_size} must be >= 1")
    with torch.no_grad():
        feats = torch.cat([net_fn(xb).reshape(xb.shape[0], -1) for xb in x.split(net_batch_size)])
    return mixture_mi(feats, noise_var, n_samples=n_samples, generator=generator, batch_size=batch_size)


def _cholesky(cov: torch.Tensor, name: str) -> torch.Tensor:
    chol, info = torch.linalg.cholesky_ex(cov) if cov.dim() == 2 and len(cov) == cov.shape[1] else (None, 1)
    if int(info) != 0:
        raise ConfigError(f"{name} {tuple(cov.shape)} is not a positive-definite square matrix; pass a covariance")
    return chol


def _check_features(features: torch.Tensor) -> torch.Tensor:
    """``features`` checked (``(N, d)``, finite), detached, in its float dtype (integers: float64):
    :func:`_distinct_rows` converts the distinct rows to float64 (float32 rows are equal exactly
    when their float64 values are, so the result is the same, without a float64 copy of all rows)."""
    if not isinstance(features, torch.Tensor) or features.dim() != 2 or features.shape[0] < 1:
        raise ConfigError(f"features {tuple(getattr(features, 'shape', ()))} must be a (N, d) tensor, N >= 1")
    feats = features.detach()
    if not feats.is_floating_point():
        feats = feats.to(torch.float64)
    step = _chunk(feats)  # checked a chunk of rows at a time: no (N, d) mask
    if not all(bool(torch.isfinite(feats[s:s + step]).all()) for s in range(0, len(feats), step)):
        raise ConfigError("features contain NaN or inf; check the network outputs")
    return feats


def _distinct_rows(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Distinct rows ``(M, d)`` in float64, centred at the mean of ``feats``; weights ``(M,)``; map ``(N,)``.

    The same rows, in the same (lexicographic) order, weights and map as ``torch.unique(feats,
    dim=0)`` (rows equal as floats are one row, ``-0.0 == 0.0``; each row's values are those of its
    first occurrence), without that call's two sorted copies of ``feats``: rows are grouped by an
    exact hash (:func:`_row_hashes`), equality within a group is checked, the groups' first rows
    are ordered lexicographically (:func:`_lexicographic_order`). Memory beyond the result: a
    few ``(N,)`` integer vectors and chunks of ``_ROW_CHUNK_BYTES``.
    """
    first, weights, inverse = _distinct_index(feats)
    m, d = len(first), feats.shape[1]
    points = torch.empty((m, d), dtype=torch.float64, device=feats.device)
    step = max(1, (1 << 22) // max(1, d))
    for s in range(0, m, step):
        points[s:s + step] = feats[first[s:s + step]]
    points -= weights @ points  # MI is shift-invariant; keeps ||l||^2 small (in place: no copy)
    return points, weights, inverse


def _distinct_index(feats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """:func:`_distinct_rows` without the rows: ``first`` ``(M,)``, the input row holding each
    distinct row (in ``torch.unique``'s order); weights ``(M,)`` (counts / N); map ``(N,)``."""
    n, d = feats.shape
    dev = feats.device
    h = _row_hashes(feats)
    order = torch.argsort(h, stable=True)  # rows grouped by hash, each group in row order
    hs = h[order]
    new = torch.ones(n, dtype=torch.bool, device=dev)
    new[1:] = hs[1:] != hs[:-1]
    group = torch.cumsum(new, 0) - 1  # (N,) hash group of each row of `order`
    lead = order[new][group]  # the group's first (smallest) row, for each row of `order`
    same = _rows_equal(feats, order, lead)
    if not bool(same.all()):  # a hash collision: split those groups exactly (never seen)
        group = _split_collisions(feats, order, group, same)
        order_g = torch.argsort(group, stable=True)
        order, group = order[order_g], group[order_g]
        new = torch.ones(n, dtype=torch.bool, device=dev)
        new[1:] = group[1:] != group[:-1]
        group = torch.cumsum(new, 0) - 1
    first = order[new]  # (M,) the first row of each distinct row, by hash group
    counts = torch.bincount(group, minlength=len(first))
    rank = _lexicographic_order(feats, first)  # distinct rows in torch.unique's order
    pos = torch.empty_like(rank)
    pos[rank] = torch.arange(len(rank), device=dev)
    first, counts = first[rank], counts[rank]
    inverse = torch.empty(n, dtype=torch.int64, device=dev)
    inverse[order] = pos[group]
    return first, counts.to(torch.float64) / n, inverse


def row_sq_norms(points: torch.Tensor) -> torch.Tensor:
    """``(points * points).sum(1)``, ``(M,)``, the same values, a chunk of about 16 MiB of rows
    at a time into one reused buffer (the product of a 10 000 x 16 384 float64 array was a
    1.3 GB temporary; a fresh product per chunk still left about 1 GB resident)."""
    out = points.new_empty(len(points))
    step = _chunk(points)
    buf = points.new_empty((min(step, len(points)), points.shape[1]))
    for s in range(0, len(points), step):
        c = points[s:s + step]
        b = buf[:len(c)]
        torch.mul(c, c, out=b)
        torch.sum(b, 1, out=out[s:s + len(c)])
    return out


_ROW_CHUNK_BYTES = 1 << 24  # rows per chunk of the hashing and checking passes: about 16 MiB of them
_HASH_PRIME = 2_147_483_629  # largest prime below 2^31


def _chunk(feats: torch.Tensor) -> int:
    return max(1, _ROW_CHUNK_BYTES // max(1, feats.shape[1] * 8))


def _row_hashes(feats: torch.Tensor) -> torch.Tensor:
    """``(N,)`` int64 hash of each row, equal for rows equal as floats (``-0.0`` as ``0.0``).

    Two linear forms modulo a prime ``p < 2^31`` with seeded random coefficients, of the
    16-bit halves of each value's bits (so no sum overflows int64 for ``d < 2^15`` columns per
    part): distinct rows share a form's value with probability ``1/p``. Computed exactly in
    integers, chunk by chunk, so the hash never depends on where a row sits.
    """
    n, d = feats.shape
    dev = feats.device
    g = torch.Generator().manual_seed(0x5EED)
    coef = torch.randint(1, _HASH_PRIME, (2, 4, d), generator=g, dtype=torch.int64).to(dev)
    part = 1 << 14  # columns per exact partial sum: < 2^16 * 2^31 * 2^14 = 2^61
    out = torch.empty(n, dtype=torch.int64, device=dev)
    for s in range(0, n, _chunk(feats)):
        x = feats[s:s + _chunk(feats)]
        x = torch.where(x == 0, torch.zeros((), dtype=x.dtype, device=dev), x)  # -0.0 -> 0.0
        bits = _as_bits(x)
        acc = torch.zeros((2, len(x)), dtype=torch.int64, device=dev)
        for c in range(0, d, part):
            b = bits[:, c:c + part]
            for k, sh in enumerate(range(0, 64 if bits.dtype == torch.int64 else 32, 16)):
                half = (b >> sh) & 0xFFFF
                for f in range(2):
                    acc[f] += (half * coef[f, k, c:c + part]).sum(1)
                    acc[f] %= _HASH_PRIME
        out[s:s + len(x)] = acc[0] * _HASH_PRIME + acc[1]
    return out


def _as_bits(x: torch.Tensor) -> torch.Tensor:
    """The bits of float values as non-negative int64 (float64: as int64, any value)."""
    if x.dtype == torch.float64:
        return x.view(torch.int64)
    if x.dtype == torch.float32:
        return x.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    if x.dtype in (torch.float16, torch.bfloat16):
        return x.view(torch.int16).to(torch.int64) & 0xFFFF
    return _as_bits(x.to(torch.float64))


def _rows_equal(feats: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``(len(a),)`` bool: row ``a[k]`` equals row ``b[k]`` as floats; pairs ``a == b`` skip the read."""
    out = a == b
    todo = (~out).nonzero().reshape(-1)
    step = max(1, _chunk(feats) // 2)
    for s in range(0, len(todo), step):
        k = todo[s:s + step]
        out[k] = (feats[a[k]] == feats[b[k]]).all(1)
    return out


def _split_collisions(feats: torch.Tensor, order: torch.Tensor, group: torch.Tensor,
                      same: torch.Tensor) -> torch.Tensor:
    """``group`` with each hash group that holds unequal rows split into its distinct rows
    (``torch.unique`` on that group's rows alone; new group ids past the old ones)."""
    group = group.clone()
    nxt = int(group.max()) + 1
    for gid in torch.unique(group[~same]).tolist():
        k = (group == gid).nonzero().reshape(-1)
        _, inv = torch.unique(feats[order[k]], dim=0, return_inverse=True)
        group[k] = torch.where(inv == 0, gid, nxt + inv - 1)
        nxt += int(inv.max())
    return group


def _lexicographic_order(feats: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The permutation sorting the distinct rows ``feats[rows]`` lexicographically (``<`` on the
    values, column 0 first), as ``torch.unique(dim=0)`` orders them.

    Column by column, only rows still tied with another are sorted again (by their tie group,
    then the column, stably); runs of columns on which every tie group is constant are skipped
    a block at a time.
    """
    m, d = len(rows), feats.shape[1]
    dev = rows.device
    perm = torch.arange(m, device=dev)  # rows[perm] is the current order
    tie = torch.zeros(m, dtype=torch.int64, device=dev)  # tie group of each position (sorted)
    active = torch.arange(m, device=dev)  # positions whose tie group has > 1 member
    col, block = 0, 64
    while active.numel() > 1 and col < d:
        r = rows[perm[active]]
        vals = feats[r, col:col + block]  # (T, B)
        t = tie[active]
        lead = torch.ones(len(t), dtype=torch.bool, device=dev)
        lead[1:] = t[1:] != t[:-1]
        start = torch.cumsum(lead, 0) - 1
        varies = (vals != vals[lead.nonzero().reshape(-1)][start]).any(0)
        if not bool(varies.any()):
            col += vals.shape[1]
            continue
        col += int(varies.nonzero()[0])
        v = feats[r, col]
        v = torch.where(v == 0, torch.zeros((), dtype=v.dtype, device=dev), v)
        o = torch.argsort(v, stable=True)
        o = o[torch.argsort(t[o], stable=True)]  # by tie group, then by value
        perm[active] = perm[active[o]]
        v, t = v[o], t[o]
        brk = torch.ones(len(t), dtype=torch.bool, device=dev)
        brk[1:] = (t[1:] != t[:-1]) | (v[1:] != v[:-1])
        sub = torch.cumsum(brk, 0) - 1 + (int(tie.max()) + 1)  # fresh ids for the new tie groups
        tie[active] = sub
        size = torch.bincount(sub - sub[0], minlength=1)
        keep = size[sub - sub[0]] > 1
        active = active[keep]
        col += 1
    return perm


def _stratified_indices(n_points: int, n_draws: int, gen: torch.Generator | None, device) -> torch.Tensor:
    """``n_draws`` indices into ``range(n_points)``: whole passes, then a draw without replacement."""
    full, rest = divmod(n_draws, n_points)
    extra = torch.randperm(n_points, generator=gen, device=device)[:rest]
    return torch.cat([torch.arange(n_points, device=device).repeat(full), extra])
