"""Variational lower bounds on mutual information, as pure functions of critic scores.

All values are in nats. ``joint`` holds critic scores T(u_k, v_k) on pairs drawn
from the joint distribution, shape ``(batch,)``; ``marginal`` holds scores on
pairs drawn from the product of marginals, any shape (flattened; e.g.
``(batch,)`` for one shuffle or ``(batch, batch - 1)`` for all off-diagonal
pairs). Every log-mean-exp goes through :func:`torch.logsumexp`, so scores of
+-1e4 give finite values; a NaN score propagates, and the critic fitting reports it
(:func:`layerib.mi.protocol.check_finite` raises :class:`~layerib.errors.NumericalError`).

Sources:
    * DV: Donsker & Varadhan (1983); MINE, Belghazi et al., ICML 2018, Eq. 2
      (Elad et al. 2019, Eq. 6).
    * NWJ: Nguyen, Wainwright & Jordan (2010); "MINE-f" in Belghazi et al.
    * InfoNCE: van den Oord et al. (2018); Poole et al., ICML 2019, Eq. 12.
"""

from __future__ import annotations

import math

import torch


def log_mean_exp(scores: torch.Tensor) -> torch.Tensor:
    """``log(mean(exp(scores)))`` over all elements, computed stably. Shape ``()``."""
    flat = scores.reshape(-1)
    return torch.logsumexp(flat, dim=0) - math.log(flat.numel())


def dv_bound(joint: torch.Tensor, marginal: torch.Tensor) -> torch.Tensor:
    """Donsker-Varadhan bound ``E_joint[T] - log E_marg[exp T]`` (nats), shape ``()``.

    A constant critic gives exactly 0.
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
    log_prior = torch.log(prior.clamp_min(1e-30))
    return joint.mean() - (torch.logsumexp((all_scores + log_prior).reshape(-1), 0)
                           - math.log(all_scores.shape[0]))


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
    log_prior = torch.log(prior.clamp_min(1e-30))
    return (joint - torch.logsumexp(all_scores + log_prior, dim=1)).mean()


BOUNDS = {"dv": dv_bound, "nwj": nwj_bound}
