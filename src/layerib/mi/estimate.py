"""``estimate_mi(x, y)``: an MI estimate (nats) you can read on any data, with its interval and flags.

The protocol (every step seeded by ``seed``):

1. Rows are shuffled and split into test (``test_frac``) and a pool; the pool is split into
   train and validation rows, afresh for each critic restart.
2. Inputs are mapped coordinate-wise by a strictly increasing map fitted on the pool
   (:mod:`layerib.mi.transforms`; MI is unchanged): ``"copula"`` normal scores by default;
   none with ``noise_var`` (the noise has a scale), labels are left as they are.
3. Each candidate critic/bound (:data:`CANDIDATES`) is trained with early stopping on its
   validation bound (:func:`~layerib.mi.fit.fit_critic`), the best
   critic restored (the closed-form Gaussian critic instead picks its shrinkage there).
   All are lower bounds, so the candidate with the highest *validation* value (lower end
   of its 95 % interval) is chosen; its *test* value is reported. The only test-row
   statistic the choice reads is DV's effective number of marginal pairs (``min_ess``).
4. The chosen candidate is retrained ``restarts - 1`` more times (new split of the pool,
   new initialisation); ``value`` is the mean of the restarts' test values.
5. Interval (see :func:`_bias_aware`), 95 %, asymmetric: per-row terms of the test bound
   (delta method, :mod:`layerib.mi.evaluation`) give the test-row variance and the spread of
   the restarts the training variance: ``se = sqrt(se_rows^2 + s_restarts^2 / R)``. The lower
   end is ``value - 1.96 se``; since every candidate is a lower bound (biased low), the upper
   end is the largest of ``value + 1.96 se``, the chosen critic's in-sample value (on as many
   training rows as there are test rows; biased up), the best candidate's value times
   ``1 + BIAS_ALLOWANCE`` (``1 + TAIL_ALLOWANCE`` on tail-dependent pairs:
   :func:`~layerib.mi.result.shows_tail_dependence`) plus ``1.96 se``, and each reference's
   ``value + 1.96 se``.
   ``interval_method`` names the term that made it.
6. The shuffled-pairs baseline: the chosen candidate trained and tested on pairs made
   independent by one global derangement (truth 0).
7. Cheap references on the same test rows (:func:`_references`): the Gaussian-copula (CCA)
   MI (a population lower bound on the MI of copula-mapped continuous rows; used only where
   the test rows have no ties) and, in low dimension, the KSG k-NN MI
   (:mod:`layerib.mi.baselines`). A reference whose interval lies wholly above the neural
   value's rows interval is reported as ``value`` (``reported``, flag ``below_reference``;
   the neural value stays in ``value_neural``). Measured on the coverage grid
   (``benchmarks/bench_coverage.py``, ``benchmarks/results/coverage.md``).

Non-finite values never come back: a candidate that diverges (NWJ's exp on heavy tails)
is dropped with a note in ``MIResult.notes``; if every candidate diverges,
:class:`~layerib.errors.NumericalError` names the bound and the step.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields

import numpy as np
import torch

from layerib.errors import ConfigError, NumericalError
from layerib.mi.baselines import cca_reference, cca_se, ksg_reference, tail_dependence
from layerib.mi.channel import GaussianChannel, RowNoise
from layerib.mi.critics import CRITICS
from layerib.mi.estimators import derangement
from layerib.mi.evaluation import heldout_terms, marginal_ess
from layerib.mi.factory import make_estimator
from layerib.mi.fit import Validation, fit_critic
from layerib.mi.result import REFERENCE_SLACK_NATS, MIResult, shows_tail_dependence
from layerib.mi.rng import keeps_global_rng, seed_init
from layerib.mi.settings import AUTO, CANDIDATES, RECIPE_FIELDS, EstimatorSettings, settings_from_options
from layerib.mi.transforms import MarginalMap

log = logging.getLogger(__name__)

__all__ = ["estimate_mi", "EstimatorSettings", "CANDIDATES", "AUTO"]

def _as_array(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.ndim < 1 or len(a) == 0:
        raise ConfigError(f"{name} must be an (N, ...) array with N >= 1, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer) and not _all_finite(a):
        raise ConfigError(f"{name} holds non-finite values; drop or impute those rows")
    return a


#: about this many bytes of float64 per block of columns (or rows) that :class:`_Problem`
#: converts, checks and maps at a time, instead of float64 copies of whole arrays
_BLOCK_BYTES = 1 << 25


def _all_finite(a: np.ndarray) -> bool:
    """Every value finite, as ``np.isfinite(a.astype(np.float64)).all()``, block by block (a
    float value is finite exactly when its float64 is; no float64 copy of the whole array)."""
    if a.dtype.kind != "f":
        return bool(np.isfinite(a.astype(np.float64)).all())
    flat = a.reshape(len(a), -1)
    step = max(1, _BLOCK_BYTES // max(1, 8 * flat.shape[1]))
    return all(bool(np.isfinite(flat[s:s + step]).all()) for s in range(0, len(flat), step))


def _column_blocks(d: int, n: int) -> list[tuple[int, int]]:
    """``[c0, c1)`` blocks of ``d`` columns, about ``_BLOCK_BYTES`` of float64 for ``n`` rows each;
    never a one-column block unless ``d == 1`` (a reduction over a single column may take
    another summation order than over a block of them)."""
    w = max(2, _BLOCK_BYTES // max(1, 8 * n))
    cuts = list(range(0, d, w))
    if len(cuts) > 1 and d - cuts[-1] == 1:
        cuts.pop()
    return [(c0, c1) for c0, c1 in zip(cuts, cuts[1:] + [d])]


def _columns(parts: list[np.ndarray], c0: int, c1: int) -> np.ndarray:
    """Columns ``c0:c1`` of the rows of ``parts`` (each ``(n_k, d)``) stacked, as float64: the
    same values as those columns of ``np.concatenate(parts).astype(np.float64)``."""
    return np.concatenate([p[:, c0:c1] for p in parts]).astype(np.float64)


def _nonconstant(parts: list[np.ndarray], n: int, rows: np.ndarray) -> np.ndarray:
    """``(d,)`` bool: ``std > 0`` over ``rows`` of each column of the stacked float64 ``parts``."""
    d = parts[0].shape[1]
    keep = np.empty(d, dtype=bool)
    for c0, c1 in _column_blocks(d, n):
        keep[c0:c1] = _columns(parts, c0, c1)[rows].std(0) > 0
    return keep


def _mapped_blocks(parts: list[np.ndarray], n: int, keep: np.ndarray, rows: np.ndarray,
                   kind: str):
    """Per block of columns: ``(j, kc, c0, c1, fx, m)``, ``m`` = ``fx(a)`` (float64) for ``a``
    the kept columns ``kc`` of ``c0:c1`` of the stacked float64 ``parts``, ``fx`` their
    ``MarginalMap`` fitted on ``rows`` (the map is per coordinate, so each block's map is the
    whole map's on those columns), ``j`` the first output column of the block."""
    j = 0
    for c0, c1 in _column_blocks(parts[0].shape[1], n):
        kc = keep[c0:c1]
        if not kc.any():
            continue
        a = _columns(parts, c0, c1)[:, kc]
        fx = MarginalMap(a[rows], kind)
        yield j, kc, c0, c1, fx, fx(a)
        j += a.shape[1]


def _mapped(parts: list[np.ndarray], n: int, keep: np.ndarray, rows: np.ndarray, kind: str,
            also: list[np.ndarray] | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``MarginalMap(a[rows], kind)(a)`` as float32, ``a`` the stacked float64 ``parts`` with the
    columns ``keep``, block by block (:func:`_mapped_blocks`). ``also``: rows of the same shape
    mapped by the same map (``fy = fx``), returned second."""
    k = int(keep.sum())
    out = torch.empty((n, k), dtype=torch.float32)
    out2 = None if also is None else torch.empty((n, k), dtype=torch.float32)
    for j, kc, c0, c1, fx, m in _mapped_blocks(parts, n, keep, rows, kind):
        out[:, j:j + m.shape[1]] = torch.as_tensor(m, dtype=torch.float32)
        if also is not None:
            out2[:, j:j + m.shape[1]] = torch.as_tensor(fx(_columns(also, c0, c1)[:, kc]),
                                                        dtype=torch.float32)
    return out, out2


@dataclass
class _Run:
    name: str
    val: float             # validation bound (nats)
    val_se: float          # its standard error over validation rows
    terms: torch.Tensor    # (n_test,) per-row test terms
    steps: int
    ess: float = math.inf  # smallest effective number of marginal pairs (validation, test)
    train: float = math.nan  # the same bound on the rows the critic was fitted on (biased up)

    @property
    def val_low(self) -> float:
        """The selection score: lower end of the validation value's 95 % interval."""
        return self.val - 1.96 * self.val_se

    @property
    def test(self) -> float:
        return float(self.terms.mean())


def _mapped_in_place(parts: list[np.ndarray], n: int, keep: np.ndarray, rows: np.ndarray,
                     kind: str) -> "_StackedRows":
    """:func:`_mapped` written over ``parts`` (float32, each ``(n_k, d)``): block by block, the
    mapped kept columns of each part overwrite its first columns (left of the block being
    mapped, whose float64 copy is taken first), so no mapped copy of the rows is made. Returns
    the mapped rows, read per batch: the same values as :func:`_mapped`'s (float64 map,
    rounded to float32 once)."""
    j = 0
    for j, _, _, _, _, m in _mapped_blocks(parts, n, keep, rows, kind):
        start = 0
        for p in parts:
            p[:, j:j + m.shape[1]] = m[start:start + len(p)]
            start += len(p)
        j += m.shape[1]
    return _StackedRows([p[:, :j] for p in parts], np.ones(j, dtype=bool))


def _writable_float32(parts: list[np.ndarray]) -> bool:
    return all(p.dtype == np.float32 and p.ndim == 2 and p.flags.writeable for p in parts)


class _Problem:
    """The data of one call, split and mapped, and a way to fit one candidate on it."""

    def __init__(self, x, y, noise_var, s: EstimatorSettings, seed: int, test=None,
                 overwrite: bool = False):
        same = y is x and (test is None or (isinstance(test, (tuple, list)) and len(test) == 2
                                            and test[1] is test[0]))  # I(L; L + eps)
        x, y = _as_array(x, "x"), (None if same else _as_array(y, "y"))
        y_ = x if same else y
        if len(x) != len(y_):
            raise ConfigError(f"x and y must hold the same number of rows, got {len(x)} and {len(y_)}")
        n_pool = len(x)
        xs, ys = [x], [y_]
        if test is not None:
            if not (isinstance(test, (tuple, list)) and len(test) == 2):
                raise ConfigError("test must be a pair (x_test, y_test) of held-out rows")
            xt = _as_array(test[0], "x_test")
            yt = xt if same else _as_array(test[1], "y_test")
            if len(xt) != len(yt) or xt.shape[1:] != x.shape[1:] or yt.shape[1:] != y_.shape[1:]:
                raise ConfigError(f"test rows {xt.shape} / {yt.shape} do not match x {x.shape} / "
                                  f"y {y_.shape} (same row count, same shape per row)")
            xs, ys = [x, xt], [y_, yt]
        # the rows are the stacked parts (x, then the test rows), never stacked in float64 at
        # once: each block of columns is converted, checked and mapped on its own (_mapped)
        self.n, self.s, self.seed, self.noise_var = sum(map(len, xs)), s, seed, noise_var
        self.channel = GaussianChannel(noise_var) if noise_var else None
        self._min_improve = s.min_improve
        y_dtype = np.result_type(*(p.dtype for p in ys))  # that of the stacked rows
        self.discrete = np.issubdtype(y_dtype, np.integer) and y_.ndim == 1 and noise_var is None
        self.label_like = None  # a float y that looks like class labels: its distinct values
        if not self.discrete and noise_var is None and not same and y_.ndim == 1:
            values = np.unique(np.concatenate(ys))
            if len(values) <= 100 and np.isfinite(values).all() and (values == np.round(values)).all():
                self.label_like = len(values)
        xs = [p.reshape(len(p), -1) for p in xs]
        if self.discrete:
            y = np.concatenate(ys).astype(np.int64)
        else:
            ys = xs if same else [p.reshape(len(p), -1) for p in ys]
        rng = np.random.default_rng(seed)
        if test is None:
            order = rng.permutation(self.n)
            n_test, n_val = max(16, round(s.test_frac * self.n)), max(16, round(s.val_frac * self.n))
        else:  # the given held-out rows are the test split; the pool is x, y
            order = np.concatenate([np.arange(n_pool, self.n), rng.permutation(n_pool)])
            n_test, n_val = self.n - n_pool, max(16, round(s.val_frac / (1 - s.test_frac) * n_pool))
        if min(n_test, n_val, self.n - n_test - n_val) < 16:
            raise ConfigError(f"{self.n} rows are too few to split into train / validation / test "
                              "of >= 16 each; give more samples")
        self.test_idx, self.pool_idx, self.n_val = order[:n_test], order[n_test:], n_val
        # coordinates constant on the fitting rows carry no information: dropped (MI unchanged;
        # a dead ReLU unit is one). With nothing left the MI is 0 exactly (see ``constant``).
        kx = _nonconstant(xs, self.n, self.pool_idx)
        dy = None if self.discrete else ys[0].shape[1]
        if self.discrete:
            ky, self.constant = None, not kx.any() or len(np.unique(y[self.pool_idx])) < 2
        else:
            ky = kx if noise_var and dy == xs[0].shape[1] else _nonconstant(ys, self.n, self.pool_idx)
            self.constant = not kx.any() or not ky.any()
        self.dropped = int((~kx).sum()) + (0 if ky is None else int((~ky).sum()))
        if self.constant:
            return
        kind = s.input_map if s.input_map != "auto" else ("none" if noise_var else "copula")
        self.copula = kind == "copula"  # rows are normal scores: tail_dependence applies
        if self.discrete:
            if overwrite and _writable_float32(xs):  # the caller's rows become the mapped ones
                self.x = _mapped_in_place(xs, self.n, kx, self.pool_idx, kind)
            else:
                self.x, _ = _mapped(xs, self.n, kx, self.pool_idx, kind)
            _, y = np.unique(y, return_inverse=True)
            self.classes = int(y.max()) + 1
            self.y = torch.as_tensor(y, dtype=torch.int64)
        else:
            self.classes = 0
            if same and kind == "none":  # I(L; L + eps): the rows as they are, read per batch
                self.x = self.y = _StackedRows(xs, kx)
            elif same:  # y = x: the same mapped rows (one map when v = u), held once
                self.x, _ = _mapped(xs, self.n, kx, self.pool_idx, kind)
                self.y = self.x
            elif noise_var and ky is kx:  # one map when v = u: x's, block by block
                self.x, self.y = _mapped(xs, self.n, kx, self.pool_idx, kind, also=ys)
            elif noise_var:  # y of another width under x's map (as a whole)
                self.x, _ = _mapped(xs, self.n, kx, self.pool_idx, kind)
                xk = np.concatenate(xs).astype(np.float64)[:, kx]
                fx = MarginalMap(xk[self.pool_idx], kind)
                yk = np.concatenate(ys).astype(np.float64)[:, ky]
                self.y = torch.as_tensor(fx(yk), dtype=torch.float32)
            else:
                self.x, _ = _mapped(xs, self.n, kx, self.pool_idx, kind)
                self.y, _ = _mapped(ys, self.n, ky, self.pool_idx, kind)
        # the test rows' fixed noise, drawn per row when a batch reads it (never held whole)
        shape = self._rows_shape(self.test_idx)
        self.test_noise = self.channel.row_noise(shape[0], shape[1:], seed + 17) if self.channel else None

    def _rows_shape(self, idx: np.ndarray) -> tuple[int, ...]:
        """The shape of ``self.y[idx]``, without reading those rows."""
        return (len(idx), *self.y.shape[1:])

    def _rows(self, y: torch.Tensor, idx: np.ndarray) -> tuple["_Rows", "_Rows"]:
        """``(self.x[idx], y[idx])`` as :class:`_Rows`: read per batch, never copied whole."""
        return _Rows(self.x, idx), _Rows(y, idx)

    @property
    def min_improve(self) -> float:
        """Early stopping's improvement threshold in validation standard errors: ``auto`` is
        0.1 for labels and ``noise_var`` (critics that start near, or creep slowly towards,
        their optimum: a heads critic on 112 rows gained under 0.1 SE per check for 4 000
        steps), 0 for continuous pairs (the setting the benchmark suite was measured with)."""
        if self._min_improve != "auto":
            return float(self._min_improve)
        return 0.1 if (self.noise_var or self.discrete) else 0.0

    def split(self, restart: int) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, restart])
        pool = rng.permutation(self.pool_idx)
        return pool[self.n_val:], pool[:self.n_val]

    def fit(self, name: str, restart: int, shuffled: bool = False) -> _Run:
        critic, bound = CANDIDATES[name]
        s, seed = self.s, self.seed * 1000 + restart
        tr, va = self.split(restart)
        te = self.test_idx
        y = self.y
        if shuffled:  # pairs made independent: one derangement of y over all rows
            y = _Rows(y, derangement(self.n, generator=torch.Generator().manual_seed(seed + 5)))
        if critic in ("gauss", "gauss2"):
            return self._fit_gauss(name, critic, bound, tr, va, te, y, seed)
        seed_init(seed)  # the critic's initial weights (global CPU generator; kept by estimate_mi)
        u_tr, v_tr = self._rows(y, tr)  # each split's rows read per batch from self.x, self.y
        labels = "labels" in CRITICS[critic].kinds
        # the heads critic's prior starts uniform and is replaced by the training frequencies
        est = make_estimator(critic, bound, (self.x.shape[1], self.classes if labels else y.shape[1]),
                             channel=self.channel, settings=s, rows=(None, _Rows(self.y, tr)),
                             generator=torch.Generator().manual_seed(seed),
                             prior=torch.full((self.classes,), 1.0 / self.classes) if labels else None)
        if labels:
            est.prior.copy_(torch.bincount(y[tr], minlength=self.classes).float() / len(tr))
        # validate every eval_every steps, or every 10 epochs of a small training split
        every = min(s.eval_every, max(10, 10 * math.ceil(len(tr) / min(s.batch_size, len(tr)))))
        u_va, v_va = self._rows(y, va)
        fit = fit_critic(est, u_tr, v_tr, steps=s.max_steps, batch_size=s.batch_size, lr=s.lr,
                         channel=self.channel, seed=seed,
                         validation=Validation(u_va, v_va, s.eval_batch_size, every, s.patience,
                                               self.min_improve))
        val_terms = heldout_terms(est, u_va, v_va, s.eval_batch_size, self.val_noise(va), seed + 1)
        u_te, v_te = self._rows(y, te)
        terms = heldout_terms(est, u_te, v_te, s.eval_batch_size, self.test_noise, seed + 2)
        if not (torch.isfinite(terms).all() and torch.isfinite(val_terms).all()):
            raise NumericalError(f"{bound} bound ({critic} critic): held-out value not finite after "
                                 f"{fit.best_step} steps; use another bound")
        ess = min(marginal_ess(est, u_va, v_va, s.eval_batch_size, self.val_noise(va), seed + 1),
                  marginal_ess(est, u_te, v_te, s.eval_batch_size, self.test_noise, seed + 2))
        fitted = tr[:len(te)]  # as many training rows as test rows (tr is shuffled): the bias,
        u_fi, v_fi = self._rows(y, fitted)  # not the noise, is what the in-sample value shows
        train = heldout_terms(est, u_fi, v_fi, s.eval_batch_size, self.row_noise(fitted, 31), seed + 3)
        return _Run(name, float(val_terms.mean()), _se(val_terms), terms, fit.best_step, ess,
                    float(train.mean()))

    def row_noise(self, rows: np.ndarray, offset: int) -> RowNoise | None:
        """Fixed channel noise for ``rows`` (seed ``seed + offset``), None without a channel."""
        if self.channel is None:
            return None
        shape = self._rows_shape(rows)
        return self.channel.row_noise(shape[0], shape[1:], self.seed + offset)

    def val_noise(self, va: np.ndarray) -> RowNoise | None:
        if self.channel is None:
            return None
        shape = self._rows_shape(va)
        return self.channel.row_noise(shape[0], shape[1:], self.seed + 23)


    def _fit_gauss(self, name, critic, bound, tr, va, te, y, seed) -> _Run:
        """The closed-form Gaussian critic: shrinkage chosen on the validation rows (fitted on
        the training rows), then refitted on train + validation for the test value."""
        s, best = self.s, None  # (value, se, (shrink, sparse))
        for shrink in s.shrinks:
            for sparse in s.sparsities:
                est = make_estimator(critic, bound, (0, 0), rows=(self.x[tr], y[tr]),
                                     options={"shrink": shrink, "sparse": sparse})
                t = heldout_terms(est, self.x[va], y[va], s.eval_batch_size, None, seed + 1)
                val, se = float(t.mean()), _se(t)
                if best is None or val > best[0]:
                    best = (val, se, (shrink, sparse))
        pool = np.concatenate([tr, va])  # refit on all non-test rows at the chosen shrinkage
        shrink, sparse = best[2]
        est = make_estimator(critic, bound, (0, 0), rows=(self.x[pool], y[pool]),
                             options={"shrink": shrink, "sparse": sparse})
        terms = heldout_terms(est, self.x[te], y[te], s.eval_batch_size, self.test_noise, seed + 2)
        ess = marginal_ess(est, self.x[te], y[te], s.eval_batch_size, self.test_noise, seed + 2)
        fitted = pool[:len(te)]  # as many fitted rows as test rows (see fit)
        train = heldout_terms(est, self.x[fitted], y[fitted], s.eval_batch_size, None, seed + 3)
        return _Run(name, best[0], best[1], terms, 0, ess, float(train.mean()))


