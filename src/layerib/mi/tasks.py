"""Benchmark distributions with known MI (nats): samplers for tests and ``bench_estimators --suite``.

Each :class:`Task` draws ``n`` paired samples as numpy arrays, ``x (n, dim_x)`` and
``y (n, dim_y)`` (or int64 labels ``(n,)``), and knows its true MI.

* ``gaussian``: correlated Gaussians, ``dim`` independent pairs of correlation rho
  (Poole et al. 2019's staircase at ``dim = 20``), optionally mixed by a random
  orthogonal map on each side (MI is invariant under invertible maps).
* ``transformed``: a Gaussian task pushed through an invertible per-coordinate map on
  each side (``cube`` x^3, ``asinh``, ``halfcube`` sign(x)|x|^1.5): MI unchanged
  (Czyz et al. 2023, "Beyond Normal", Sec. 3).
* ``student``: a multivariate Student-t pair, ``nu`` degrees of freedom, scale matrix of
  the Gaussian task: heavy tails, and dependence even without correlation. Closed form
  (Czyz et al. 2023, App.): ``I = I_gauss + f(nu) + f(nu + m + n) - f(nu + m) - f(nu + n)``,
  ``f(x) = log Gamma(x / 2) - (x / 2) psi(x / 2)``.
* ``mixture``: a label ``y`` uniform on K classes and ``x | y ~ N(mu_y, I_d)``; MI by
  Monte-Carlo with the exact posterior (precision stated in :func:`label_mixture_mi`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Callable

import numpy as np
from scipy.special import digamma, gammaln, logsumexp

from layerib.errors import ConfigError
from layerib.mi.ground_truth import rho_for_mi

TRANSFORMS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "cube": lambda a: a ** 3,
    "asinh": np.arcsinh,
    "halfcube": lambda a: np.sign(a) * np.abs(a) ** 1.5,
}


@dataclass(frozen=True)
class Task:
    """A paired distribution with known MI ``mi`` (nats); ``sample(n, seed) -> (x, y)``."""

    name: str
    mi: float
    dim_x: int
    dim_y: int
    sampler: Callable[[int, np.random.Generator], tuple[np.ndarray, np.ndarray]] = field(repr=False)
    discrete_y: bool = False

    def sample(self, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """``n`` pairs, reproducible from ``seed``: ``x (n, dim_x)``, ``y (n, dim_y)`` or ``(n,)``."""
        return self.sampler(n, np.random.default_rng(seed))


def _orthogonal(d: int, seed: int) -> np.ndarray:
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q * np.sign(np.diag(r))


def gaussian_task(dim: int, mi: float, mixed: bool = False) -> Task:
    """Correlated Gaussians, ``dim`` a side, true MI ``mi`` nats (orthogonally mixed if ``mixed``)."""
    rho = rho_for_mi(mi, dim)
    qx, qy = (_orthogonal(dim, 1), _orthogonal(dim, 2)) if mixed else (None, None)

    def sample(n, rng):
        x = rng.standard_normal((n, dim))
        y = rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal((n, dim))
        return (x @ qx, y @ qy) if mixed else (x, y)
    return Task(f"gauss{'-mix' if mixed else ''}_d{dim}_{mi:g}nats", mi, dim, dim, sample)


def transformed_task(base: Task, transform: str) -> Task:
    """``base`` with ``transform`` (a :data:`TRANSFORMS` name) applied to every coordinate."""
    fn = TRANSFORMS[transform]

    def sample(n, rng):
        x, y = base.sampler(n, rng)
        return fn(x), fn(y)
    return Task(f"{transform}({base.name})", base.mi, base.dim_x, base.dim_y, sample)


def student_t_extra_mi(nu: float, dim_x: int, dim_y: int) -> float:
    """MI of a multivariate-t pair beyond its Gaussian part (nats), > 0 for finite ``nu``."""
    def f(a):
        return gammaln(a / 2) - a / 2 * digamma(a / 2)
    return float(f(nu) + f(nu + dim_x + dim_y) - f(nu + dim_x) - f(nu + dim_y))


def student_task(dim: int, gauss_mi: float, nu: float) -> Task:
    """Multivariate Student-t pair, ``dim`` a side, scale of :func:`gaussian_task`, ``nu`` dof."""
    if nu <= 0:
        raise ConfigError(f"nu={nu} must be > 0")
    rho = rho_for_mi(gauss_mi, dim) if gauss_mi > 0 else 0.0
    mi = gauss_mi + student_t_extra_mi(nu, dim, dim)

    def sample(n, rng):
        x = rng.standard_normal((n, dim))
        y = rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal((n, dim))
        w = np.sqrt(nu / rng.chisquare(nu, size=(n, 1)))
        return x * w, y * w
    return Task(f"student{nu:g}_d{dim}_{mi:.2f}nats", mi, dim, dim, sample)


def _class_means(classes: int, dim: int, separation: float) -> np.ndarray:
    return separation * np.random.default_rng(1000 + classes * 7 + dim).standard_normal((classes, dim))


@lru_cache(maxsize=None)
def label_mixture_mi(classes: int, dim: int, separation: float, draws: int = 400_000) -> float:
    """I(Y; X) for ``Y`` uniform on ``classes`` and ``X | Y ~ N(mu_Y, I)`` (nats), by Monte-Carlo.

    ``I = ln K - E[H(Y | X)]`` with the exact posterior; ``draws`` = 4e5 gives a standard
    error below 2e-3 nats for the suite's tasks (the posterior entropy has variance < 1).
    """
    rng = np.random.default_rng(12345)
    mu = _class_means(classes, dim, separation)
    y = rng.integers(classes, size=draws)
    x = mu[y] + rng.standard_normal((draws, dim))
    logits = x @ mu.T - 0.5 * (mu ** 2).sum(1)
    log_post = logits - logsumexp(logits, axis=1, keepdims=True)
    return float(math.log(classes) + np.mean(np.take_along_axis(log_post, y[:, None], 1)))


def mixture_task(classes: int, dim: int, separation: float) -> Task:
    """Discrete-continuous pair: label ``y`` (int64) uniform on ``classes``, ``x | y`` Gaussian."""
    mu = _class_means(classes, dim, separation)

    def sample(n, rng):
        y = rng.integers(classes, size=n)
        return mu[y] + rng.standard_normal((n, dim)), y.astype(np.int64)
    mi = label_mixture_mi(classes, dim, separation)
    return Task(f"labels{classes}_d{dim}_{mi:.2f}nats", mi, dim, 1, sample, discrete_y=True)


def staircase_tasks(mis=(2.0, 4.0, 6.0, 8.0)) -> list[Task]:
    """Poole et al. (2019)'s staircase: 20-d correlated Gaussians at ``mis`` nats."""
    return [gaussian_task(20, m) for m in mis]


def suite_tasks() -> list[Task]:
    """The estimator benchmark (``benchmarks/bench_estimators.py --suite``)."""
    tasks = [gaussian_task(d, m) for d in (5, 20, 50) for m in (0.5, 2.0, 4.0)]
    tasks += [gaussian_task(100, 1.0), gaussian_task(20, 2.0, mixed=True)]
    tasks += [transformed_task(gaussian_task(5, 1.0), t) for t in ("cube", "asinh", "halfcube")]
    tasks += [transformed_task(gaussian_task(25, 2.0), "halfcube")]
    tasks += [student_task(5, 1.0, 3.0), student_task(10, 0.0, 2.0), student_task(2, 1.0, 1.0)]
    tasks += [mixture_task(2, 5, 1.0), mixture_task(10, 10, 1.0)]
    return tasks
