"""AA-MINE inner critic whose z-only term is a Gaussian mixture: :class:`MixtureNoiseCritic`.

For ``v = u + eps``, ``eps ~ N(0, s2 I)`` with known ``s2``, the optimal DV critic is
``log p(v | u) - log p(v) + const`` (Belghazi et al. 2018; Elad et al. 2019, Sec. 3).
When u is uniform over N points ``l_j`` (any deterministic layer on a data set, docs/design.md
Sec. 3), ``p(v) = (1/N) sum_j N(v; l_j, s2 I)``: a mixture of Gaussians of the noise's own
variance. This critic is that family,

    T(u, v) = log N(v; u, s2 I) - log sum_m w_m N(v; c_m, s2 I) + const
            = (u.v - |u|^2 / 2) / s2 - logsumexp_m [ (c_m.v - |c_m|^2 / 2) / s2 + log w_m ],

with M centres ``c_m`` (initialised at M training features, optionally learnt) and learnt
weights ``w = softmax(logits)`` (initially equal). With M = N centres at the data's
features it *is* the optimal critic; with M training features it is the optimal critic
for the training set, which MINE training then adjusts.

Why (our choice, measured): :class:`~layerib.mi.critics.GaussianNoiseCritic` learns its
z-only term with a quadratic plus an MLP, a poor density model for 512-d ReLU features
(1.86 vs a Monte-Carlo truth of 2.92 nats). With this critic AA-MINE is within a few per
cent of the truth wherever the truth is below ln B - 1 (see ``benchmarks/`` and
``layerib reproduce fig1``). Cost: ``batch * M * dim`` per batch (one matrix product).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from layerib.errors import ConfigError


class MixtureNoiseCritic(nn.Module):
    """Critic for ``I(U; U + eps)`` with ``q(v) = -log sum_m w_m N(v; c_m, s2 I)``.

    Same interface as :class:`~layerib.mi.critics.GaussianNoiseCritic`: ``scores(u, v)``
    ``(batch,)``, ``pair_scores(u, v)`` ``(batch_u, batch_v)``, ``v_term(v)`` ``(batch,)``.

    Args:
        centers: ``(M, dim)`` initial centres, e.g. features of M training points.
        noise_var: ``s2 > 0``, the variance of the Gaussian term and of every component.
        learn_centers: also train the centres (costs a second ``batch * M * dim`` product).
        offset: constant added to every score. DV ignores it; NWJ's optimal critic is
            ``1 + log p(v|u)/p(v)``, and this family is a *normalised* log-ratio with no free
            constant, so NWJ needs ``offset=1`` (at 0 it sits exactly 1/e below the truth).

    Raises:
        ConfigError: ``noise_var`` not finite and > 0, or ``centers`` not a non-empty
            finite ``(M, dim)`` tensor.

    Example:
        >>> c = MixtureNoiseCritic(torch.zeros(3, 2), noise_var=1.0)
        >>> c.pair_scores(torch.zeros(4, 2), torch.ones(5, 2)).shape
        torch.Size([4, 5])
    """

    def __init__(self, centers: torch.Tensor, noise_var: float, learn_centers: bool = False,
                 offset: float = 0.0):
        super().__init__()
        if not (isinstance(noise_var, (int, float)) and math.isfinite(noise_var) and noise_var > 0):
            raise ConfigError(f"noise_var={noise_var} must be finite and > 0 for the mixture critic")
        if centers.dim() != 2 or len(centers) < 1 or not torch.isfinite(centers).all():
            raise ConfigError(f"centers {tuple(centers.shape)} must be a finite (M, dim) tensor, M >= 1")
        centers = centers.detach().float()
        shift = centers.mean(0)  # T is shift-invariant; centring keeps u.v small in float32
        self.register_buffer("scale", torch.tensor(1.0 / noise_var))
        self.register_buffer("shift", shift)
        self.centers = nn.Parameter(centers - shift, requires_grad=learn_centers)
        self.logits = nn.Parameter(torch.zeros(len(centers)))
        self.register_buffer("offset", torch.tensor(float(offset)), persistent=False)
        self._sq_key, self._sq = None, None  # |c_m|^2 of fixed centres, computed once

    def _center_sq(self) -> torch.Tensor:
        """``|c_m|^2``, ``(M,)``. Fixed centres (not learnt): computed once per value of the
        centres (an ``M x dim`` temporary per step otherwise: 134 MB at 2048 x 16 384)."""
        c = self.centers
        if c.requires_grad and torch.is_grad_enabled():
            return c.pow(2).sum(1)
        key = (c.data_ptr(), c._version, c.device, c.dtype)
        if self._sq_key != key:
            with torch.no_grad():
                self._sq = c.pow(2).sum(1)
            self._sq_key = key
        return self._sq

    @property
    def n_centers(self) -> int:
        return self.centers.shape[0]

    def v_term(self, v: torch.Tensor) -> torch.Tensor:
        """``q(v) = -logsumexp_m [s (c_m.v - |c_m|^2/2) + log w_m]`` on shifted v, ``(batch,)``."""
        c, s = self.centers, self.scale
        col = torch.log_softmax(self.logits, 0) - 0.5 * s * self._center_sq()
        return self.offset - torch.logsumexp(torch.addmm(col, v - self.shift, c.T, alpha=float(s)),
                                             dim=1)

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs: ``(batch,)``."""
        u, vs = u - self.shift, v - self.shift
        return self.scale * ((u * vs).sum(-1) - 0.5 * u.pow(2).sum(-1)) + self.v_term(v)

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on all pairs: ``(batch_u, batch_v)``, entry ``[k, j] = T(u_k, v_j)``."""
        u, vs = u - self.shift, v - self.shift
        gauss = self.scale * (u @ vs.T - 0.5 * u.pow(2).sum(-1, keepdim=True))
        return gauss + self.v_term(v).unsqueeze(0)

    @classmethod
    def from_features(cls, features: torch.Tensor, noise_var: float, n_centers: int,
                      generator: torch.Generator | None = None,
                      learn_centers: bool = False, offset: float = 0.0) -> "MixtureNoiseCritic":
        """Centres at ``min(n_centers, N)`` rows of ``features`` ``(N, dim)``, drawn without replacement."""
        if n_centers < 1:
            raise ConfigError(f"n_centers={n_centers} must be >= 1")
        idx = torch.randperm(len(features), generator=generator, device=features.device)[:n_centers]
        return cls(features[idx], noise_var, learn_centers, offset)