class _StackedRows:
    """``torch.as_tensor(np.concatenate(parts).astype(np.float64)[:, keep], dtype=torch.float32)``
    (the rows under the map ``"none"``), read when indexed: ``rows[idx]`` gathers those rows of
    the parts (each ``(n_k, d)``) and converts them alone, so the stacked array is never held."""

    device = torch.device("cpu")

    def __init__(self, parts: list[np.ndarray], keep: np.ndarray):
        self.parts, self.keep = parts, (None if keep.all() else keep)
        self.starts = np.cumsum([0] + [len(p) for p in parts])
        self.dtype = np.result_type(*(p.dtype for p in parts))
        self._shape = torch.Size((int(self.starts[-1]), int(keep.sum())))

    def __len__(self) -> int:
        return self._shape[0]

    @property
    def shape(self) -> torch.Size:
        return self._shape

    def __getitem__(self, idx) -> torch.Tensor:
        idx = torch.as_tensor(idx).reshape(-1).cpu().numpy()
        idx = np.where(idx < 0, idx + len(self), idx)
        part = np.searchsorted(self.starts, idx, side="right") - 1
        rows = np.empty((len(idx), self.parts[0].shape[1]), dtype=self.dtype)
        for k, p in enumerate(self.parts):
            m = part == k
            rows[m] = p[idx[m] - self.starts[k]]
        if rows.dtype != np.float32:  # float32 rows are their own float32 values: no round trip
            rows = rows.astype(np.float64)
        rows = np.ascontiguousarray(rows if self.keep is None else rows[:, self.keep])
        return torch.as_tensor(rows, dtype=torch.float32).contiguous()  # row-major, as t[idx] is


