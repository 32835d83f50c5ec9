"""Non-neural MI estimates users compare against (nats): k-NN (KSG) and Gaussian / CCA.

* :func:`ksg_mi`: Kraskov, Stoegbauer & Grassberger (2004), estimator 1 (Eq. 8), max-norm,
  on standardised coordinates; for an integer ``y``, Ross (2014)'s discrete-continuous
  k-NN estimator (PLoS ONE 9(2), Eq. 2). Neighbour counts by :class:`scipy.spatial.cKDTree`.
* :func:`cca_mi`: the MI of the Gaussian with the sample covariance,
  ``-1/2 sum_i log(1 - rho_i^2)`` over the sample canonical correlations: exact in the
  limit for Gaussians, a lower bound's proxy (not a bound) otherwise. An integer ``y``
  enters one-hot.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree
from scipy.special import digamma

from layerib.errors import ConfigError


def _prepare(x, y) -> tuple[np.ndarray, np.ndarray, bool]:
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y)
    discrete = np.issubdtype(y.dtype, np.integer) and y.ndim == 1
    y = y if discrete else y.astype(np.float64).reshape(len(y), -1)
    if len(x) != len(y) or len(x) < 10:
        raise ConfigError(f"x and y need the same number of rows (>= 10), got {len(x)} and {len(y)}")
    return x, y, discrete


def _standardise(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    a = (a - a.mean(0)) / np.maximum(a.std(0), 1e-12)
    return a + 1e-10 * rng.standard_normal(a.shape)  # breaks ties (KSG assumes none)


def ksg_mi(x, y, k: int = 3, seed: int = 0) -> float:
    """KSG k-NN estimate of I(X; Y) in nats (Ross 2014 for integer labels ``y``).

    Args:
        x: ``(N, ...)``; y: ``(N, ...)`` continuous, or ``(N,)`` integer labels.
        k: neighbours (3, KSG's usual choice).
        seed: seeds the tie-breaking jitter.

    Raises:
        ConfigError: mismatched or too few rows.

    Example:
        >>> g = np.random.default_rng(0)
        >>> x = g.standard_normal((500, 1))
        >>> round(ksg_mi(x, x + g.standard_normal((500, 1))), 1)  # truth 0.5 ln 2 = 0.35
        0.4
    """
    return ksg_reference(x, y, k, seed)[0]


def ksg_reference(x, y, k: int = 3, seed: int = 0) -> tuple[float, float]:
    """``(value, se)`` nats: :func:`ksg_mi` and the standard error of the mean of its per-row
    terms (``psi(n_x + 1) + psi(n_y + 1)``, or Ross's per-row terms), ``std / sqrt(N)``: the
    rows' spread only (the terms are weakly dependent through shared neighbours, and KSG's
    bias, low at high MI and in high dimension, is not in it).

    Raises:
        ConfigError: mismatched or too few rows.
    """
    x, y, discrete = _prepare(x, y)
    rng = np.random.default_rng(seed)
    x, n = _standardise(x, rng), len(x)
    if discrete:
        terms = _ross_terms(x, y, k)
    else:
        y = _standardise(y, rng)
        xy = np.hstack([x, y])
        eps = cKDTree(xy).query(xy, k + 1, p=np.inf)[0][:, -1]
        r = np.nextafter(eps, 0)  # strictly closer than the k-th neighbour
        nx = cKDTree(x).query_ball_point(x, r, p=np.inf, return_length=True) - 1
        ny = cKDTree(y).query_ball_point(y, r, p=np.inf, return_length=True) - 1
        terms = digamma(k) + digamma(n) - digamma(nx + 1) - digamma(ny + 1)
    return float(np.mean(terms)), float(np.std(terms, ddof=1) / np.sqrt(len(terms)))


def _ross_terms(x: np.ndarray, y: np.ndarray, k: int) -> np.ndarray:
    n = len(x)
    radius = np.zeros(n)
    n_class = np.zeros(n)
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        n_class[idx] = len(idx)
        kk = min(k, len(idx) - 1)
        if kk < 1:
            continue
        radius[idx] = cKDTree(x[idx]).query(x[idx], kk + 1, p=np.inf)[0][:, -1]
    m = cKDTree(x).query_ball_point(x, radius, p=np.inf, return_length=True) - 1
    keep = n_class > 1
    return digamma(n) - digamma(n_class[keep]) + digamma(k) - digamma(np.maximum(m[keep], 1))


def cca_reference(x, y, permutations: int = 8, seed: int = 0) -> tuple[float, float]:
    """``(value, spread)`` nats: :func:`cca_mi` minus its mean on ``permutations`` shuffles of
    the rows of ``y`` (pairs made independent: the plug-in estimate's bias, higher orders
    included, which ``d_x d_y / (2 N)`` misses when N is a few times d), floored at 0, and
    the standard deviation of those shuffled values (the reference's noise under
    independence; :func:`cca_se` gives its standard error at the value).

    Args:
        x: ``(N, ...)``; y: ``(N, ...)`` continuous. permutations: shuffles (>= 2).
        seed: seeds the shuffles.

    Raises:
        ConfigError: mismatched or too few rows.

    Example:
        >>> g = np.random.default_rng(0)
        >>> x, y = g.standard_normal((500, 10)), g.standard_normal((500, 10))
        >>> value, spread = cca_reference(x, y)
        >>> value < 0.05 and spread < 0.05
        True
    """
    x, y, _ = _prepare(x, y)
    rng = np.random.default_rng(seed)
    null = np.array([cca_mi(x, y[rng.permutation(len(y))]) for _ in range(permutations)])
    return max(0.0, cca_mi(x, y) - float(null.mean())), float(null.std(ddof=1))


def tail_dependence(x, y) -> tuple[float, float]:
    """``(excess, se)``: how much more the squared norms ``|x|^2`` and ``|y|^2`` of normal
    scores co-vary than a Gaussian copula with the same correlations allows.

    On Gaussian rows ``cov(|x|^2, |y|^2) = 2 ||S_xy||_F^2`` and ``var(|x|^2) = 2 ||S_xx||_F^2``
    (Isserlis), so their correlation is ``||S_xy||^2 / (||S_xx|| ||S_yy||)`` (Frobenius
    norms of the sample correlation blocks). ``excess`` is the sample correlation of the
    squared norms less that: about 0 (within ``se``) for Gaussian copulas and per-coordinate
    transforms, +0.3 .. +0.8 for Student-t pairs (a shared scale: joint extremes, the
    dependence the critics capture worst), negative for additive noise. ``se = 1 / sqrt(N)``
    (the correlation's standard error under independence).

    Args:
        x: ``(N, d_x)``; y: ``(N, d_y)`` continuous rows, normal scores (copula-mapped) so
            that no coordinate's own tails weigh in.

    Raises:
        ConfigError: mismatched or too few rows.

    Example:
        >>> g = np.random.default_rng(0)
        >>> x = g.standard_normal((4000, 3)); y = x + g.standard_normal((4000, 3))
        >>> abs(tail_dependence(x, y)[0]) < 0.05  # Gaussian: no excess
        True
        >>> s = np.sqrt(2 / g.chisquare(2, (4000, 1)))  # Student-t, nu = 2: one scale for both
        >>> from scipy.stats import norm, rankdata
        >>> u = lambda a: norm.ppf(rankdata(a, axis=0) / (len(a) + 1))  # normal scores
        >>> tail_dependence(u(s * g.standard_normal((4000, 3))), u(s * g.standard_normal((4000, 3))))[0] > 0.3
        True
    """
    x, y, discrete = _prepare(x, y)
    if discrete:
        raise ConfigError("tail_dependence needs continuous y; labels have no norm")
    c = np.corrcoef(np.hstack([x, y]), rowvar=False)
    c = np.nan_to_num(np.atleast_2d(c))
    d = x.shape[1]
    gauss = (c[:d, d:] ** 2).sum() / max(np.sqrt((c[:d, :d] ** 2).sum() * (c[d:, d:] ** 2).sum()), 1e-12)
    rx, ry = ((x - x.mean(0)) ** 2).sum(1), ((y - y.mean(0)) ** 2).sum(1)
    if rx.std() == 0 or ry.std() == 0:
        return 0.0, 1.0 / np.sqrt(len(x))
    return float(np.corrcoef(rx, ry)[0, 1] - gauss), float(1.0 / np.sqrt(len(x)))


def cca_se(x, y) -> float:
    """Asymptotic standard error of :func:`cca_mi` (nats): ``sqrt(sum_i rho_i^2 / N)`` over the
    sample canonical correlations (delta method: ``var(r) = (1 - rho^2)^2 / N`` for each
    canonical pair and ``d/d rho`` of ``-1/2 log(1 - rho^2)`` is ``rho / (1 - rho^2)``).

    Example:
        >>> g = np.random.default_rng(0)
        >>> x = g.standard_normal((1000, 1))
        >>> round(cca_se(x, x + g.standard_normal((1000, 1))), 3)  # rho^2 = 1/2: sqrt(0.5 / 1000)
        0.023
    """
    x, y, _ = _prepare(x, y)
    rho = _canonical_correlations(x, y)
    return float(np.sqrt((rho ** 2).sum() / len(x)))


def _canonical_correlations(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x, y = x - x.mean(0), y - y.mean(0)

    def whiten(a):
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        return u[:, s > s.max() * 1e-10]
    return np.clip(np.linalg.svd(whiten(x).T @ whiten(y), compute_uv=False), 0.0, 1.0 - 1e-12)


def cca_mi(x, y, debias: bool = False) -> float:
    """Gaussian (CCA) MI of the sample covariance, ``-1/2 sum log(1 - rho_i^2)`` nats.

    Args:
        x: ``(N, ...)``; y: ``(N, ...)`` continuous, or ``(N,)`` integer labels (one-hot).
        debias: subtract the plug-in estimate's first-order bias ``d_x d_y / (2 N)`` (its
            mean on independent Gaussians; d = ranks of x and y), floored at 0: the
            reference ``estimate_mi`` reports.

    Example:
        >>> g = np.random.default_rng(0)
        >>> x, y = g.standard_normal((400, 10)), g.standard_normal((400, 10))
        >>> round(cca_mi(x, y), 2), round(cca_mi(x, y, debias=True), 2)
        (0.11, 0.0)

    Raises:
        ConfigError: mismatched or too few rows.
    """
    x, y, discrete = _prepare(x, y)
    if discrete:
        classes = np.unique(y)
        y = (y[:, None] == classes[None, 1:]).astype(np.float64)  # drop one: full rank
    x, y = x - x.mean(0), y - y.mean(0)

    def whiten(a):
        u, s, _ = np.linalg.svd(a, full_matrices=False)
        return u[:, s > s.max() * 1e-10]
    wx, wy = whiten(x), whiten(y)
    rho = np.linalg.svd(wx.T @ wy, compute_uv=False)
    rho = np.clip(rho, 0.0, 1.0 - 1e-12)
    mi = float(-0.5 * np.log1p(-rho ** 2).sum())
    return max(0.0, mi - wx.shape[1] * wy.shape[1] / (2 * len(x))) if debias else mi
