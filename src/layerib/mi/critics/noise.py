"""Critics for ``I(U; U + eps)`` with known Gaussian noise: each holds the :class:`GaussianChannel`.

Both have the form ``T(u, v) = log N(v; u, s2 I) + q(v)`` (the channel's exact term, its
:meth:`~layerib.mi.channel.GaussianChannel.scores` / ``pair_scores``, plus a learnt z-only
term q), the form of the optimal critic when ``v = u + eps``:

* :class:`GaussianNoiseCritic`: q a quadratic plus an MLP.
* :class:`MixtureNoiseCritic`: q the negative log of a Gaussian mixture (below).

The channel is the critic's ``channel`` submodule; state dicts written when the critic held
its own ``scale`` buffer load (the key is renamed on read).

The mixture critic:

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

import torch
from torch import nn

from layerib.errors import ConfigError
from layerib.mi.channel import GaussianChannel
from layerib.mi.critics.mlp import _mlp


def _channel(noise_var: float | GaussianChannel) -> GaussianChannel:
    return noise_var if isinstance(noise_var, GaussianChannel) else GaussianChannel(noise_var)


class _HoldsChannel(nn.Module):
    """Loads state dicts of the time the critic kept ``scale`` (1 / s2) itself."""

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "scale" in state_dict and prefix + "channel.scale" not in state_dict:
            state_dict[prefix + "channel.scale"] = state_dict.pop(prefix + "scale")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @property
    def scale(self) -> torch.Tensor:
        """``1 / s2``, the channel's (a 0-d buffer)."""
        return self.channel.scale




class MixtureNoiseCritic(_HoldsChannel):
    """Critic for ``I(U; U + eps)`` with ``q(v) = -log sum_m w_m N(v; c_m, s2 I)``.

    Same interface as :class:`~layerib.mi.critics.GaussianNoiseCritic`: ``scores(u, v)``
    ``(batch,)``, ``pair_scores(u, v)`` ``(batch_u, batch_v)``, ``v_term(v)`` ``(batch,)``.

    Args:
        centers: ``(M, dim)`` initial centres, e.g. features of M training points.
        noise_var: ``s2 > 0``, the variance of the Gaussian term and of every component, or
            the :class:`~layerib.mi.channel.GaussianChannel` to hold.
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

    def __init__(self, centers: torch.Tensor, noise_var: float | GaussianChannel,
                 learn_centers: bool = False, offset: float = 0.0):
        super().__init__()
        self.channel = _channel(noise_var)
        if centers.dim() != 2 or len(centers) < 1 or not torch.isfinite(centers).all():
            raise ConfigError(f"centers {tuple(centers.shape)} must be a finite (M, dim) tensor, M >= 1")
        centers = centers.detach().float()
        shift = centers.mean(0)  # T is shift-invariant; centring keeps u.v small in float32
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
        return self.channel.scores(u - self.shift, v - self.shift) + self.v_term(v)

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on all pairs: ``(batch_u, batch_v)``, entry ``[k, j] = T(u_k, v_j)``."""
        gauss = self.channel.pair_scores(u - self.shift, v - self.shift)
        return gauss + self.v_term(v).unsqueeze(0)

    @classmethod
    def from_features(cls, features: torch.Tensor, noise_var: float | GaussianChannel, n_centers: int,
                      generator: torch.Generator | None = None,
                      learn_centers: bool = False, offset: float = 0.0) -> "MixtureNoiseCritic":
        """Centres at ``min(n_centers, N)`` rows of ``features`` ``(N, dim)``, drawn without replacement."""
        if n_centers < 1:
            raise ConfigError(f"n_centers={n_centers} must be >= 1")
        idx = torch.randperm(len(features), generator=generator, device=features.device)[:n_centers]
        return cls(features[idx], noise_var, learn_centers, offset)


