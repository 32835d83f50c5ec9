"""``estimate_mi(x, y)``: an MI estimate (nats) you can read on any data, with its interval and flags.

The protocol (every step seeded by ``seed``):

1. Rows are shuffled and split into test (``test_frac``) and a pool; the pool is split into
   train and validation rows, afresh for each critic restart.
2. Inputs are mapped coordinate-wise by a strictly increasing map fitted on the pool
   (:mod:`layerib.mi.transforms`; MI is unchanged): ``"copula"`` normal scores by default;
   none with ``noise_var`` (the noise has a scale), labels are left as they are.
3. Each candidate critic/bound (:data:`CANDIDATES`) is trained with early stopping on its
   validation bound (:func:`~layerib.mi.early_stopping.fit_early_stopping`), the best
   critic restored. All are lower bounds, so the candidate with the highest *validation*
   value is chosen; its *test* value is reported (the choice never sees the test rows).
4. The chosen candidate is retrained ``restarts - 1`` more times (new split of the pool,
   new initialisation); ``value`` is the mean of the restarts' test values.
5. Interval (see :func:`_interval`): per-row terms of the test bound (delta method,
   :mod:`layerib.mi.evaluation`) give the test-row variance; the spread of the restarts
   gives the training variance; ``value +- 1.96 sqrt(se_rows^2 + s_restarts^2 / R)``.
6. The shuffled-pairs baseline: the chosen candidate trained and tested on pairs made
   independent by one global derangement (truth 0).

Non-finite values never come back: a candidate that diverges (NWJ's exp on heavy tails)
is dropped with a note in ``MIResult.notes``; if every candidate diverges,
:class:`~layerib.errors.NumericalError` names the bound and the step.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from layerib.errors import ConfigError, NumericalError
from layerib.mi.critics import ConcatCritic, GaussianNoiseCritic, LabelHeadsCritic, SeparableCritic
from layerib.mi.early_stopping import fit_early_stopping
from layerib.mi.estimators import MIEstimator, derangement
from layerib.mi.evaluation import heldout_terms, marginal_ess
from layerib.mi.gaussian_critic import GaussianRatioCritic
from layerib.mi.mixture_critic import MixtureNoiseCritic
from layerib.mi.result import MIResult
from layerib.mi.transforms import MarginalMap

log = logging.getLogger(__name__)

#: Candidate name -> (critic, bound). Explicit registry; see :data:`AUTO` for the defaults.
CANDIDATES = {
    "gauss-dv": ("gauss", "dv"),
    "gauss-infonce": ("gauss", "infonce"),
    "gauss2-dv": ("gauss2", "dv"),
    "gauss2-infonce": ("gauss2", "infonce"),
    "separable-infonce": ("separable", "infonce"),
    "separable-e-infonce": ("separable-e", "infonce"),
    "separable-dv": ("separable", "dv"),
    "separable-nwj": ("separable", "nwj"),
    "concat-dv": ("concat", "dv"),
    "concat-nwj": ("concat", "nwj"),
    "heads-infonce": ("heads", "infonce"),
    "heads-dv": ("heads", "dv"),
    "mixture-dv": ("mixture", "dv"),
    "gaussian-dv": ("gaussian", "dv"),
}

#: The ``"auto"`` candidates by kind of data (chosen by measurement: see the module
#: ``benchmarks/bench_estimators.py --suite`` and the docstring of :func:`estimate_mi`).
AUTO = {
    "continuous": ("gauss-dv", "gauss-infonce", "gauss2-infonce", "separable-e-infonce"),
    "labels": ("heads-infonce", "heads-dv"),
    "noise": ("mixture-dv",),
}


@dataclass(frozen=True)
class EstimateSettings:
    """Options of :func:`estimate_mi` (each a keyword argument of it)."""

    candidates: tuple[str, ...] | str = "auto"  # names from CANDIDATES, or "auto" (AUTO by data kind)
    restarts: int = 3             # trainings of the chosen candidate averaged (>= 1; 1: no training spread)
    baseline: bool = True         # also fit the chosen candidate on shuffled pairs (truth 0)
    input_map: str = "auto"       # "copula", "standardize", "none"; auto: copula, none with noise_var
    test_frac: float = 0.2        # rows held out for the reported value
    val_frac: float = 0.2         # rows that early-stop the critic
    batch_size: int = 256         # training batch B
    eval_batch_size: int = 1024   # validation / test batches (ln of it caps InfoNCE)
    hidden: int = 256             # MLP width of the critics
    embed: int = 32               # output size of the separable critic's g and h
    lr: float = 1e-3              # Adam learning rate
    max_steps: int = 4000         # step limit of one training
    eval_every: int = 100         # steps between validations
    patience: int = 5             # validations without improvement before stopping
    ema_rate: float = 0.01        # MINE's moving-average rate of the DV gradient
    n_centers: int = 2048         # mixture critic (noise_var): centres from training rows
    min_ess: float = 20.0         # DV/NWJ values resting on fewer effective marginal pairs are not used
    shrinks: tuple[float, ...] = (0.0, 0.05, 0.15, 0.3)  # gauss critic: cross-covariance shrinkages tried
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.9, 1.0)  # gauss critic: weights of the paired-sparse target tried

    def __post_init__(self) -> None:
        for name in ("restarts", "batch_size", "eval_batch_size", "hidden", "embed", "max_steps",
                     "eval_every", "patience", "n_centers"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        if not (0 < self.test_frac < 1 and 0 < self.val_frac < 1 and self.test_frac + self.val_frac < 0.9):
            raise ConfigError(f"test_frac={self.test_frac}, val_frac={self.val_frac}: each in (0, 1), "
                              "summing to < 0.9")
        names = (self.candidates,) if isinstance(self.candidates, str) else self.candidates
        for c in names:
            if c != "auto" and c not in CANDIDATES:
                raise ConfigError(f"unknown candidate {c!r}; choose from auto, {', '.join(CANDIDATES)}")


def _as_array(a, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    a = np.asarray(a)
    if a.ndim < 1 or len(a) == 0:
        raise ConfigError(f"{name} must be an (N, ...) array with N >= 1, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.integer) and not np.isfinite(a.astype(np.float64)).all():
        raise ConfigError(f"{name} holds non-finite values; drop or impute those rows")
    return a


def _critic(critic: str, bound: str, dx: int, dy: int, classes: int, noise_var, u_train,
            s: EstimateSettings, seed: int) -> MIEstimator:
    if critic == "heads":
        prior = torch.full((classes,), 1.0 / classes)  # replaced by the training frequencies
        return MIEstimator(LabelHeadsCritic(dx, classes, s.hidden), bound=bound, marginal="exact",
                           ema_rate=s.ema_rate, prior=prior)
    if critic == "mixture":
        g = torch.Generator().manual_seed(seed)
        module = MixtureNoiseCritic.from_features(u_train, noise_var, s.n_centers, g,
                                                  offset=1.0 if bound == "nwj" else 0.0)
    elif critic == "gaussian":
        module = GaussianNoiseCritic(dx, noise_var, s.hidden, standardize_f=True)
    elif critic in ("separable", "separable-e"):
        module = SeparableCritic(dx, dy, s.hidden, s.embed, energy=critic == "separable-e")
    else:
        module = ConcatCritic(dx, dy, s.hidden)
    if bound == "infonce":
        over = "u" if critic in ("mixture", "gaussian") else "v"
        return MIEstimator(module, bound="infonce", marginal="all", infonce_over=over)
    marginal = "shuffle" if critic == "concat" else "all"
    return MIEstimator(module, bound=bound, marginal=marginal, ema_rate=s.ema_rate)


@dataclass
class _Run:
    name: str
    val: float             # validation bound (nats)
    val_se: float          # its standard error over validation rows
    terms: torch.Tensor    # (n_test,) per-row test terms
    steps: int
    ess: float = math.inf  # smallest effective number of marginal pairs (validation, test)

    @property
    def val_low(self) -> float:
        """The selection score: lower end of the validation value's 95 % interval."""
        return self.val - 1.96 * self.val_se

    @property
    def test(self) -> float:
        return float(self.terms.mean())