class _Rows:
    """The rows ``t[idx]`` of a tensor, read when indexed: ``rows[i]`` is ``t[idx[i]]`` (the
    values of ``t[idx][i]``), with ``len``, ``shape`` and ``device`` as that tensor's. What the
    critics' fitting and evaluation index per batch, so a split is never copied whole."""

    def __init__(self, t: torch.Tensor, idx):
        self.t, self.idx = t, torch.as_tensor(idx, device=t.device)

    def __len__(self) -> int:
        return len(self.idx)

    @property
    def shape(self) -> torch.Size:
        return torch.Size((len(self.idx), *self.t.shape[1:]))

    @property
    def device(self) -> torch.device:
        return self.t.device

    def __getitem__(self, i) -> torch.Tensor:
        return self.t[self.idx[i]]


def _se(terms: torch.Tensor) -> float:
    return float(terms.std() / math.sqrt(len(terms)))


def _interval(runs: list[_Run]) -> tuple[float, float, str]:
    """``(value, stderr, method)`` from the restarts' per-row test terms (nats)."""
    terms = torch.stack([r.terms for r in runs]).mean(0)
    se_rows2 = float(terms.var() / len(terms))
    tests = torch.tensor([r.test for r in runs], dtype=torch.float64)
    se_train2 = float(tests.var() / len(runs)) if len(runs) > 1 else 0.0
    method = (f"sqrt(se_rows^2 + s_restarts^2 / R), delta-method per-row terms over {len(terms)} "
              f"test rows and the spread of R = {len(runs)} critic restarts")
    return float(terms.mean()), math.sqrt(se_rows2 + se_train2), method