class GaussianNoiseCritic(_HoldsChannel):
    """Critic for ``I(U; U + eps)``, ``eps ~ N(0, sigma^2 I)`` with known sigma^2.

    ``T(u, v) = (u . v - ||u||^2 / 2) / sigma^2 + q(v)``,
    ``q(v) = -sum_k P_k v_k^2 / 2 + b . v + f(v)``

    with learnable ``0 <= P_k <= 1 / sigma^2``, ``b`` and an MLP f. The optimal
    DV critic for this pair is ``log p(v | u) - log p(v) + c``, which is exactly
    the first term plus a function of v alone, ``-||v||^2 / (2 sigma^2) - log p(v)``:
    q learns it. Were p(v) Gaussian with diagonal covariance C and mean m, q
    would be ``-sum_k (1/sigma^2 - 1/C_k) v_k^2 / 2 - (m_k / C_k) v_k``; P and b
    start there, from the first training batch's statistics (never an evaluation batch).

    Why this form (our choice; the paper's AA-MINE critic is an MLP,
    :class:`ConcatCritic`): the noise is ours, so its law is known; the only
    unknown is the density of v. All ``batch^2`` pairs cost one matrix
    product. And when a layer is trained to *minimise* the estimate, u enters
    only through the exact Gaussian term, so the layer cannot drive the bound
    to -inf by exploiting a fixed critic's behaviour in u (it can only make
    ``F_i(x)`` of different x closer, i.e. compress).

    Args:
        dim: size of u and v ``(batch, dim)``.
        noise_var: sigma^2 (> 0), or the :class:`~layerib.mi.channel.GaussianChannel` to hold.
        hidden: width of the MLP f.
        standardize_f: feed f ``(v - mean) / std`` of the first training batch instead of
            the raw v, whose scale is sigma (False: the trainer's pinned behaviour).

    Raises:
        ConfigError: ``noise_var`` not finite and > 0.

    Example:
        >>> c = GaussianNoiseCritic(2, noise_var=1.0, hidden=8)
        >>> c.pair_scores(torch.zeros(4, 2), torch.ones(5, 2)).shape
        torch.Size([4, 5])
    """

    def __init__(self, dim: int, noise_var: float | GaussianChannel = 1.0, hidden: int = 256,
                 standardize_f: bool = False):
        super().__init__()
        self.channel = _channel(noise_var)
        self.quad_logit = nn.Parameter(torch.zeros(dim))
        self.lin = nn.Parameter(torch.zeros(dim))
        self.register_buffer("initialised", torch.tensor(False))
        self.standardize_f = standardize_f
        self.register_buffer("f_shift", torch.zeros(dim), persistent=False)
        self.register_buffer("f_scale", torch.ones(dim), persistent=False)
        self.f = _mlp([dim, hidden, 1])

    @torch.no_grad()
    def initialise(self, v: torch.Tensor) -> None:
        """Start P and b at the Gaussian fit of ``v`` ``(batch, dim)`` (a training batch).

        Called by :meth:`v_term` on the first *training* batch (module in train mode, grad
        enabled); an evaluation batch never initialises, so evaluating before training
        leaves the training unchanged. With ``standardize_f`` the MLP f also sees
        ``(v - mean) / std`` of this batch (its input is then of scale 1 whatever sigma is).
        """
        s = float(self.scale)
        var = v.var(0).clamp_min(1e-12) if len(v) > 1 else torch.full_like(v[0], 1.0 / s)
        frac = (1.0 - 1.0 / (s * var)).clamp(0.01, 0.99)
        self.quad_logit.copy_(torch.log(frac / (1 - frac)))
        self.lin.copy_(-v.mean(0) / var)
        if self.standardize_f:
            self.f_shift.copy_(v.mean(0))
            self.f_scale.copy_(var.sqrt())
        self.initialised.fill_(True)

    def v_term(self, v: torch.Tensor) -> torch.Tensor:
        """q(v): the part of the score that depends on v alone, ``(batch,)``."""
        if (not bool(self.initialised) and self.training and torch.is_grad_enabled()
                and not torch.is_inference_mode_enabled()):
            self.initialise(v.detach())
        p = self.scale * torch.sigmoid(self.quad_logit)
        f_in = (v - self.f_shift) / self.f_scale if self.standardize_f else v
        return -0.5 * (v.pow(2) * p).sum(-1) + v @ self.lin + self.f(f_in).squeeze(-1)

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs: ``(batch,)``."""
        return self.channel.scores(u, v) + self.v_term(v)

    def gauss_pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The exact Gaussian part of the scores on all pairs, without q(v): ``(batch_u, batch_v)``.

        ``(u_k . v_j - ||u_k||^2 / 2) / sigma^2``. Normalising each column ``j`` over
        ``k`` (InfoNCE over u) gives the same bound as :meth:`pair_scores`, since
        q(v_j) is constant in each column; it skips the MLP.
        """
        return self.channel.pair_scores(u, v)

    def pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Scores on all pairs: ``(batch_u, batch_v)``."""
        return self.gauss_pair_scores(u, v) + self.v_term(v).unsqueeze(0)
