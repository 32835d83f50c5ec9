"""MI estimators: a critic, a bound, a way of forming marginal pairs, and MINE's EMA.

An :class:`MIEstimator` turns a batch of joint samples ``(u, v)`` into critic
scores on joint and marginal pairs and applies a bound from
:mod:`layerib.mi.bounds`. ``value`` is the plain bound (what is reported);
``objective`` is what a critic maximises while training (for ``dv`` with an
EMA rate, MINE's bias-corrected surrogate, Belghazi et al. 2018, Sec. 3.2).

Marginal pairs (``marginal=``):
    * ``"shuffle"``: one random derangement of v within the batch (the paper's
      MINE, without fixed points: :func:`derangement`), ``batch`` marginal pairs.
    * ``"all"``: every off-diagonal pair ``(u_k, v_j), j != k``,
      ``batch * (batch - 1)`` pairs from the same forward passes; lower variance.
    * ``"exact"``: for a :class:`~layerib.mi.critics.LabelCritic` with a known
      class prior, the expectation over v is taken exactly over the classes
      (with ``bound="infonce"``, per sample: :func:`bounds.infonce_known_marginal`).
"""

from __future__ import annotations


import torch
from torch import nn

from layerib.mi import bounds
from layerib.mi.mine import MovingAverageLogMeanExp, mine_surrogate

BOUND_NAMES = ("dv", "nwj", "infonce")
MARGINAL_NAMES = ("shuffle", "all", "exact")


def _off_diagonal(p: torch.Tensor) -> torch.Tensor:
    b = p.shape[0]
    return p.masked_select(~torch.eye(b, dtype=torch.bool, device=p.device))


def derangement(n: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation of ``range(n)`` with no fixed point, ``(n,)`` int64 (n >= 2).

    A uniformly random cyclic order ``q`` and ``perm[q_k] = q_{k-1}``: one n-cycle, so no
    row is paired with itself (a plain shuffle keeps about one joint pair per batch and
    counts it as a marginal one). Uses one :func:`torch.randperm` draw.
    """
    q = torch.randperm(n, device=device, generator=generator)
    perm = torch.empty_like(q)
    perm[q] = q.roll(1)
    return perm if n > 1 else q


class MIEstimator(nn.Module):
    """Neural MI estimator ``I(U; V)`` in nats from batches of joint samples.

    Args:
        critic: module with ``scores(u, v) -> (batch,)`` and
            ``pair_scores(u, v) -> (batch, batch)`` (and ``class_scores`` for
            ``marginal="exact"``).
        bound: ``"dv"`` (MINE), ``"nwj"`` (MINE-f) or ``"infonce"``.
        marginal: ``"shuffle"``, ``"all"`` or ``"exact"`` (see module doc).
        ema_rate: MINE's moving-average rate for the ``dv`` training gradient;
            None trains on the plain DV bound.
        prior: ``(num_classes,)`` class probabilities, required for ``"exact"``.
        infonce_over: for InfoNCE, normalise each ``v_j`` over the batch's u
            (``"u"``) or each ``u_k`` over the batch's v (``"v"``, the usual
            form). Both are lower bounds <= ln B; ``"u"`` cancels every critic
            term that depends on v alone.

    Raises:
        ValueError: unknown bound or marginal, or an invalid combination.
    """

    def __init__(self, critic: nn.Module, bound: str = "dv", marginal: str = "all",
                 ema_rate: float | None = 0.01, prior: torch.Tensor | None = None,
                 infonce_over: str = "v"):
        super().__init__()
        if bound not in BOUND_NAMES:
            raise ValueError(f"unknown bound {bound!r}; choose one of {BOUND_NAMES}")
        if marginal not in MARGINAL_NAMES:
            raise ValueError(f"unknown marginal {marginal!r}; choose one of {MARGINAL_NAMES}")
        if marginal == "exact" and (prior is None or bound == "nwj"):
            raise ValueError("marginal='exact' needs bound 'dv' or 'infonce' and a class prior")
        if bound == "infonce" and marginal not in ("all", "exact"):
            raise ValueError("InfoNCE uses all pairs of the batch; set marginal='all'")
        self.critic, self.bound, self.marginal = critic, bound, marginal
        self.infonce_over = infonce_over
        self.ema = MovingAverageLogMeanExp(ema_rate) if (bound == "dv" and ema_rate) else None
        self.register_buffer("prior", prior if prior is not None else torch.ones(0))

    def get_extra_state(self) -> dict:
        """MINE's moving average, so that ``state_dict()`` holds all of the estimator's state."""
        return {"ema": self.ema.state_dict() if self.ema is not None else None}

    def set_extra_state(self, state: dict) -> None:
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])

    def scores(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Critic scores ``(joint (batch,), marginal (...))`` for the chosen marginal.

        For ``"exact"`` the marginal scores are ``T(u_k, c) + log(C prior_c)``,
        shape ``(batch, num_classes)``; for ``"all"``, ``(batch * (batch - 1),)``.
        """
        if self.marginal == "exact":
            all_scores = self.critic.class_scores(u)
            joint = all_scores.gather(1, v.unsqueeze(1)).squeeze(1)
            # mean over (batch, C) of exp(T + log(C p_c)) = (1/B) sum_k sum_c p_c exp T(u_k, c)
            c = all_scores.shape[1]
            return joint, all_scores + torch.log(c * self.prior.clamp_min(1e-30))
        if self.marginal == "all":
            p = self.critic.pair_scores(u, v)
            return p.diagonal(), _off_diagonal(p)
        return self.critic.scores(u, v), self.critic.scores(u, v[derangement(v.shape[0], v.device)])

    def value(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The plain bound on this batch (nats), shape ``()``; differentiable."""
        if self.bound == "infonce" and self.marginal == "exact":
            all_scores = self.critic.class_scores(u)
            joint = all_scores.gather(1, v.unsqueeze(1)).squeeze(1)
            return bounds.infonce_known_marginal(joint, all_scores, self.prior)
        if self.bound == "infonce":
            p = self.critic.pair_scores(u, v)
            return bounds.infonce_bound(p.T if self.infonce_over == "u" else p)
        joint, marg = self.scores(u, v)
        return bounds.BOUNDS[self.bound](joint, marg)

    def objective(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(surrogate to maximise, plain bound value)`` on this batch.

        For ``dv`` with an EMA, the surrogate's gradient is MINE's corrected
        gradient; otherwise the surrogate is the bound itself.
        """
        if self.bound == "infonce" or self.ema is None:
            v_ = self.value(u, v)
            return v_, v_
        joint, marg = self.scores(u, v)
        return mine_surrogate(joint, marg, self.ema), bounds.dv_bound(joint, marg)