@keeps_global_rng
def estimate_mi(x, y, *, noise_var: float | None = None, seed: int = 0, test=None,
                overwrite: bool = False, **options) -> MIResult:
    """I(X; Y) in nats from paired samples, by the protocol of this module.

    Args:
        x: ``(N, ...)`` torch or numpy array (flattened to ``(N, dim_x)``).
        y: ``(N, ...)`` array, or ``(N,)`` integers: class labels, whose marginal is then
            taken exactly over the classes (label bounds).
        noise_var: sigma^2 > 0: estimate ``I(X; Y + eps)``, ``eps ~ N(0, sigma^2 I)`` with
            known-noise critics; ``estimate_mi(l, l, noise_var=s2)`` is I(L; L + eps),
            AA-MINE on features (Elad et al. 2019, Sec. 3).
        seed: seeds the split, the critics, the batches and the noise.
        test: optional ``(x_test, y_test)`` held-out rows (same shapes per row): the value
            is reported on them, and ``x, y`` are the pool that is split into training and
            validation rows (``val_frac / (1 - test_frac)`` of it validates). This is how a
            net's layers are measured: critics fitted on training-set features, the value
            on test-set features (:func:`layerib.measure_layers`, the trainer's report).
        overwrite: with integer ``y``, let the float32 ``x`` (and ``x_test``) be overwritten
            by their mapped values instead of mapping into a copy (same result; saves a
            float32 copy of all their rows, e.g. 1.3 GB for 20 000 x 16 384 features). The
            arrays then hold the mapped values. Other dtypes and cases: ignored.
        **options: fields of :class:`~layerib.mi.settings.EstimatorSettings` (e.g. ``candidates=("concat-dv",)``,
            ``restarts=1``, ``baseline=False``).

    ``"auto"`` candidates (:data:`AUTO`), chosen by measurement on generated data only
    (``benchmarks/bench_estimators.py --suite``, N = 5000, 10 seeds):

    * continuous ``y``: the closed-form Gaussian-ratio critic (:mod:`layerib.mi.critics.gaussian_ratio`)
      under DV and InfoNCE, the same on quadratic/energy features, and a separable MLP
      critic with the row energy as an extra input under InfoNCE. In copula space the
      Gaussian critic is optimal for Gaussians and any per-coordinate monotone transform of
      them (within 3 % on every such task up to 100 dimensions a side, where the trained MLP
      critics were 15-180 % low: they over-fit 3 000 rows); the MLP wins on heavy-tailed
      pairs (Student-t). DV is not capped at ln B (the 20-d staircase at 6 and 8 nats), but
      a DV value whose marginal term rests on fewer than ``min_ess`` effective pairs is not
      used (a 5-d pair at 4 nats: one marginal pair made 1.6 of 4.0 nats).
    * integer ``y``: the classifier-form heads critic under InfoNCE (= Barber-Agakov,
      H(Y) - cross-entropy) and DV, both with the exact class marginal (within 1 %).
    * ``noise_var``: the mixture critic under DV (AA-MINE; a few per cent on Fig. 1).

    Selection: the highest lower end of the validation value's 95 % interval (a
    high-variance bound must beat a low-variance one by more than its noise).

    Returns:
        :class:`~layerib.mi.result.MIResult` with ``interval``, ``shuffled``, the flags,
        ``candidates`` = (name, validation value, test value) of every candidate tried and,
        for integer ``y``, ``entropy`` = H(Y) of the test labels (flag ``exceeds_entropy``).

    Raises:
        ConfigError: mismatched rows, too few rows, non-finite inputs, unknown options.
        NumericalError: every candidate's bound became non-finite (bound and step named).
    """
    s = settings_from_options(options, exclude=RECIPE_FIELDS)
    if noise_var is not None:
        GaussianChannel.check(noise_var)
    prob = _Problem(x, y, noise_var, s, seed, test, overwrite)
    if prob.constant:
        return _constant_result(prob, noise_var)
    kind = "noise" if noise_var else ("labels" if prob.discrete else "continuous")
    names = AUTO[kind] if s.candidates == "auto" else tuple(s.candidates)
    _check_kind(names, kind)
    runs, errors = [], []
    notes = [f"{prob.dropped} coordinate(s) constant on the fitting rows dropped (they carry no "
             "information)"] if prob.dropped else []
    if prob.label_like:
        notes.append(f"y is a float array of {prob.label_like} distinct whole numbers, estimated as a "
                     "continuous variable; if they are class labels pass y as integers "
                     "(y.long()) for the exact-marginal label bounds")
        log.warning("estimate_mi: %s", notes[-1])
    for name in names:
        try:
            runs.append(prob.fit(name, 0))
        except NumericalError as e:
            errors.append(e)
            notes.append(f"candidate {name} dropped: {e}")
            log.warning("estimate_mi: candidate %s dropped: %s", name, e)
    if not runs:
        raise errors[0]
    usable = [r for r in runs if r.ess >= s.min_ess]
    for r in runs:
        if r.ess < s.min_ess:
            notes.append(f"candidate {r.name} not used: its marginal term rests on {r.ess:.1f} "
                         f"effective pairs (< min_ess = {s.min_ess:g}); exp T is heavy-tailed")
    best = max(usable or runs, key=lambda r: r.val_low)
    chosen = [best] + [prob.fit(best.name, r) for r in range(1, s.restarts)]
    value, stderr, rows_method = _interval(chosen)
    shuffled = float(prob.fit(best.name, 0, shuffled=True).test) if s.baseline else None
    n_test = len(prob.test_idx)
    b = math.ceil(n_test / max(1, math.ceil(n_test / s.eval_batch_size)))
    critic, bound = CANDIDATES[best.name]
    refs = _references(prob, kind)
    high = value + 1.96 * stderr  # a candidate whose test interval lies above this one's
    disagree = tuple(r.name for r in usable if r is not best
                     and r.test - 1.96 * _se(r.terms) > high)
    train = float(np.mean([r.train for r in chosen]))
    best_test = max([r.test for r in usable] or [value])
    tail = shows_tail_dependence(refs.get("tail_dependence"), refs.get("tail_rows", 0))
    reported, interval, method = _bias_aware(value, stderr, train, best_test, refs, rows_method,
                                             TAIL_ALLOWANCE if tail else BIAS_ALLOWANCE)
    if tail:
        notes.append(f"tail dependence: the squared norms of the normal scores co-vary "
                     f"{refs['tail_dependence']:+.2f} (correlation) beyond a Gaussian copula's, as "
                     "on Student-t pairs, where the critics fall up to 35 % short; the interval's "
                     f"top allows {TAIL_ALLOWANCE:.0%} (more rows narrow the shortfall)")
    entropy = _label_entropy(prob.y[prob.test_idx]) if prob.discrete else None
    cap = _entropy_cap(prob.y[prob.test_idx], entropy) if prob.discrete else None
    if cap is not None and interval[2] <= cap < interval[1]:  # no I(Y; L) exceeds H(Y)
        interval = (interval[0], cap, interval[2])
        method += (f"; high capped at {cap:.3f}, H(Y) of the test labels with the Miller-Madow "
                   "correction (at most ln K): no I(Y; L) exceeds H(Y)")
    result = MIResult(value=interval[2], stderr=stderr, shuffled=shuffled, batch_size=b,
                      ln_batch=math.log(b), n_points=n_test, n_batches=math.ceil(n_test / b),
                      noise_var=noise_var, bound=bound, exceeds_ln_batch=False,
                      interval=interval[:2], interval_method=method, critic=critic,
                      n_train=len(prob.split(0)[0]), n_val=prob.n_val,
                      steps=tuple(r.steps for r in chosen), restarts=len(chosen),
                      candidates=tuple((r.name, r.val, r.test) for r in runs), notes=tuple(notes),
                      entropy=entropy, candidates_disagree=disagree, value_train=train, value_neural=value,
                      reported=reported, heavy_tailed=not usable,
                      marginal_ess=None if math.isinf(best.ess) else float(best.ess), **refs)
    return result


