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
      (the bound's exact-marginal variant, ``Bound.exact``: ``dv`` -> ``dv_known``,
      ``infonce`` -> ``infonce_known``).

The bound is a :class:`~layerib.mi.bounds.Bound` from :data:`~layerib.mi.bounds.BOUNDS`; the
estimator forms the scores the bound asks for (``Bound.pairs``) and never branches on its name.
"""

from __future__ import annotations

import torch
from torch import nn

from layerib.errors import ConfigError
from layerib.mi.bounds import BOUND_NAMES, Bound, Scores, get_bound
from layerib.mi.mine import MovingAverageLogMeanExp, mine_surrogate

__all__ = ["MIEstimator", "derangement", "BOUND_NAMES", "MARGINAL_NAMES"]

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
        bound: a name in :data:`~layerib.mi.bounds.BOUNDS` (``"dv"``: MINE, ``"nwj"``:
            MINE-f, ``"infonce"``, ...) or a :class:`~layerib.mi.bounds.Bound`.
        marginal: ``"shuffle"``, ``"all"`` or ``"exact"`` (see module doc).
        ema_rate: MINE's moving-average rate for the training gradient of bounds that train
            with it (``Bound.mine``: DV); None trains on the plain bound.
        prior: ``(num_classes,)`` class probabilities, required for ``"exact"``.
        infonce_over: for all-pairs-matrix bounds (InfoNCE), normalise each ``v_j`` over
            the batch's u (``"u"``) or each ``u_k`` over the batch's v (``"v"``, the usual
            form). Both are lower bounds <= ln B; ``"u"`` cancels every critic term that
            depends on v alone.

    Attributes:
        bound: the bound's name as given (``"dv"``), for messages and results.
        spec: the :class:`~layerib.mi.bounds.Bound` applied (the exact-marginal variant
            with ``marginal="exact"``).

    Raises:
        ConfigError: unknown bound or marginal, or an invalid combination.

    Example:
        >>> from layerib.mi.critics import SeparableCritic
        >>> est = MIEstimator(SeparableCritic(2, 2, 8), bound="infonce")
        >>> est.value(torch.randn(16, 2), torch.randn(16, 2)).shape
        torch.Size([])
    """

    def __init__(self, critic: nn.Module, bound: str | Bound = "dv", marginal: str = "all",
                 ema_rate: float | None = 0.01, prior: torch.Tensor | None = None,
                 infonce_over: str = "v"):
        super().__init__()
        spec = bound if isinstance(bound, Bound) else get_bound(bound)
        if marginal not in MARGINAL_NAMES:
            raise ConfigError(f"unknown marginal {marginal!r}; choose one of {MARGINAL_NAMES}")
        if marginal == "exact":
            if prior is None or spec.exact is None:
                raise ConfigError("marginal='exact' needs a bound with an exact-marginal variant "
                                  f"({', '.join(n for n in BOUND_NAMES if get_bound(n).exact)}) "
                                  "and a class prior")
            spec = get_bound(spec.exact)
        elif spec.pairs == "classes":
            raise ConfigError(f"bound {spec.name!r} takes the class marginal exactly; set marginal='exact'")
        if spec.pairs == "matrix" and marginal != "all":
            raise ConfigError(f"bound {spec.name!r} uses all pairs of the batch; set marginal='all'")
        self.critic, self.spec, self.marginal = critic, spec, marginal
        self.bound = bound if isinstance(bound, str) else bound.name
        self.infonce_over = infonce_over
        self.ema = MovingAverageLogMeanExp(ema_rate) if (spec.mine and ema_rate) else None
        self.register_buffer("prior", prior if prior is not None else torch.ones(0))

    def get_extra_state(self) -> dict:
        """MINE's moving average, so that ``state_dict()`` holds all of the estimator's state."""
        return {"ema": self.ema.state_dict() if self.ema is not None else None}

    def set_extra_state(self, state: dict) -> None:
        if self.ema is not None and state.get("ema") is not None:
            self.ema.load_state_dict(state["ema"])

    def _matrix(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        p = self.critic.pair_scores(u, v)
        return p.T if self.infonce_over == "u" and self.spec.pairs == "matrix" else p

    def all_pair_scores(self, u: torch.Tensor, v: torch.Tensor) -> Scores:
        """Scores on every pair of the batch: the matrix (rows normalised as the bound asks),
        its diagonal as joint scores and its off-diagonal ``(batch * (batch - 1),)`` as
        marginal scores (for held-out terms, whatever pairs training used)."""
        p = self._matrix(u, v)
        return Scores(p.diagonal(), marginal=_off_diagonal(p), matrix=p)

    def batch_scores(self, u: torch.Tensor, v: torch.Tensor) -> Scores:
        """The :class:`~layerib.mi.bounds.Scores` of this batch that :attr:`spec` reads.

        ``"exact"``: every class's scores ``(batch, num_classes)``; ``"all"``: the all-pairs
        matrix (and its off-diagonal ``(batch * (batch - 1),)`` as marginal scores);
        ``"shuffle"``: one derangement of v as marginal pairs ``(batch,)``.
        """
        if self.marginal == "exact":
            classes = self.critic.class_scores(u)
            return Scores(classes.gather(1, v.unsqueeze(1)).squeeze(1), classes=classes,
                          prior=self.prior)
        if self.marginal == "all":
            p = self._matrix(u, v)
            if self.spec.pairs == "matrix":
                return Scores(p.diagonal(), matrix=p)
            return Scores(p.diagonal(), marginal=_off_diagonal(p), matrix=p)
        return Scores(self.critic.scores(u, v),
                      marginal=self.critic.scores(u, v[derangement(v.shape[0], v.device)]))

    def value(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """The plain bound on this batch (nats), shape ``()``; differentiable."""
        return self.spec.batch(self.batch_scores(u, v))

    def row_terms(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Per-row terms ``(batch,)`` of the bound on this batch; their mean is the bound (nats).

        Marginal ``"shuffle"`` is reported on all off-diagonal pairs (same bound, less variance).
        """
        if self.marginal == "exact":
            return self.spec.rows(self.batch_scores(u, v))
        p = self._matrix(u, v)
        return self.spec.rows(Scores(p.diagonal(), matrix=p))

    def objective(self, u: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(surrogate to maximise, plain bound value)`` on this batch.

        For DV with an EMA, the surrogate's gradient is MINE's corrected gradient; for a bound
        with its own training surrogate (``Bound.train``), that; otherwise the bound itself.
        """
        s = self.batch_scores(u, v)
        value = self.spec.batch(s)
        if self.ema is not None:
            return mine_surrogate(s.joint, self.spec.marginal_term(s), self.ema), value
        return (value if self.spec.train is None else self.spec.train(s)), value
