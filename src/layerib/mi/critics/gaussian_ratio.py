"""A critic fitted in closed form: the Gaussian log-density ratio, :class:`GaussianRatioCritic`.

For jointly Gaussian ``(u, v)`` with covariance ``S`` the optimal DV critic is
``log N([u, v]; S) - log N(u; S_uu) - log N(v; S_vv)`` (up to a constant). Fitted to the
sample covariance of training rows it needs no gradient steps; evaluated on *held-out*
rows it is still a valid lower bound (any fixed critic is), so it competes fairly with
neural critics on the validation bound. With the copula input map
(:mod:`layerib.mi.transforms`) it is also the optimal critic for any invertible
per-coordinate transform of Gaussians. Cross-covariances are shrunk by ``(1 - shrink)``
(toward independence) and, optionally, the whole covariance toward a sparse target
(variances and the paired covariances ``cov(u_i, v_i)``); both are chosen on the validation
rows. With ``d`` coordinates a side the sample covariance costs about ``d^2 / (2 n)`` nats
of held-out bound; the shrinkage wins part of it back where the data allow.

Writing ``P = S^-1`` in blocks, ``T(u, v) = -u' P_uv v - u' A u / 2 - v' C v / 2 + c``
with ``A = P_uu - S_uu^-1``, ``C = P_vv - S_vv^-1`` and
``c = (logdet S_uu + logdet S_vv - logdet S) / 2``; all pairs cost one matrix product.
"""

from __future__ import annotations

import torch
from torch import nn


class GaussianRatioCritic(nn.Module):
    """Closed-form critic ``T(u, v) = log p(u, v) / (p(u) p(v))`` of a fitted Gaussian.

    Args:
        u: ``(n, dim_u)``, v: ``(n, dim_v)`` training rows the covariance is fitted on.
        shrink: in [0, 1); the cross-covariance is multiplied by ``1 - shrink``.
        sparse: in [0, 1]; weight of the target that keeps only the variances and the
            covariances of the paired coordinates ``(u_i, v_i)`` (a structure the validation
            rows may or may not support; 0 keeps the sample covariance).
        ridge: added to the diagonal of each block (relative to its mean variance).
        quadratic: fit the Gaussian to the features ``[u, u^2 - 1, log mean(u^2)]`` (and the
            same of v) instead of u and v: dependence through a shared scale (a Student-t
            pair: correlated squares and energies, uncorrelated coordinates) then shows in
            the cross-covariance.

    Example:
        >>> c = GaussianRatioCritic(torch.randn(100, 2), torch.randn(100, 3))
        >>> c.pair_scores(torch.zeros(4, 2), torch.zeros(5, 3)).shape
        torch.Size([4, 5])
    """

    def __init__(self, u: torch.Tensor, v: torch.Tensor, shrink: float = 0.0, sparse: float = 0.0,
                 ridge: float = 1e-6, quadratic: bool = False):
        super().__init__()
        self.quadratic = quadratic
        u, v = self.features(u), self.features(v)
        z = torch.cat([u, v], 1).double()
        mean = z.mean(0)
        zc = z - mean
        s = zc.T @ zc / max(len(z) - 1, 1)
        du = u.shape[1]
        if sparse:
            s = (1.0 - sparse) * s + sparse * _paired_target(s, du)
        s[:du, du:] *= 1.0 - shrink
        s[du:, :du] *= 1.0 - shrink
        s = s + ridge * s.diagonal().mean() * torch.eye(len(s), dtype=s.dtype)
        p = torch.linalg.inv(s)
        suu_inv, svv_inv = torch.linalg.inv(s[:du, :du]), torch.linalg.inv(s[du:, du:])
        const = 0.5 * (torch.logdet(s[:du, :du]) + torch.logdet(s[du:, du:]) - torch.logdet(s))
        for name, t in (("mu", mean[:du]), ("mv", mean[du:]), ("cross", -p[:du, du:]),
                        ("quad_u", p[:du, :du] - suu_inv), ("quad_v", p[du:, du:] - svv_inv),
                        ("const", const)):
            self.register_buffer(name, t.float())

    def features(self, a: torch.Tensor) -> torch.Tensor:
        """``a`` ``(batch, dim)``, or ``[a, a^2 - 1, log mean_i a_i^2]`` ``(batch, 2 dim + 1)``
        when ``quadratic`` (the last one the log energy of the row: a shared scale)."""
        if not self.quadratic:
            return a
        sq = a * a
        return torch.cat([a, sq - 1.0, torch.log(sq.mean(1, keepdim=True) + 1e-3)], 1)

    def _parts(self, u, v):
        u, v = self.features(u) - self.mu, self.features(v) - self.mv
        a = -0.5 * ((u @ self.quad_u) * u).sum(-1)
        b = -0.5 * ((v @ self.quad_v) * v).sum(-1)
        return u, v, a, b

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs: ``(batch,)``."""
        u, v, a, b = self._parts(u, v)
        return ((u @ self.cross) * v).sum(-1) + a + b + self.const

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on all pairs: ``(batch_u, batch_v)``."""
        u, v, a, b = self._parts(u, v)
        return (u @ self.cross) @ v.T + a[:, None] + b[None, :] + self.const


def _paired_target(s: torch.Tensor, du: int) -> torch.Tensor:
    """``s`` with all entries zeroed but the diagonal and ``cov(u_i, v_i)``, ``i < min(du, dv)``."""
    keep = torch.eye(len(s), dtype=torch.bool)
    k = torch.arange(min(du, len(s) - du))
    keep[k, du + k] = keep[du + k, k] = True
    return s * keep