#: The upper end of the interval reaches at least ``(1 + BIAS_ALLOWANCE)`` times the best
#: candidate's value (plus 1.96 standard errors): every candidate is a lower bound, low by
#: what its critic family misses. Measured on the coverage grid (``benchmarks/bench_coverage.py``,
#: n >= 2000): the default critics' shortfall was within 10 % of the value on Gaussians, the
#: per-coordinate and spiral transforms, additive noise and labels, and 12-34 % on Student-t
#: pairs (where the in-sample value or the references, not this allowance, reach the truth).
BIAS_ALLOWANCE = 0.10
#: ... and ``(1 + TAIL_ALLOWANCE)`` times it where the pair's squared norms co-vary beyond a
#: Gaussian copula's (:func:`~layerib.mi.result.shows_tail_dependence`): on the coverage
#: grid's Student-t pairs the best candidate was 7-35 % below the truth at n = 5 000 .. 50 000
#: (truth / value up to 1.35).
TAIL_ALLOWANCE = 0.50


def _bias_aware(value: float, stderr: float, train: float, best_test: float, refs: dict,
                rows_method: str, allowance: float = BIAS_ALLOWANCE
                ) -> tuple[str, tuple[float, float, float], str]:
    """``(reported, (low, high, reported value), method)``: the bias-aware 95 % interval (nats).

    Every candidate is a lower bound, so the test value is biased low (by what the critic
    over-fits on its training rows and what its family misses); the rows-and-restarts interval
    ``value +- 1.96 stderr`` covers neither. The interval is asymmetric:

    * low: ``value - 1.96 stderr`` (a lower bound's sampling spread; its bias is downwards);
    * high: the largest of ``value + 1.96 stderr``; ``train``, the same critic's value on its
      own training rows (in-sample, biased up by about what the test value is biased down:
      the optimism of a fitted objective, Akaike 1973); ``(1 + allowance)`` times the best
      candidate's test value plus ``1.96 stderr`` (the critic family's shortfall;
      :data:`BIAS_ALLOWANCE`, or :data:`TAIL_ALLOWANCE` on tail-dependent pairs); and each
      applicable reference's ``ref + 1.96 se`` (``refs`` with a ``_se``: the Gaussian-copula
      MI, a population lower bound on copula-mapped continuous rows without ties, and KSG).

    A reference becomes the reported value when its own interval lies wholly above the neural
    rows interval (``ref - max(1.96 se, 0.05) > value + 1.96 stderr``: the critics under-fit,
    flagged ``below_reference``); the lower end is then the smaller of the two lower ends.
    ``reported``: ``"neural"``, ``"CCA"`` or ``"KSG"``."""
    ends = {"rows": value + 1.96 * stderr, "train": train}
    usable = {name: (refs[f"reference_{key}"], refs[f"reference_{key}_se"])
              for name, key in (("CCA", "cca"), ("KSG", "ksg"))
              if refs.get(f"reference_{key}_se") is not None}
    reported, point, low = "neural", value, value - 1.96 * stderr
    for name, (ref, se) in usable.items():
        ends[name] = ref + 1.96 * se
        if ref - max(1.96 * se, REFERENCE_SLACK_NATS) > value + 1.96 * stderr and ref > point:
            reported, point = name, ref
    if reported != "neural":
        low = min(low, point - 1.96 * usable[reported][1])
    top = max(point, best_test)
    ends["allowance"] = top + allowance * abs(top) + 1.96 * stderr
    which = max(ends, key=ends.get)
    what = {"rows": "value + 1.96 se", "train": "the chosen critic's in-sample (training-row) value",
            "allowance": f"the best candidate's value x {1 + allowance:g} + 1.96 se",
            "CCA": "the Gaussian-copula (CCA) reference + 1.96 se", "KSG": "the KSG reference + 1.96 se"}
    lead = "" if reported == "neural" else f"the {reported} reference reported (its interval lies above the neural one); "
    method = (f"bias-aware: {lead}low = value - 1.96 se, high = max(value + 1.96 se, in-sample value, "
              f"best candidate x {1 + allowance:g} + 1.96 se, references + 1.96 se), here "
              f"{what[which]}; se: {rows_method}")
    return reported, (low, ends[which], point), method


