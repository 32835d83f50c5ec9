"""Variational lower bounds on mutual information, as pure functions of critic scores.

All values are in nats. ``joint`` holds critic scores T(u_k, v_k) on pairs drawn
from the joint distribution, shape ``(batch,)``; ``marginal`` holds scores on
pairs drawn from the product of marginals, any shape (flattened; e.g.
``(batch,)`` for one shuffle or ``(batch, batch - 1)`` for all off-diagonal
pairs). Every log-mean-exp goes through :func:`torch.logsumexp`, so scores of
+-1e4 give finite values; a NaN score propagates, and the critic fitting reports it
(:func:`layerib.mi.protocol.check_finite` raises :class:`~layerib.errors.NumericalError`).

Besides the pure functions, every bound is a :class:`Bound` spec in the registry
:data:`BOUNDS`: its batch value, its per-row terms (for held-out averaging with a
standard error), whether it is capped at ``ln B``, which critic scores it needs, and
the exact-marginal variant it turns into when the class marginal is known. This
module is the only place bound maths lives: the estimators, the held-out
evaluation and the CLI look names up in :data:`BOUNDS`.

Sources:
    * DV: Donsker & Varadhan (1983); MINE, Belghazi et al., ICML 2018, Eq. 2
      (Elad et al. 2019, Eq. 6).
    * NWJ: Nguyen, Wainwright & Jordan (2010); "MINE-f" in Belghazi et al.
    * InfoNCE: van den Oord et al. (2018); Poole et al., ICML 2019, Eq. 12.
    * SMILE: Song & Ermon, "Understanding the limitations of variational mutual
      information estimators", ICLR 2020, Eq. 17.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch
import torch.nn.functional as F

from layerib.errors import ConfigError


def log_mean_exp(scores: torch.Tensor) -> torch.Tensor:
    """``log(mean(exp(scores)))`` over all elements, computed stably. Shape ``()``."""
    flat = scores.reshape(-1)
    return torch.logsumexp(flat, dim=0) - math.log(flat.numel())


def dv_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan bound ``E_joint[T] - log E_marg[exp T]`` (nats), shape ``()``.

    A constant critic gives exactly 0.

    Example:
        >>> float(dv_bound(torch.zeros(4), torch.zeros(4, 3)))
        0.0
    """
    return joint.mean() - log_mean_exp(marginal)


def nwj_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """NWJ (f-divergence, "MINE-f") bound ``E_joint[T] - E_marg[exp(T - 1)]`` (nats).

    Always <= the DV bound on the same scores. The exponential is evaluated as
    ``exp(log_mean_exp(T) - 1)``, which is finite unless the bound itself is
    ``-inf`` (scores of +1e4 on marginal pairs give ``-inf``: a correct value).
    """
    return joint.mean() - torch.exp(log_mean_exp(marginal) - 1.0)


def infonce_bound(scores: torch.Tensor) -> torch.Tensor:
    """InfoNCE bound from a score matrix ``(batch, batch)`` with joint pairs on the diagonal.

    ``I >= mean_k [ T_kk - log (1/B) sum_j T_kj ]`` (nats); never above ``ln B``.
    """
    b = scores.shape[0]
    return (scores.diagonal() - torch.logsumexp(scores, dim=1)).mean() + math.log(b)


#: SMILE's clipping threshold tau (nats of score): their code's default ``clip=5``.
SMILE_TAU = 5.0


def smile_bound(joint: torch.Tensor, marginal: torch.Tensor, tau: float = SMILE_TAU) -> torch.Tensor:
    """SMILE ``E_joint[T] - log E_marg[clip(exp T, exp(-tau), exp(tau))]`` (nats), shape ``()``.

    Song & Ermon, ICLR 2020, Eq. 17: the DV bound with the critic's scores on marginal pairs
    clipped to ``[-tau, tau]``, which bounds the variance of the marginal term (DV's grows
    like ``exp(I)``). Equals :func:`dv_bound` when every marginal score is within
    ``[-tau, tau]``; not a lower bound in general (the clipping can only lower the marginal
    term when scores exceed tau), but close to one for tau >= 5.

    Example:
        >>> float(smile_bound(torch.zeros(2), torch.full((4,), 9.0)))
        -5.0
    """
    return dv_bound(joint, marginal.clamp(-tau, tau))