class _Problem:
    """The data of one call, split and mapped, and a way to fit one candidate on it."""

    def __init__(self, x, y, noise_var, s: EstimateSettings, seed: int):
        x, y = _as_array(x, "x"), _as_array(y, "y")
        if len(x) != len(y):
            raise ConfigError(f"x and y must hold the same number of rows, got {len(x)} and {len(y)}")
        self.n, self.s, self.seed, self.noise_var = len(x), s, seed, noise_var
        self.discrete = np.issubdtype(y.dtype, np.integer) and y.ndim == 1 and noise_var is None
        x = x.reshape(self.n, -1).astype(np.float64)
        y = y.astype(np.int64) if self.discrete else y.reshape(self.n, -1).astype(np.float64)
        rng = np.random.default_rng(seed)
        order = rng.permutation(self.n)
        n_test, n_val = round(s.test_frac * self.n), round(s.val_frac * self.n)
        if min(n_test, n_val, self.n - n_test - n_val) < 32:
            raise ConfigError(f"{self.n} rows are too few to split into train / validation / test "
                              "of >= 32 each; give more samples")
        self.test_idx, self.pool_idx, self.n_val = order[:n_test], order[n_test:], n_val
        kind = s.input_map if s.input_map != "auto" else ("none" if noise_var else "copula")
        fx = MarginalMap(x[self.pool_idx], kind)
        self.x = torch.as_tensor(fx(x), dtype=torch.float32)
        if self.discrete:
            _, y = np.unique(y, return_inverse=True)
            self.classes = int(y.max()) + 1
            self.y = torch.as_tensor(y, dtype=torch.int64)
        else:
            fy = fx if noise_var else MarginalMap(y[self.pool_idx], kind)  # one map when v = u
            self.classes, self.y = 0, torch.as_tensor(fy(y), dtype=torch.float32)
        g = torch.Generator().manual_seed(seed + 17)
        sd = math.sqrt(noise_var) if noise_var else 0.0
        self.test_noise = sd * torch.randn(self.y[self.test_idx].shape, generator=g) if sd else None

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
            y = y[derangement(self.n, generator=torch.Generator().manual_seed(seed + 5))]
        if critic in ("gauss", "gauss2"):
            return self._fit_gauss(name, critic == "gauss2", bound, tr, va, te, y, seed)
        torch.manual_seed(seed)
        est = _critic(critic, bound, self.x.shape[1], 0 if self.discrete else y.shape[1],
                      self.classes, self.noise_var, self.y[tr], s, seed)
        if critic == "heads":
            est.prior.copy_(torch.bincount(y[tr], minlength=self.classes).float() / len(tr))
        fit = fit_early_stopping(est, self.x[tr], y[tr], self.x[va], y[va], batch_size=s.batch_size,
                                 eval_batch_size=s.eval_batch_size, lr=s.lr, max_steps=s.max_steps,
                                 eval_every=s.eval_every, patience=s.patience, seed=seed,
                                 noise_var=self.noise_var)
        val_terms = heldout_terms(est, self.x[va], y[va], s.eval_batch_size, self.val_noise(va), seed + 1)
        terms = heldout_terms(est, self.x[te], y[te], s.eval_batch_size, self.test_noise, seed + 2)
        if not (torch.isfinite(terms).all() and torch.isfinite(val_terms).all()):
            raise NumericalError(f"{bound} bound ({critic} critic): held-out value not finite after "
                                 f"{fit.best_step} steps; use another bound")
        ess = min(marginal_ess(est, self.x[va], y[va], s.eval_batch_size, self.val_noise(va), seed + 1),
                  marginal_ess(est, self.x[te], y[te], s.eval_batch_size, self.test_noise, seed + 2))
        return _Run(name, float(val_terms.mean()), _se(val_terms), terms, fit.best_step, ess)

    def val_noise(self, va: np.ndarray) -> torch.Tensor | None:
        if not self.noise_var:
            return None
        g = torch.Generator().manual_seed(self.seed + 23)
        return math.sqrt(self.noise_var) * torch.randn(self.y[va].shape, generator=g)


    def _fit_gauss(self, name, quadratic, bound, tr, va, te, y, seed) -> _Run:
        """The closed-form Gaussian critic: shrinkage chosen on the validation rows (fitted on
        the training rows), then refitted on train + validation for the test value."""
        s, best = self.s, None  # (value, se, (shrink, sparse))
        for shrink in s.shrinks:
            for sparse in s.sparsities:
                est = MIEstimator(GaussianRatioCritic(self.x[tr], y[tr], shrink, sparse,
                                                      quadratic=quadratic),
                                  bound=bound, marginal="all", ema_rate=None)
                t = heldout_terms(est, self.x[va], y[va], s.eval_batch_size, None, seed + 1)
                val, se = float(t.mean()), _se(t)
                if best is None or val > best[0]:
                    best = (val, se, (shrink, sparse))
        pool = np.concatenate([tr, va])  # refit on all non-test rows at the chosen shrinkage
        est = MIEstimator(GaussianRatioCritic(self.x[pool], y[pool], *best[2], quadratic=quadratic),
                          bound=bound, marginal="all", ema_rate=None)
        terms = heldout_terms(est, self.x[te], y[te], s.eval_batch_size, self.test_noise, seed + 2)
        ess = marginal_ess(est, self.x[te], y[te], s.eval_batch_size, self.test_noise, seed + 2)
        return _Run(name, best[0], best[1], terms, 0, ess)


