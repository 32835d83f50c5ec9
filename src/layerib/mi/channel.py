"""The Gaussian channel ``z = l + eps``, ``eps ~ N(0, sigma^2 I)``: the measuring noise of Eq. 2.

Elad et al. 2019 (Sec. 2-3) measure ``I(X; L + eps)`` with noise that the net never sees.
:class:`GaussianChannel` is the one owner of the noise variance ``sigma^2``: the one check
(:meth:`GaussianChannel.check`), the one sampler (:meth:`~GaussianChannel.sample`,
:meth:`~GaussianChannel.add`, and :meth:`~GaussianChannel.row_noise` for the fixed noise of
held-out rows), and the exact Gaussian part of the optimal AA-MINE critic,
``log N(z; l, sigma^2 I)`` up to a z-only term (:meth:`~GaussianChannel.pair_scores`). With
InfoNCE normalising each ``z_j`` over the batch's ``l_k`` those z-only terms cancel, so this
is the whole critic of the trainer's default I(X; L + eps) term: it has no trained
parameters. The noise critics (:mod:`layerib.mi.critics.noise`) hold one.

``noise_var=None`` (or no channel) means no measuring noise; a variance of 0 is not a
channel (the MI of a continuous L is infinite there): the callers that accept 0 read it as
"no channel" (``check(..., zero_ok=True)`` returns 0.0 and they build none).
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
        >>> ch.sd
        2.0
    """

    def __init__(self, noise_var: float):
        super().__init__()
        self.noise_var = self.check(noise_var)
        self.sd = math.sqrt(self.noise_var)
        self.register_buffer("scale", torch.tensor(1.0 / self.noise_var))

    @staticmethod
    def check(noise_var, zero_ok: bool = False) -> float:
        """``noise_var`` as a float if it is a finite number > 0 (or 0 with ``zero_ok``).

        The one rule for sigma^2 in layerib. ``zero_ok`` is for callers that read 0 as "no
        noise" (``layerib estimate``'s noise variances, Fig. 1's sweep) and build no channel then.

        Raises:
            ConfigError: not a finite number > 0 (>= 0 with ``zero_ok``); the message says the fix.

        Example:
            >>> GaussianChannel.check(2)
            2.0
        """
        try:  # a number (Python, numpy or a 0-d tensor), not a bool or a string
            s2 = float(noise_var) if not isinstance(noise_var, (bool, str)) else math.nan
        except (TypeError, ValueError):
            s2 = math.nan
        if not (math.isfinite(s2) and (s2 > 0 or (zero_ok and s2 == 0))):
            rule = ">= 0 (0: no noise)" if zero_ok else "> 0 (the MI is infinite at 0)"
            raise ConfigError(f"noise variance {noise_var!r} must be a finite number {rule}; "
                              "pass noise_var = sigma^2")
        return s2

    def sample(self, like: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        """Noise ``eps`` of ``like``'s shape, dtype and device (drawn from ``g``)."""
        eps = torch.randn(like.shape, generator=g, device=like.device, dtype=like.dtype)
        return self.sd * eps

    def add(self, l: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        """``l + eps``, ``(batch, ...)``."""
        return l + self.sample(l, g)

    def row_noise(self, n: int, shape: tuple[int, ...], seed: int,
                  device: torch.device | str = "cpu") -> "RowNoise":
        """Fixed noise ``(n, *shape)`` for held-out rows, the same per row whatever batch reads it."""
        return RowNoise(n, shape, self.sd, seed, device)

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``(u_k . v_j - |u_k|^2 / 2) / sigma^2`` for all pairs: ``(batch_u, batch_v)``.

        ``log N(v_j; u_k, sigma^2 I)`` up to terms in ``v_j`` alone (which cancel when
        each column is normalised over k, InfoNCE over u).
        """
        return self.scale * (u @ v.T - 0.5 * u.pow(2).sum(-1, keepdim=True))

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The same on aligned pairs ``(u_k, v_k)``: ``(batch,)``."""
        return self.scale * ((u * v).sum(-1) - 0.5 * u.pow(2).sum(-1))


class RowNoise:
    """Fixed Gaussian noise ``(n, *shape)`` drawn row by row when indexed, never held whole.

    Made by :meth:`GaussianChannel.row_noise`. Row ``r`` is ``sd * torch.randn(shape)`` from a generator seeded with
    ``(seed * 2654435761 + r) mod 2**32`` (a distinct stream for every row of one noise), so
    ``noise[idx]`` gives the same values for a row whatever batch it is read in, as a stored
    array would (the held-out terms of different critics stay comparable), at the memory of
    one batch: a stored array was 0.65 GB for 10 000 test rows of 16 384 columns.

    Args:
        n: rows; shape: the shape of one row; sd: the noise's standard deviation (> 0);
        seed: seeds every row's draw (rows of different seeds are independent draws);
        device: where the rows it returns live (drawn on the CPU generator, then moved).
    """

    def __init__(self, n: int, shape: tuple[int, ...], sd: float, seed: int,
                 device: torch.device | str = "cpu"):
        self.n, self.row_shape, self.sd, self.seed = int(n), tuple(shape), float(sd), int(seed)
        self.device = torch.device(device)
        self.shape = (self.n, *self.row_shape)
        self._kept: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.n

    #: at most this many numbers in all (64 MB of float32): drawn once and kept, the same
    #: values. Drawing per batch costs a generator per row and read: at 2^22 the MNIST
    #: layers' 10 000 x 512 test noise was drawn per batch and the default MNIST run took
    #: 158 s instead of 132 s
    KEEP_NUMBERS = 1 << 24

    def __getitem__(self, idx) -> torch.Tensor:
        idx = torch.as_tensor(idx)
        if self.n * math.prod(self.row_shape) <= self.KEEP_NUMBERS:
            if self._kept is None:
                self._kept = self._draw(list(range(self.n)))
            return self._kept[idx.to(self._kept.device)]
        return self._draw(torch.arange(self.n)[idx.cpu()].reshape(-1).tolist())

    def _draw(self, rows: list[int]) -> torch.Tensor:
        out = torch.empty((len(rows), *self.row_shape))
        g = torch.Generator()
        base = (self.seed * _ROW_SEED_MULT) % (1 << 32)
        for i, r in enumerate(rows):
            torch.randn(self.row_shape, generator=g.manual_seed((base + r) % (1 << 32)), out=out[i])
        return out.mul_(self.sd).to(self.device)


#: row r of a RowNoise of seed s draws from torch's generator seeded (s * this + r) mod 2^32
#: (torch's CPU generator keeps 32 bits of a seed); odd, so the rows of one noise never share
_ROW_SEED_MULT = 2654435761
