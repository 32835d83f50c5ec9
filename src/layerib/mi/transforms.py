"""Per-coordinate input maps fitted on training rows: :class:`MarginalMap`.

MI is invariant under an invertible map of each variable, in particular under any strictly
increasing map of each coordinate. :func:`~layerib.mi.estimate.estimate_mi` uses that to
hand its critics inputs of scale 1:

* ``"standardize"``: ``(a - mean) / std`` of the training rows.
* ``"copula"``: each coordinate through its training empirical CDF and the standard-normal
  quantile (the Gaussian-copula / normal-scores transform; Ince et al. 2017, Hum. Brain
  Mapp. 38: 1541). Heavy tails and monotone distortions (x^3, asinh) are undone, and the
  map is strictly increasing, so the MI is kept exactly: linear interpolation between the
  training order statistics (ties share their mean score) and a logarithmic extension beyond them.
"""

from __future__ import annotations

import numpy as np
from scipy.special import ndtri

from layerib.errors import ConfigError

MAPS = ("copula", "standardize", "none")


class MarginalMap:
    """A strictly increasing map of each coordinate, fitted on training rows ``(n, dim)``.

    Args:
        train: ``(n, dim)`` float rows the map is fitted on (n >= 2).
        kind: one of :data:`MAPS`.

    Raises:
        ConfigError: unknown ``kind``.
    """

    def __init__(self, train: np.ndarray, kind: str = "copula"):
        if kind not in MAPS:
            raise ConfigError(f"unknown input map {kind!r}; choose one of {MAPS}")
        self.kind = kind
        self.mean = train.mean(0)
        self.std = np.maximum(train.std(0), 1e-12)
        self.knots: list[tuple[np.ndarray, np.ndarray]] = []
        if kind == "copula":
            n = len(train)
            scores = ndtri((np.arange(1, n + 1) - 0.5) / n)
            for col in train.T:
                vals, inv = np.unique(np.sort(col), return_inverse=True)
                mean_score = np.bincount(inv, weights=scores) / np.bincount(inv)
                self.knots.append((vals, mean_score))

    def __call__(self, a: np.ndarray) -> np.ndarray:
        """The map applied to rows ``a`` ``(m, dim)``; float64 ``(m, dim)``."""
        if self.kind == "none":
            return a
        if self.kind == "standardize":
            return (a - self.mean) / self.std
        return np.stack([_interp_extend(col, xs, ys) for col, (xs, ys) in zip(a.T, self.knots)], 1)


def _interp_extend(a: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Piecewise-linear through ``(xs, ys)``; beyond the ends ``+- log1p(slope * distance)``.

    The extension starts with the end segment's slope and grows only logarithmically, so an
    outlier far beyond the training range stays strictly ordered but of moderate size.
    """
    if len(xs) == 1:
        return np.zeros_like(a)
    out = np.interp(a, xs, ys)
    lo_slope = (ys[1] - ys[0]) / (xs[1] - xs[0])
    hi_slope = (ys[-1] - ys[-2]) / (xs[-1] - xs[-2])
    out = np.where(a < xs[0], ys[0] - np.log1p(np.maximum(xs[0] - a, 0) * lo_slope), out)
    return np.where(a > xs[-1], ys[-1] + np.log1p(np.maximum(a - xs[-1], 0) * hi_slope), out)
