"""Held-out values with one term per row, for standard errors over test rows (nats).

:func:`row_terms` rewrites a batch's bound as a mean of per-row terms ``psi_k`` whose
average is exactly the bound's value and whose spread gives its standard error: the
first-order (Hajek / delta-method) projection of the bound onto the rows. A row enters a
batch's bound twice, through its joint pair and through the marginal pairs it is part
of; the projection counts both, so rows can be treated as independent:

* DV, all pairs: ``psi_k = T_kk - log M - 2 (h_k - M) / M`` with
  ``M = mean_{j != k} exp T_kj`` and ``h_k`` the mean of ``(exp T_kj + exp T_jk) / 2``
  over ``j != k`` (the U-statistic's projection).
* NWJ, all pairs: ``psi_k = T_kk - (M + 2 (h_k - M)) / e``.
* InfoNCE (``over="v"``): ``psi_k = T_kk - logsumexp_j T_kj + ln B - (sum_i w_ik - 1)``,
  ``w_ik`` the softmax weight of pair ``(i, k)`` in row i.
* Label bounds with the exact class marginal: InfoNCE's terms are per row already; DV's
  are ``T_kk - log M - (m_k - M) / M``, ``m_k = sum_c p_c exp T(u_k, c)``.
"""

from __future__ import annotations

import math

import torch

from layerib.mi.estimators import MIEstimator


def _dv_terms(joint: torch.Tensor, p: torch.Tensor, nwj: bool) -> torch.Tensor:
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
    lse = torch.logsumexp(p, dim=1)
    w = torch.exp(p - lse[:, None])
    return p.diagonal() - lse + math.log(p.shape[0]) - (w.sum(0) - 1.0)


def row_terms(est: MIEstimator, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per-row terms ``(batch,)`` of ``est``'s bound on one batch; their mean is the bound (nats).

    Marginal ``"shuffle"`` is reported on all off-diagonal pairs (same bound, less variance).
    """
    if est.marginal == "exact":
        scores = est.critic.class_scores(u)
        joint = scores.gather(1, v.unsqueeze(1)).squeeze(1)
        log_prior = torch.log(est.prior.clamp_min(1e-30))
        if est.bound == "infonce":
            return joint - torch.logsumexp(scores + log_prior, dim=1)
        log_m = torch.logsumexp(scores + log_prior, dim=1)
        c = log_m.max()
        m_k = torch.exp(log_m - c)
        m = m_k.mean()
        return joint - (torch.log(m) + c) - (m_k - m) / m
    p = est.critic.pair_scores(u, v)
    if est.bound == "infonce":
        return _infonce_terms(p.T if est.infonce_over == "u" else p)
    return _dv_terms(p.diagonal(), p, nwj=est.bound == "nwj")


class RowNoise:
    """Fixed Gaussian noise ``(n, *shape)`` drawn row by row when indexed, never held whole.

    Row ``r`` is ``sd * torch.randn(shape)`` from a generator seeded with
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


@torch.no_grad()
def heldout_terms(est: MIEstimator, u: torch.Tensor, v: torch.Tensor, batch_size: int,
                  noise: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """Per-row terms ``(n,)`` over held-out rows in random (seeded) batches of ``batch_size``.

    The rows are split into ``ceil(n / B)`` near-equal random batches (every row used once).

    Args:
        est: trained estimator; u, v: ``(n, ...)`` held-out rows.
        noise: ``(n, ...)`` noise added to v (fixed, so values are comparable across calls):
            a tensor or a :class:`RowNoise`, indexed per batch.
    """
    was = est.training
    est.eval()
    n = len(u)
    g = torch.Generator(device=u.device).manual_seed(seed)
    order = torch.randperm(n, generator=g, device=u.device)
    n_batches = max(1, math.ceil(n / batch_size))
    out = torch.empty(n, dtype=torch.float64, device=u.device)
    for idx in torch.tensor_split(order, n_batches):
        vv = v[idx] if noise is None else v[idx] + noise[idx]
        out[idx] = row_terms(est, u[idx], vv).double()
    est.train(was)
    return out


@torch.no_grad()
def marginal_ess(est: MIEstimator, u: torch.Tensor, v: torch.Tensor, batch_size: int,
                 noise: torch.Tensor | None = None, seed: int = 0) -> float:
    """Effective number of marginal pairs behind a DV / NWJ value: ``(sum w)^2 / sum w^2``.

    ``w = exp T`` over the off-diagonal pairs of each held-out batch (same batches as
    :func:`heldout_terms`); the smallest over batches. When the critic's ``exp T`` is
    heavy-tailed under the marginals (high MI spread over few coordinates) one pair can
    carry the whole log-mean-exp: an ESS of 1.2 went with a DV value of 1.6 against 4.0
    nats. ``inf`` for InfoNCE and the label bounds, whose terms are normalised per row.
    """
    if est.bound == "infonce" or est.marginal == "exact":
        return math.inf
    n = len(u)
    g = torch.Generator(device=u.device).manual_seed(seed)
    order = torch.randperm(n, generator=g, device=u.device)
    worst = math.inf
    for idx in torch.tensor_split(order, max(1, math.ceil(n / batch_size))):
        vv = v[idx] if noise is None else v[idx] + noise[idx]
        p = est.critic.pair_scores(u[idx], vv).double()
        off = p.masked_select(~torch.eye(len(idx), dtype=torch.bool, device=p.device))
        w = torch.exp(off - off.max())
        worst = min(worst, float(w.sum() ** 2 / (w * w).sum()))
    return worst