def _smile_train(s: Scores) -> torch.Tensor:
    """SMILE's training surrogate, as in the authors' code: the value of SMILE with the
    gradient of the Jensen-Shannon (f-GAN) bound
    ``-E_joint[softplus(-T)] - E_marg[softplus(T)]`` (Poole et al. 2019, Eq. 15)."""
    js = -F.softplus(-s.joint).mean() - F.softplus(s.marginal).mean()
    return js + (smile_bound(s.joint, s.marginal) - js).detach()


def _class_marginal(all_scores: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """``T(u_k, c) + log(C prior_c)``, ``(batch, C)``: their mean of ``exp`` over
    ``(batch, C)`` is ``(1/B) sum_k sum_c prior_c exp T(u_k, c)``."""
    return all_scores + torch.log(all_scores.shape[1] * prior.clamp_min(1e-30))


def dv_known_marginal(joint: torch.Tensor, all_scores: torch.Tensor,
                      prior: torch.Tensor) -> torch.Tensor:
    """DV bound for a discrete V whose marginal ``prior`` is known exactly.

    The marginal expectation ``E_{u ~ P_U, v ~ P_V}[exp T(u, v)]`` is taken over
    the batch for u and exactly over the classes for v:
    ``log( (1/B) sum_k sum_c prior_c exp T(u_k, c) )``.

    Args:
        joint: ``(batch,)`` scores T(u_k, v_k).
        all_scores: ``(batch, num_classes)`` scores T(u_k, c) for every class c.
        prior: ``(num_classes,)`` class probabilities, summing to 1.
    """
    return dv_bound(joint, _class_marginal(all_scores, prior))


def infonce_known_marginal(joint: torch.Tensor, all_scores: torch.Tensor,
                           prior: torch.Tensor) -> torch.Tensor:
    """Per-sample normalised bound for a discrete V with known marginal ``prior`` (nats).

    ``mean_k [ T(u_k, v_k) - log sum_c prior_c exp T(u_k, c) ]``: the InfoNCE
    form with the exact class marginal in place of in-batch negatives, which
    is the Barber-Agakov bound ``H(V) - CE`` for the classifier
    ``q(c | u) = prior_c exp T(u, c) / sum_c' prior_c' exp T(u, c')``. A lower
    bound on I(U; V) that never exceeds ``-sum_c prior_c log prior_c`` of the
    joint sample (H(Y) = ln 10 for balanced classes).
    """
    return _infonce_known_terms(joint, all_scores, prior).mean()


# ---- per-row terms: the first-order (Hajek / delta-method) projection of each bound ----

def _dv_terms(joint: torch.Tensor, p: torch.Tensor, nwj: bool) -> torch.Tensor:
    """DV (or NWJ) on all pairs of ``p`` ``(B, B)``: ``psi_k = T_kk - log M - 2 (h_k - M) / M``
    (NWJ: ``T_kk - (M + 2 (h_k - M)) / e``), ``M = mean_{j != k} exp T_kj``, ``h_k`` the mean
    of ``(exp T_kj + exp T_jk) / 2`` over ``j != k`` (the U-statistic's projection)."""
    b = p.shape[0]
    off = ~torch.eye(b, dtype=torch.bool, device=p.device)
    c = p.masked_select(off).max()
    # exp(T - c), 0 on the diagonal: masked before exp, since a joint score far above every
    # marginal one (high MI, small noise) overflows, and inf * 0 would be NaN
    e = torch.exp((p - c).masked_fill(~off, -math.inf))
    m = e.sum() / (b * (b - 1))
    h = (e.sum(1) + e.sum(0)) / (2 * (b - 1))
    if nwj:
        scale = torch.exp(c - 1.0)
        return joint - scale * (m + 2 * (h - m))
    return joint - (torch.log(m) + c) - 2 * (h - m) / m


def _infonce_terms(p: torch.Tensor) -> torch.Tensor:
    """InfoNCE on ``p`` ``(B, B)``: ``psi_k = T_kk - logsumexp_j T_kj + ln B - (sum_i w_ik - 1)``,
    ``w_ik`` the softmax weight of pair ``(i, k)`` in row i."""
    lse = torch.logsumexp(p, dim=1)
    w = torch.exp(p - lse[:, None])
    return p.diagonal() - lse + math.log(p.shape[0]) - (w.sum(0) - 1.0)


def _infonce_known_terms(joint: torch.Tensor, all_scores: torch.Tensor,
                         prior: torch.Tensor) -> torch.Tensor:
    """Exact-marginal InfoNCE: per row already, ``T_kk - log sum_c p_c exp T(u_k, c)``."""
    return joint - torch.logsumexp(all_scores + torch.log(prior.clamp_min(1e-30)), dim=1)


def _dv_known_terms(joint: torch.Tensor, all_scores: torch.Tensor,
                    prior: torch.Tensor) -> torch.Tensor:
    """Exact-marginal DV: ``T_kk - log M - (m_k - M) / M``, ``m_k = sum_c p_c exp T(u_k, c)``."""
    log_m = torch.logsumexp(all_scores + torch.log(prior.clamp_min(1e-30)), dim=1)
    c = log_m.max()
    m_k = torch.exp(log_m - c)
    m = m_k.mean()
    return joint - (torch.log(m) + c) - (m_k - m) / m


# ---- the bounds as specs ----

class Scores(NamedTuple):
    """The critic scores of one batch that a :class:`Bound` reads (which ones: ``Bound.pairs``).

    Attributes:
        joint: ``(B,)`` scores ``T(u_k, v_k)`` on the joint pairs.
        marginal: scores on marginal pairs, any shape (``pairs == "marginal"``).
        matrix: ``(B, B)`` scores on all pairs, joint pairs on the diagonal, each row
            normalised by InfoNCE (``pairs == "matrix"``; per-row terms of every
            ``"marginal"`` bound also read it).
        classes: ``(B, C)`` scores ``T(u_k, c)`` for every class (``pairs == "classes"``).
        prior: ``(C,)`` class probabilities (``pairs == "classes"``).
    """

    joint: torch.Tensor
    marginal: torch.Tensor | None = None
    matrix: torch.Tensor | None = None
    classes: torch.Tensor | None = None
    prior: torch.Tensor | None = None


@dataclass(frozen=True)
class Bound:
    """One variational lower bound on I(U; V) in nats, as a spec the estimators read.

    Attributes:
        name: the registry key.
        batch: ``Scores -> ()``: the bound's value on one batch (differentiable).
        rows: ``Scores -> (B,)``: per-row terms whose mean is :attr:`batch` on the same batch
            (from ``matrix`` for ``"marginal"`` / ``"matrix"`` bounds), for a held-out value
            with a standard error over rows.
        pairs: the scores it needs: ``"marginal"`` (joint and marginal pairs: one shuffle
            or all off-diagonal pairs), ``"matrix"`` (the square all-pairs matrix) or
            ``"classes"`` (every class's score and the class prior: exact marginal).
        capped_at_ln_b: the value can never exceed ``ln B`` (McAllester & Stratos 2020).
        exact: the name of this bound's exact-class-marginal variant (None: none).
        marginal_term: ``Scores -> marginal scores`` whose ``exp`` the bound averages over
            the marginal pairs (DV family); the held-out evaluation counts the effective
            number of marginal pairs on them. None: a bound normalised per row.
        mine: train with MINE's bias-corrected gradient (:mod:`layerib.mi.mine`), a moving
            average of ``exp`` of :attr:`marginal_term` (DV).
        train: ``Scores -> ()``, a training surrogate other than the value (its gradient is
            what the critic follows); None: the critic maximises :attr:`batch`.
        doc: one line for help texts.

    Example:
        >>> b = BOUNDS["dv"]
        >>> float(b.batch(Scores(torch.zeros(3), marginal=torch.zeros(6))))
        0.0
    """

    name: str
    batch: Callable[[Scores], torch.Tensor]
    rows: Callable[[Scores], torch.Tensor]
    pairs: str
    capped_at_ln_b: bool = False
    exact: str | None = None
    marginal_term: Callable[[Scores], torch.Tensor] | None = None
    mine: bool = False
    train: Callable[[Scores], torch.Tensor] | None = None
    doc: str = ""


#: Every bound by name (the CLI's ``--bounds``, ``estimate_mi``'s candidates and training's
#: ``y_bound`` / ``x_bound`` read this). A new bound is one entry here.
BOUNDS: dict[str, Bound] = {b.name: b for b in (
    Bound("dv", lambda s: dv_bound(s.joint, s.marginal),
          lambda s: _dv_terms(s.joint, s.matrix, nwj=False), "marginal", exact="dv_known",
          marginal_term=lambda s: s.marginal, mine=True,
          doc="Donsker-Varadhan (MINE; trained with its moving-average gradient)"),
    Bound("nwj", lambda s: nwj_bound(s.joint, s.marginal),
          lambda s: _dv_terms(s.joint, s.matrix, nwj=True), "marginal",
          marginal_term=lambda s: s.marginal, doc="Nguyen-Wainwright-Jordan (MINE-f)"),
    Bound("infonce", lambda s: infonce_bound(s.matrix), lambda s: _infonce_terms(s.matrix),
          "matrix", capped_at_ln_b=True, exact="infonce_known",
          doc="InfoNCE (van den Oord et al. 2018), at most ln B"),
    Bound("smile", lambda s: smile_bound(s.joint, s.marginal),
          lambda s: _dv_terms(s.joint, s.matrix.clamp(-SMILE_TAU, SMILE_TAU), nwj=False),
          "marginal", marginal_term=lambda s: s.marginal.clamp(-SMILE_TAU, SMILE_TAU),
          train=_smile_train, doc="SMILE: DV with marginal scores clipped to [-5, 5] (Song & Ermon 2020)"),
    Bound("dv_known", lambda s: dv_known_marginal(s.joint, s.classes, s.prior),
          lambda s: _dv_known_terms(s.joint, s.classes, s.prior), "classes",
          marginal_term=lambda s: _class_marginal(s.classes, s.prior), mine=True,
          doc="DV with the exact class marginal (labels)"),
    Bound("infonce_known", lambda s: infonce_known_marginal(s.joint, s.classes, s.prior),
          lambda s: _infonce_known_terms(s.joint, s.classes, s.prior), "classes",
          doc="InfoNCE with the exact class marginal = Barber-Agakov H(Y) - CE (labels)"),
)}

#: The bounds a user names (``dv``, ``nwj``, ...): all but the exact-marginal variants, which
#: an estimator picks itself when it takes the class marginal exactly.
BOUND_NAMES: tuple[str, ...] = tuple(n for n, b in BOUNDS.items() if b.pairs != "classes")


def get_bound(name: str) -> Bound:
    """The :class:`Bound` registered as ``name``.

    Raises:
        ConfigError: ``name`` is not in :data:`BOUNDS` (the message lists the choices).

    Example:
        >>> get_bound("infonce").capped_at_ln_b
        True
    """
    if name not in BOUNDS:
        raise ConfigError(f"unknown bound {name!r}; choose from {', '.join(BOUND_NAMES)}")
    return BOUNDS[name]