#: KSG reference only up to this many dimensions (x and y together; k-NN distances lose
#: their meaning in high dimension); CCA only with at least this many test rows per dimension
KSG_MAX_DIM = 10
CCA_ROWS_PER_DIM = 8
#: :func:`~layerib.mi.baselines.tail_dependence` on the test rows and pool rows, at most this
#: many (it describes the pair, not the test value: 100 test rows alone left Student-t pairs
#: with nu = 1 undetected)
TAIL_ROWS = 20_000
#: ... and only up to this many dimensions (x and y together): its correlation matrix is
#: (d, d) and its rows (TAIL_ROWS, d) in float64 (a 16 384-wide conv layer would need gigabytes)
TAIL_MAX_DIM = 512


def _references(prob: _Problem, kind: str) -> dict:
    """The cheap references on the test rows the neural value is reported on, as
    :class:`MIResult` fields: ``reference_cca`` (with its ``_spread`` and ``_se``) and
    ``reference_ksg`` (with its ``_se``), nats, on the copula-mapped rows, on which both are
    the MI of the original pair; CCA less its mean on shuffled pairs
    (:func:`~layerib.mi.baselines.cca_reference`). None where one does not apply: with
    ``noise_var`` (the Gaussian channel's MI is at most the CCA value there, so it is no check
    of a lower bound; the Monte-Carlo value is the reference of a layer), for I(L; L), CCA for
    labels (its one-hot Gaussian is not an MI of the pair), KSG above :data:`KSG_MAX_DIM`
    dimensions, CCA with fewer than :data:`CCA_ROWS_PER_DIM` test rows per dimension."""
    out = {}
    if kind == "noise" or prob.y is prob.x:
        return out
    te = prob.test_idx
    x = prob.x[te].double().numpy()
    y = prob.y[te].numpy() if kind == "labels" else prob.y[te].double().numpy()
    dims = x.shape[1] + (1 if kind == "labels" else y.shape[1])
    if kind != "labels" and len(te) >= CCA_ROWS_PER_DIM * dims:
        value, spread = cca_reference(x, y, seed=prob.seed)
        out.update(reference_cca=value, reference_cca_spread=spread)
        if not (_has_ties(x) or _has_ties(y)):  # else no lower bound: shown, not used
            out["reference_cca_se"] = math.sqrt(cca_se(x, y) ** 2 + spread ** 2)
    if dims <= KSG_MAX_DIM:
        value, se = ksg_reference(x, y, seed=prob.seed)
        out.update(reference_ksg=value, reference_ksg_se=se)
    if kind != "labels" and prob.copula and dims <= TAIL_MAX_DIM:  # the pair's: up to TAIL_ROWS
        rows = np.concatenate([te, prob.pool_idx[:max(0, TAIL_ROWS - len(te))]])
        out["tail_dependence"] = tail_dependence(prob.x[rows].double().numpy(),
                                                 prob.y[rows].double().numpy())[0]
        out["tail_rows"] = len(rows)
    return out