def _se(terms: torch.Tensor) -> float:
    return float(terms.std() / math.sqrt(len(terms)))


def _interval(runs: list[_Run]) -> tuple[float, float, str]:
    """``(value, stderr, method)`` from the restarts' per-row test terms (nats)."""
    terms = torch.stack([r.terms for r in runs]).mean(0)
    se_rows2 = float(terms.var() / len(terms))
    tests = torch.tensor([r.test for r in runs], dtype=torch.float64)
    se_train2 = float(tests.var() / len(runs)) if len(runs) > 1 else 0.0
    method = (f"value +- 1.96 sqrt(se_rows^2 + s_restarts^2 / R): delta-method per-row terms "
              f"over {len(terms)} test rows and the spread of R = {len(runs)} critic restarts")
    return float(terms.mean()), math.sqrt(se_rows2 + se_train2), method


def estimate_mi(x, y, *, noise_var: float | None = None, seed: int = 0, **options) -> MIResult:
    """I(X; Y) in nats from paired samples, by the protocol of this module.

    Args:
        x: ``(N, ...)`` torch or numpy array (flattened to ``(N, dim_x)``).
        y: ``(N, ...)`` array, or ``(N,)`` integers: class labels, whose marginal is then
            taken exactly over the classes (label bounds).
        noise_var: sigma^2 > 0: estimate ``I(X; Y + eps)``, ``eps ~ N(0, sigma^2 I)`` with
            known-noise critics; ``estimate_mi(l, l, noise_var=s2)`` is I(L; L + eps),
            AA-MINE on features (Elad et al. 2019, Sec. 3).
        seed: seeds the split, the critics, the batches and the noise.
        **options: fields of :class:`EstimateSettings` (e.g. ``candidates=("concat-dv",)``,
            ``restarts=1``, ``baseline=False``).

    ``"auto"`` candidates (:data:`AUTO`) are measured, not tuned per task: continuous
    ``y``: separable/InfoNCE (low variance, capped at ln B), separable/DV and concat/DV
    (not capped); labels: the classifier-form heads critic under InfoNCE (Barber-Agakov)
    and DV, both with the exact class marginal; ``noise_var``: the mixture critic (DV),
    within a few per cent on Fig. 1. See ``benchmarks/bench_estimators.py --suite``.

    Returns:
        :class:`~layerib.mi.result.MIResult` with ``interval``, ``shuffled``, the flags and
        ``candidates`` = (name, validation value, test value) of every candidate tried.

    Raises:
        ConfigError: mismatched rows, too few rows, non-finite inputs, unknown options.
        NumericalError: every candidate's bound became non-finite (bound and step named).
    """
    known = {f.name for f in fields(EstimateSettings)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
    if noise_var is not None and not (math.isfinite(noise_var) and noise_var > 0):
        raise ConfigError(f"noise_var={noise_var} must be finite and > 0 (or None)")
    s = EstimateSettings(**options)
    prob = _Problem(x, y, noise_var, s, seed)
    kind = "noise" if noise_var else ("labels" if prob.discrete else "continuous")
    names = AUTO[kind] if s.candidates == "auto" else tuple(s.candidates)
    _check_kind(names, kind)
    runs, notes, errors = [], [], []
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
    value, stderr, method = _interval(chosen)
    shuffled = float(prob.fit(best.name, 0, shuffled=True).test) if s.baseline else None
    n_test = len(prob.test_idx)
    b = math.ceil(n_test / max(1, math.ceil(n_test / s.eval_batch_size)))
    critic, bound = CANDIDATES[best.name]
    result = MIResult(value=value, stderr=stderr, shuffled=shuffled, batch_size=b, ln_batch=math.log(b),
                    n_points=n_test, n_batches=math.ceil(n_test / b), noise_var=noise_var, bound=bound,
                    exceeds_ln_batch=False, interval=(value - 1.96 * stderr, value + 1.96 * stderr),
                    interval_method=method, critic=critic, n_train=len(prob.split(0)[0]),
                    n_val=prob.n_val, steps=tuple(r.steps for r in chosen), restarts=len(chosen),
                    candidates=tuple((r.name, r.val, r.test) for r in runs), notes=tuple(notes))
    return result


def _check_kind(names, kind: str) -> None:
    for name in names:
        critic = CANDIDATES[name][0]
        ok = {"labels": critic == "heads", "noise": critic in ("mixture", "gaussian", "concat", "separable"),
              "continuous": critic in ("separable", "separable-e", "concat", "gauss", "gauss2")}[kind]
        if not ok:
            raise ConfigError(f"candidate {name} does not fit {kind} data; use candidates='auto'")
