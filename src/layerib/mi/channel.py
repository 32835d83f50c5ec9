"""The Gaussian channel ``z = l + eps``, ``eps ~ N(0, sigma^2 I)``: the measuring noise of Eq. 2.

Elad et al. 2019 (Sec. 2-3) measure ``I(X; L + eps)`` with noise that the net never sees.
:class:`GaussianChannel` is the one object that owns the noise variance ``sigma^2``: it
draws the noise (:meth:`sample`, :meth:`add`) and gives the exact Gaussian part of the
optimal AA-MINE critic, ``log N(z; l, sigma^2 I)`` up to a z-only term
(:meth:`pair_scores`). With InfoNCE normalising each ``z_j`` over the batch's ``l_k``
those z-only terms cancel, so this is the whole critic of the trainer's default
I(X; L + eps) term: it has no trained parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from layerib.errors import ConfigError


class GaussianChannel(nn.Module):
    """``z = l + eps`` with ``eps ~ N(0, noise_var I)``; also a parameter-free critic.

    Args:
        noise_var: ``sigma^2 > 0``, finite, in squared units of ``l``.

    Raises:
        ConfigError: ``noise_var`` not finite and > 0.

    Example:
        >>> ch = GaussianChannel(4.0)
        >>> ch.pair_scores(torch.zeros(3, 2), torch.ones(5, 2)).shape
        torch.Size([3, 5])
    """

    def __init__(self, noise_var: float):
        super().__init__()
        if not (isinstance(noise_var, (int, float)) and math.isfinite(noise_var) and noise_var > 0):
            raise ConfigError(f"noise_var={noise_var!r} must be a finite number > 0 "
                              "(the MI is infinite at 0)")
        self.noise_var = float(noise_var)
        self.register_buffer("scale", torch.tensor(1.0 / self.noise_var))

    def sample(self, like: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        """Noise ``eps`` of ``like``'s shape, dtype and device (drawn from ``g``)."""
        eps = torch.randn(like.shape, generator=g, device=like.device, dtype=like.dtype)
        return self.noise_var ** 0.5 * eps

    def add(self, l: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        """``l + eps``, ``(batch, ...)``."""
        return l + self.sample(l, g)

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``(u_k . v_j - |u_k|^2 / 2) / sigma^2`` for all pairs: ``(batch_u, batch_v)``.

        ``log N(v_j; u_k, sigma^2 I)`` up to terms in ``v_j`` alone (which cancel when
        each column is normalised over k, InfoNCE over u).
        """
        return self.scale * (u @ v.T - 0.5 * u.pow(2).sum(-1, keepdim=True))

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The same on aligned pairs ``(u_k, v_k)``: ``(batch,)``."""
        return self.scale * ((u * v).sum(-1) - 0.5 * u.pow(2).sum(-1))