def _has_ties(a: np.ndarray) -> bool:
    """Some column of ``a`` ``(n, d)`` holds a value twice (discrete or rounded coordinates)."""
    s = np.sort(a, axis=0)
    return bool((s[1:] == s[:-1]).any())


def _entropy_cap(y: torch.Tensor, plug_in: float) -> float:
    """An upper end for I(Y; L) from ``(N,)`` integer labels: the plug-in entropy plus the
    Miller-Madow correction ``(K - 1) / (2 N)`` (the plug-in is biased low by about that; K the
    classes seen), at most ln K, nats."""
    k = int(torch.unique(torch.as_tensor(y)).numel())
    return min(math.log(max(k, 1)), plug_in + (k - 1) / (2 * len(y)))


def _label_entropy(y: torch.Tensor) -> float:
    """Plug-in entropy H(Y) of ``(N,)`` integer labels, nats: the ceiling of any I(Y; L)."""
    p = torch.bincount(y).double() / len(y)
    p = p[p > 0]
    return float(-(p * p.log()).sum())


def _constant_result(prob: _Problem, noise_var) -> MIResult:
    """I = 0 exactly: x (or y) is constant on the fitting rows, so no critic is trained."""
    n_test = len(prob.test_idx)
    b = min(n_test, prob.s.eval_batch_size)
    return MIResult(value=0.0, stderr=0.0, shuffled=None, batch_size=b, ln_batch=math.log(max(b, 1)),
                    n_points=n_test, n_batches=math.ceil(n_test / max(b, 1)), noise_var=noise_var,
                    bound="exact", exceeds_ln_batch=False, interval=(0.0, 0.0),
                    interval_method="exact: a constant variable shares no information",
                    critic="none", restarts=0,
                    notes=("x or y is constant on the fitting rows (every coordinate, or a single "
                           "class): I = 0 exactly, no critic trained",))


def _check_kind(names, kind: str) -> None:
    for name in names:
        if kind not in CRITICS[CANDIDATES[name][0]].kinds:
            raise ConfigError(f"candidate {name} does not fit {kind} data; use candidates='auto'")
