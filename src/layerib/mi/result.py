"""One result type for every reported MI estimate: :class:`MIResult` (nats).

Re-exported by :mod:`layerib.mi.protocol`. The flags are derived from the numbers in
``__post_init__`` (so :func:`dataclasses.replace` keeps them consistent) and each raised
flag carries a one-line reason (:attr:`MIResult.flags`). ``str(result)`` never shows the
value bare: value, interval, B and ln B where they apply, flags.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from layerib.mi.bounds import BOUNDS

#: How far below ln B an InfoNCE value counts as saturated (nats). InfoNCE cannot exceed
#: ln B; with the optimal critic it is about ``I - log(1 + (B - 1) exp(-I))`` below the
#: truth, which is already 0.3 nats short at ``I = ln B - 1``.
SATURATION_MARGIN = 1.0

#: A neural value is flagged ``below_reference`` when its rows interval's upper end
#: (``value_neural + 1.96 stderr``) is below a reference's lower end, ``ref - max(1.96 se,
#: REFERENCE_SLACK_NATS)`` with the reference's standard error, or (a reference without one)
#: below it by more than ``max(REFERENCE_SLACK_NATS, REFERENCE_SLACK_FRACTION * reference)``.
REFERENCE_SLACK_NATS = 0.05
REFERENCE_SLACK_FRACTION = 0.10

#: Fewer test rows than this raise ``small_n``. Measured on the coverage grid
#: (``benchmarks/results/coverage.md``): with 20 test rows (n = 100) the bias-aware interval
#: held the truth on about 83 % of estimates, with 100 or more test rows (n >= 500) on 95-100 %.
SMALL_N = 100

#: An estimate or reference within this many nats of ln B (or above it) raises ``near_ln_batch``.
NEAR_LN_B = 0.5

#: The excess correlation of squared normal-score norms taken as tail dependence
#: (:func:`shows_tail_dependence`; every other task of the full coverage grid at
#: n = 500 .. 20 000: -0.25 .. +0.04; Student-t pairs: +0.3 .. +0.8).
TAIL_EXCESS = 0.10
#: Below this many test rows tail dependence raises ``tail_dependent``: on the full coverage
#: grid 2 of 12 Student-t intervals at n = 500 (100 test rows) missed the truth, none of 12
#: at n = 2 000 (400 test rows) or more.
TAIL_MIN_ROWS = 400


def shows_tail_dependence(excess: float | None, n_rows: int | None) -> bool:
    """Whether :func:`~layerib.mi.baselines.tail_dependence`'s ``excess`` on ``n_rows`` rows
    marks a shared-scale (Student-t-like) dependence: above :data:`TAIL_EXCESS` and above
    ``3 / sqrt(n_rows)`` (three standard errors).

    Example:
        >>> shows_tail_dependence(0.8, 4000), shows_tail_dependence(0.03, 4000)
        (True, False)
        >>> shows_tail_dependence(0.25, 100), shows_tail_dependence(0.25, 500)
        (False, True)
    """
    return (excess is not None and n_rows is not None
            and excess > max(TAIL_EXCESS, 3.0 / math.sqrt(max(n_rows, 1))))

_REASONS = {
    "exceeds_ln_batch": "value > ln B = {ln_batch:.2f}: a batch of B = {batch_size} cannot "
                        "reliably show more (McAllester & Stratos 2020); use more samples",
    "saturated": "InfoNCE value within {margin:g} nat of its ceiling ln B = {ln_batch:.2f}: "
                 "the truth may be much higher; a lower bound only",
    "negative": "the 95 % interval [{low:.3f}, {high:.3f}] lies below 0, which no MI is: the "
                "critic failed; read the MI as at most {high_0:.3f}, or try more rows or other "
                "candidates",
    "below_baseline": "the 95 % interval [{low:.3f}, {high:.3f}] lies below the shuffled-pairs "
                      "baseline {shuffled:.3f}: the estimate does not separate dependence from "
                      "independence; give more rows or read the MI as about 0",
    "exceeds_entropy": "value {value:.3f} > H(Y) = {entropy:.3f}, the held-out labels' entropy, "
                       "which no I(Y; L) exceeds: the critic over-fits or the class marginal is "
                       "off; read it as at most H(Y)",
    "small_n": "only {n_points} test rows (< {small_n}): the estimate and its interval rest on "
               "too few rows to be trusted (on the coverage grid such intervals missed the truth "
               "on 15 of 72 at n = 100); pass at least {small_rows} rows (a fifth of them are "
               "test rows)",
    "near_ln_batch": "the estimate {value:.3f}{ref_text} is within {near:g} nats of ln B = "
                     "{ln_batch:.2f} (B = {batch_size}) or above it: batches of B rows cannot "
                     "certify it and the interval cannot be honest; pass more rows (a larger B)",
    "candidates_disagree": "candidate(s) {disagree} gave a test value whose 95 % interval lies "
                           "above this one's [{low:.3f}, {high:.3f}]: lower bounds that disagree "
                           "beyond their intervals; the value is likely low: read the candidates "
                           "(MIResult.candidates) or pass more rows",
    "heavy_tailed": "the {bound} value rests on {ess} effective marginal pairs (fewer than "
                    "20): exp T is heavy-tailed, so the value and its interval are unreliable; use "
                    "the InfoNCE bound (bounds=('infonce',), --bounds infonce), more rows or a "
                    "larger noise variance (for I(X; L + eps), read its Monte-Carlo value)",
    "below_reference": "the neural value {neural:.3f} (interval over rows {neural_low:.3f} .. "
                       "{neural_high:.3f}) lies well below the {ref_name} reference {reference:.3f} "
                       "on the same test rows: the neural critics under-fit and the reference wins "
                       "here{swap}; give more rows or other candidates for a neural value",
    "tail_dependent": "the pair's squared normal-score norms co-vary {tail:+.2f} beyond a Gaussian "
                      "copula's (a shared scale, as in Student-t pairs), where the critics fall far "
                      "short on few rows (on the coverage grid 2 of 12 such intervals on 100 test "
                      "rows missed the truth): only {n_points} test rows (< {tail_rows}); pass at "
                      "least {tail_all} rows",
}


@dataclass(frozen=True)
class MIResult:
    """A reported MI estimate (all values in nats).

    The first ten fields are the original protocol's (:func:`~layerib.mi.protocol.heldout_estimate`);
    the rest have defaults, so those constructors keep working.

    Attributes:
        value: the estimate: mean of the plain bound over held-out rows / batches.
        stderr: its standard error; for :func:`~layerib.mi.estimate.estimate_mi` it covers
            the test rows and the training randomness (see ``interval_method``).
        shuffled: held-out estimate of a critic trained on shuffled (independent) pairs,
            about 0 for a sound estimator; None when not computed.
        batch_size: B of the held-out batches; ln_batch: ln B, what a batch can reliably show.
        n_points: held-out samples used; n_batches: held-out batches averaged.
        noise_var: sigma^2 of the noise added to v (I(U; V + eps)), or None.
        bound: ``"dv"``, ``"nwj"`` or ``"infonce"``.
        exceeds_ln_batch: value > ln B (flagged, not hidden).
        interval: ``(low, high)`` nats, a 95 % interval; None: ``value +- 1.96 stderr``. For
            :func:`~layerib.mi.estimate.estimate_mi` it is bias-aware and asymmetric (the upper
            end reaches the in-sample value, the references and a 10 % allowance for what the
            critic family misses: :func:`layerib.mi.estimate._bias_aware`).
        interval_method: how the interval was made (one line; names what made the upper end).
        critic: critic name; n_train, n_val: rows that trained / early-stopped the critic.
        steps: training steps of the restored (best) critic, per restart.
        restarts: critic restarts averaged into ``value``.
        candidates: ``(name, validation value, test value)`` of every critic/bound tried.
        saturated: InfoNCE within :data:`SATURATION_MARGIN` of ln B (a lower bound only).
        negative: the 95 % interval lies below 0 (``high < 0``). below_baseline: it lies
            below ``shuffled`` (``high < shuffled``); an interval that holds 0 or the
            baseline raises neither (independent data gives values of either sign).
        entropy: for discrete labels, H(Y) of the held-out labels (nats, plug-in), the
            ceiling of any I(Y; L); None otherwise. exceeds_entropy: value > ``entropy``.
        notes: extra one-line remarks (e.g. a candidate that failed numerically).
        reference_cca: Gaussian-copula (CCA) MI of the same test rows less its mean on
            shuffled pairs (:func:`~layerib.mi.baselines.cca_reference` on the normal scores),
            or None where it does not apply (``noise_var``, labels, fewer than 8 test rows
            per dimension). reference_cca_spread: the shuffled values' standard deviation.
        reference_ksg: KSG k-NN MI of the same test rows (:func:`~layerib.mi.baselines.ksg_mi`;
            Ross 2014 for labels), in low dimension only (d_x + d_y <= 10), else None.
        below_reference: the neural rows interval's upper end (``value_neural + 1.96 stderr``)
            is below :attr:`reference_low`: the reference wins there (and is reported).
        small_n: fewer than :data:`SMALL_N` test rows (the interval may miss the truth).
        value_train: the chosen critic's value on its own training rows (in-sample, biased up).
        reference_cca_se, reference_ksg_se: the references' standard errors (nats; CCA: its
            delta-method error and the shuffled spread; KSG: its per-row terms'), None where a
            reference is only shown (CCA on rows with ties, where it is no lower bound).
        value_neural: the neural estimate (restarts' mean test value); ``value`` unless a
            reference is reported. reported: ``"neural"``, ``"CCA"`` or ``"KSG"``: what ``value`` is.
        near_ln_batch: the value or the reference within :data:`NEAR_LN_B` nats of ln B or
            above it (not for the label critic, which has no ln B ceiling).
        candidates_disagree: names of candidates whose test value's 95 % interval (over
            test rows) lies wholly above this interval (all are lower bounds).
        heavy_tailed: no candidate's DV/NWJ marginal term rested on ``min_ess`` effective
            pairs (:func:`~layerib.mi.evaluation.marginal_ess`), so the value reported is one
            the choice would not use; marginal_ess: the reported candidate's effective pairs.
        tail_dependence: on copula-mapped continuous pairs, the correlation of the squared
            normal-score norms beyond a Gaussian copula's
            (:func:`~layerib.mi.baselines.tail_dependence`) on ``tail_rows`` rows (the test
            rows and pool rows, at most 20 000: it describes the pair); where it shows
            (:func:`shows_tail_dependence`) the interval's top allows the critics' larger
            shortfall on such (Student-t-like) pairs and a note says so. None elsewhere (labels,
            ``noise_var``, inputs not copula-mapped, more than 512 dimensions in all).
            tail_dependent: that, on fewer than :data:`TAIL_MIN_ROWS` test rows, where the
            interval may still miss.
    """

    value: float
    stderr: float
    shuffled: float | None
    batch_size: int
    ln_batch: float
    n_points: int
    n_batches: int
    noise_var: float | None
    bound: str
    exceeds_ln_batch: bool
    interval: tuple[float, float] | None = None
    interval_method: str | None = None
    critic: str | None = None
    n_train: int | None = None
    n_val: int | None = None
    steps: tuple[int, ...] = ()
    restarts: int = 1
    candidates: tuple[tuple[str, float, float], ...] = ()
    saturated: bool = field(default=False)
    negative: bool = field(default=False)
    below_baseline: bool = field(default=False)
    notes: tuple[str, ...] = ()
    entropy: float | None = None
    exceeds_entropy: bool = field(default=False)
    reference_cca: float | None = None
    reference_cca_spread: float | None = None
    reference_ksg: float | None = None
    below_reference: bool = field(default=False)
    small_n: bool = field(default=False)
    near_ln_batch: bool = field(default=False)
    candidates_disagree: tuple[str, ...] = ()
    value_train: float | None = None
    reference_cca_se: float | None = None
    reference_ksg_se: float | None = None
    value_neural: float | None = None
    reported: str = "neural"
    heavy_tailed: bool = field(default=False)
    marginal_ess: float | None = None
    tail_dependence: float | None = None
    tail_rows: int | None = None
    tail_dependent: bool = field(default=False)

    def __post_init__(self) -> None:
        v = self.value
        set_ = object.__setattr__
        set_(self, "exceeds_ln_batch", bool(self.exceeds_ln_batch or v > self.ln_batch))
        capped = self.bound in BOUNDS and BOUNDS[self.bound].capped_at_ln_b
        set_(self, "saturated", bool(capped and self.critic != "heads"
                                     and v > self.ln_batch - SATURATION_MARGIN))
        # an interval that holds 0 (or the baseline) is consistent with it: no flag
        set_(self, "negative", bool(self.high < 0))
        set_(self, "below_baseline", bool(self.shuffled is not None and self.high < self.shuffled))
        set_(self, "exceeds_entropy", bool(self.entropy is not None and v > self.entropy))
        ref = self.reference
        measured = self.bound != "exact"  # not the exact 0 of a constant variable
        set_(self, "small_n", bool(measured and self.n_points < SMALL_N))
        set_(self, "tail_dependent", bool(self.n_points < TAIL_MIN_ROWS and shows_tail_dependence(
            self.tail_dependence, self.tail_rows)))
        neural = self.value if self.value_neural is None else self.value_neural
        top = max(v, ref) if ref is not None else v
        set_(self, "near_ln_batch", bool(measured and self.critic != "heads"
                                         and top > self.ln_batch - NEAR_LN_B))
        set_(self, "candidates_disagree", tuple(self.candidates_disagree))
        set_(self, "below_reference", bool(ref is not None and neural + 1.96 * self.stderr
                                           < self.reference_low))

    @property
    def reference(self) -> float | None:
        """The larger of ``reference_cca`` and ``reference_ksg`` (nats), or None without them."""
        refs = [r for r in (self.reference_cca, self.reference_ksg) if r is not None]
        return max(refs) if refs else None

    @property
    def reference_low(self) -> float | None:
        """The lower end a neural value must reach not to be ``below_reference`` (nats): the
        highest of the references' ``ref - max(1.96 se, 0.05)``, or for a reference without a
        standard error ``ref - max(0.05, 10 % of it, 2 reference_cca_spread)``; None without one."""
        lows = []
        for ref, se in ((self.reference_cca, self.reference_cca_se),
                        (self.reference_ksg, self.reference_ksg_se)):
            if ref is None:
                continue
            if se is not None:
                lows.append(ref - max(1.96 * se, REFERENCE_SLACK_NATS))
            else:
                lows.append(ref - max(REFERENCE_SLACK_NATS, REFERENCE_SLACK_FRACTION * ref,
                                      2 * (self.reference_cca_spread or 0.0)))
        return max(lows) if lows else None

    @property
    def reference_name(self) -> str | None:
        """``"CCA"`` or ``"KSG"``: which reference :attr:`reference` is."""
        if self.reference is None:
            return None
        return "CCA" if self.reference == self.reference_cca else "KSG"

    @property
    def low(self) -> float:
        """Lower end of the 95 % interval (nats)."""
        return self.interval[0] if self.interval else self.value - 1.96 * self.stderr

    @property
    def high(self) -> float:
        """Upper end of the 95 % interval (nats)."""
        return self.interval[1] if self.interval else self.value + 1.96 * self.stderr

    @property
    def flags(self) -> dict[str, str]:
        """Each raised flag with its one-line reason, e.g. ``{"negative": "value < 0 ..."}``."""
        fmt = dict(ln_batch=self.ln_batch, batch_size=self.batch_size, value=self.value,
                   shuffled=self.shuffled, margin=SATURATION_MARGIN, entropy=self.entropy,
                   low=self.low, high=self.high, high_0=max(self.high, 0.0),
                   reference=self.reference, ref_name=self.reference_name,
                   n_points=self.n_points, small_n=SMALL_N, near=NEAR_LN_B, small_rows=5 * SMALL_N,
                   neural=self.value if self.value_neural is None else self.value_neural,
                   neural_low=(self.value if self.value_neural is None else self.value_neural)
                   - 1.96 * self.stderr,
                   neural_high=(self.value if self.value_neural is None else self.value_neural)
                   + 1.96 * self.stderr,
                   swap=(f": the {self.reported} value is reported" if self.reported != "neural"
                         else ": read the reference"),
                   ref_text=(f" or the {self.reference_name} reference {self.reference:.3f}"
                             if self.reference is not None else ""),
                   disagree=", ".join(self.candidates_disagree), bound=self.bound,
                   ess="?" if self.marginal_ess is None else f"{self.marginal_ess:.1f}",
                   tail=self.tail_dependence or 0.0, tail_rows=TAIL_MIN_ROWS,
                   tail_all=5 * TAIL_MIN_ROWS)
        return {name: text.format(**fmt) for name, text in _REASONS.items() if getattr(self, name)}

    @property
    def reasons(self) -> tuple[str, ...]:
        """The reasons of :attr:`flags` followed by :attr:`notes`."""
        return tuple(f"{k}: {r}" for k, r in self.flags.items()) + tuple(self.notes)

    def to_dict(self) -> dict:
        """All fields, plus ``low``, ``high`` and ``flags`` (JSON-ready)."""
        d = asdict(self)
        d.update(low=self.low, high=self.high, flags=self.flags)
        return d

    def format(self) -> str:
        """One line: value, interval, B / ln B where it applies, the references, flags."""
        text = f"I = {self.value:.3f} nats [{self.low:.3f}, {self.high:.3f}] ("
        if self.reported != "neural":
            text += f"the {self.reported} reference; neural {self.value_neural:.3f} by "
        text += f"{self.bound}, {self.critic})" if self.critic else f"{self.bound})"
        if self.critic != "heads":
            text += f", B = {self.batch_size}, ln B = {self.ln_batch:.2f}"
        else:  # the label bounds normalise over the exact classes: H(Y) bounds them, not ln B
            ceiling = f"H(Y) = {self.entropy:.3f}" if self.entropy is not None else "H(Y)"
            text += f", B = {self.batch_size} (exact class marginal: no ln B ceiling; {ceiling} bounds it)"
        if self.shuffled is not None:
            text += f", shuffled {self.shuffled:.3f}"
        if self.noise_var is not None:
            text += f", noise var {self.noise_var:g}"
        refs = [f"{k} {v:.3f}" for k, v in (("CCA", self.reference_cca), ("KSG", self.reference_ksg))
                if v is not None]
        if refs:
            text += f"; reference {', '.join(refs)}"
        flags = list(self.flags)
        return text + (f"; FLAGS: {', '.join(flags)}" if flags else "")

    def __str__(self) -> str:
        return self.format()

