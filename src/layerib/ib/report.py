"""Per-layer MI report of a finished net: the Monte-Carlo value first, :func:`layerib.estimate_mi` beside it.

Each layer's I(Y; L_i) and I(X; L_i + eps) are measured the same way for every
method and whatever estimators trained the net, so CE and IB nets are compared on
equal terms (:func:`measure_layer`): :func:`~layerib.mi.estimate.estimate_mi` fits
its "auto" critics on (at most ``max_rows`` of) the training-set features, split
into training and validation rows, with early stopping on the validation bound,
and reports the value on the test-set features, with an interval over test rows
and critic restarts, a shuffled-pairs baseline and its flags. I(Y; L) uses the
labels' exact class marginal; I(X; L + eps) the AA-MINE mixture critic under DV
(Elad et al. 2019, Sec. 3). For a deterministic net the Monte-Carlo value of
I(X; L_i + eps) for X uniform on the test set (Eq. 5) is exact for that empirical input
distribution, so it is the number reported first, with its Monte-Carlo error; the neural
estimate is its cross-check, with the layer's output scale (RMS) and flags (each with a
reason and a remedy) where the neural value is not to be trusted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math

import torch

from layerib.ib.cache import as_tensor
from layerib.ib.layerwise import forward_cached, output_rms
from layerib.mi.critics import label_view
from layerib.mi.estimate import estimate_mi
from layerib.mi.ground_truth import mixture_mi
from layerib.utils.memory import prompt_heap_release, release_free_memory
from layerib.utils.progress import progress_bar

#: relative distance of an I(X; L + eps) estimate from its Monte-Carlo truth beyond which it
#: is flagged ``off_truth`` (where the truth is below ln B - 1, so a batch estimate can reach it;
#: ``truth_beyond_ln_batch`` above that)
TRUTH_TOLERANCE = 0.10

#: float32 bytes of a layer's test features from which its report runs under
#: :func:`~layerib.utils.memory.prompt_heap_release` (256 MiB: VGG unit 1 is 655 MB, an
#: MNIST layer 20 MB, whose report that would slow by a quarter for no memory gain)
HEAP_RELEASE_BYTES = 256 << 20

#: the neural cross-check of I(X; L + eps) (AA-MINE) beside its Monte-Carlo value, which is
#: the number reported: one critic training (no restarts), on at most this many of the
#: training rows, validated every 50 steps with early stopping after 2 checks without
#: improvement, and no shuffled-pairs baseline (the Monte-Carlo value is its reference). On
#: the default MNIST run these values are those of 3 restarts on 10 000 rows within their
#: intervals, for a third of the time (docs/performance.md)
CHECK_ROWS = 5000
CHECK_FIT = {"eval_every": 50, "patience": 2}

#: I(Y; L)'s shuffled-pairs baseline (truth 0) is fitted only when the lower end of the
#: value's 95 % interval is below this many nats: a held-out lower bound averages <= 0 on
#: independent pairs, so above it the interval already excludes 0 by more than a baseline
#: could add
BASELINE_BELOW = 0.1


def mi_flags(value: float, truth: float | None, ln_b: float, bound: str,
             interval: tuple[float, float] | None = None, truth_stderr: float = 0.0) -> list[str]:
    """Flags of one reported I(X; L + eps) estimate (nats): ``non_finite``, ``negative`` (the
    95 % ``interval`` lies below 0; without one, the value does),
    ``exceeds_ln_batch``, ``saturated`` (InfoNCE within 1 % of ln B), ``off_truth`` (more than
    :data:`TRUTH_TOLERANCE` from a Monte-Carlo truth that is below ln B - 1, and, when the
    estimate's 95 % ``interval`` is given, that interval widened by two of the truth's
    standard errors misses the truth: an interval that holds the truth is consistent with it,
    however small both are), ``truth_beyond_ln_batch`` (as far from a truth of ln B - 1 or
    more, whatever the interval: a held-out estimate from batches of B rows cannot be relied
    on there; McAllester & Stratos 2020)."""
    if not math.isfinite(value):
        return ["non_finite"]
    flags = []
    if (interval[1] if interval is not None else value) < 0:  # an interval holding 0: no flag
        flags.append("negative")
    if value > ln_b:
        flags.append("exceeds_ln_batch")
    if bound == "infonce" and value >= 0.99 * ln_b:
        flags.append("saturated")
    if truth is not None and abs(value - truth) > TRUTH_TOLERANCE * max(truth, 1e-3):
        if truth >= ln_b - 1:
            flags.append("truth_beyond_ln_batch")
        elif interval is None or not (interval[0] - 2 * truth_stderr <= truth
                                      <= interval[1] + 2 * truth_stderr):
            flags.append("off_truth")
    return flags


#: reason and remedy of each :func:`mi_flags` flag of an I(X; L + eps) estimate beside its
#: Monte-Carlo truth (formatted by :func:`truth_flag_reasons`)
TRUTH_FLAG_REASONS = {
    "non_finite": "the neural estimate is not finite: read the Monte-Carlo value {truth:.3f}",
    "negative": "the neural estimate's 95 % interval [{low:.3f}, {high:.3f}] lies below 0: the "
                "critic failed; read the Monte-Carlo value {truth:.3f}",
    "exceeds_ln_batch": "the neural estimate {value:.3f} > ln B = {ln_b:.2f} of its batches of "
                        "B = {b}: batches that small cannot certify it; read the Monte-Carlo value",
    "saturated": "InfoNCE estimate within 1 % of its ceiling ln B = {ln_b:.2f}: a lower bound only; "
                 "read the Monte-Carlo value {truth:.3f}",
    "off_truth": "the neural estimate {value:.3f} [{low:.3f}, {high:.3f}] misses the Monte-Carlo "
                 "value {truth:.3f} +- {truth_se:.3f} (exact for these rows, paper Eq. 5) by more "
                 "than 10 %: read the Monte-Carlo value; for a closer neural check pass more rows",
    "truth_beyond_ln_batch": "noise variance too small for B: the Monte-Carlo value {truth:.3f} "
                             "is within 1 nat of or above ln B = {ln_b:.2f} (B = {b}), which a "
                             "neural estimate from batches of B rows cannot reach; read the "
                             "Monte-Carlo value, or raise --noise-var (noise_var=) for a neural "
                             "check",
}


def truth_flag_reasons(result, truth: float | None, truth_stderr: float = 0.0) -> dict[str, str]:
    """:func:`mi_flags` of an I(X; L + eps) estimate against its Monte-Carlo truth (nats), each
    with its reason and remedy (:data:`TRUTH_FLAG_REASONS`); the flags ``result`` (an
    :class:`~layerib.mi.result.MIResult`) raises itself keep its own reasons.

    The same checks run for every critic and bound, the defaults and named ones
    (``layerib estimate --critics/--bounds``, ``candidates=(...)``).

    Example:
        >>> from layerib.mi.result import MIResult
        >>> r = MIResult(value=1.744, stderr=0.02, shuffled=None, batch_size=512, ln_batch=6.24,
        ...              n_points=2000, n_batches=4, noise_var=1.0, bound="dv", exceeds_ln_batch=False)
        >>> list(truth_flag_reasons(r, 2.857, 0.01))
        ['off_truth']
    """
    names = mi_flags(result.value, truth, result.ln_batch, result.bound, (result.low, result.high),
                     truth_stderr)
    fmt = dict(value=result.value, low=result.low, high=result.high, ln_b=result.ln_batch,
               b=result.batch_size, truth=math.nan if truth is None else truth, truth_se=truth_stderr)
    own = result.flags
    return {k: own.get(k) or TRUTH_FLAG_REASONS[k].format(**fmt) for k in names}


def measure_layer(f: torch.Tensor, y: torch.Tensor | None, f_test: torch.Tensor,
                  y_test: torch.Tensor | None, noise_var: float, *, seed: int = 0,
                  max_rows: int = 10000, mc_samples: int = 2048, check_rows: int = CHECK_ROWS,
                  check_restarts: int = 1, y_view: torch.nn.Module | None = None,
                  **options) -> dict:
    """One layer's report entry: the Monte-Carlo I(X; L + eps), its neural cross-check, and I(Y; L).

    Args:
        f, f_test: the layer's training / test features ``(N, ...)`` / ``(N_test, ...)``
            (tensors, or :class:`~layerib.ib.cache.DiskRows`), flattened here.
        y, y_test: int64 labels ``(N,)`` / ``(N_test,)``, or None (no I(Y; L)).
        noise_var: sigma^2 > 0 of the measuring noise eps.
        seed: seeds the row subset, the splits, the critics and the Monte-Carlo truth.
        max_rows: at most this many training rows (a seeded random subset) fit the critics.
        mc_samples: Monte-Carlo samples of the truth.
        check_rows, check_restarts: training rows (at most; the first of the same subset) and
            critic trainings of the AA-MINE cross-check of I(X; L + eps) (:data:`CHECK_ROWS`;
            it validates as :data:`CHECK_FIT` unless ``eval_every``/``patience`` are given and
            never fits a baseline: the Monte-Carlo value is its reference).
        y_view: what I(Y; L)'s critic reads of the flattened features (a
            :class:`~layerib.mi.critics.MapPool`: each channel of a conv map averaged over a
            K x K grid, as the layer-wise label critic reads it with ``TrainConfig.y_pool``);
            None: the flattened features. A critic of the view is a critic of L, so the value
            is a lower bound on I(Y; L) all the same (data processing); on wide conv layers
            it is many times cheaper.
        **options: :class:`~layerib.mi.settings.EstimatorSettings` fields (``restarts``
            applies to I(Y; L); ``baseline=True``, the default, fits I(Y; L)'s shuffled-pairs
            baseline where its interval's lower end is below :data:`BASELINE_BELOW` nats,
            ``False`` never).

    Returns:
        ``i_x_monte_carlo_nats`` / ``_stderr``: the number to read for I(X; L + eps), the
        Monte-Carlo value for X uniform on the test rows (exact for that empirical input
        distribution up to its Monte-Carlo error; Elad et al. 2019, Eq. 5;
        :func:`~layerib.mi.ground_truth.mixture_mi`), marked by ``i_x_first: "monte_carlo"``;
        ``i_x_nats`` (the neural AA-MINE cross-check), ``i_y_nats`` (None without labels),
        ``i_x``, ``i_y`` (their :class:`MIResult` dicts), ``output_rms`` of the test
        features, ``noise_var``, ``batch_size`` (held-out B), ``flags``: :func:`mi_flags` of
        I(X; L + eps) plus the flags of both results (``i_y_`` prefixed), and
        ``flag_reasons``: each flag's one-line reason and remedy.

    Raises:
        ConfigError: too few rows to split (estimate_mi needs >= 16 per split), bad options.
        NumericalError: every candidate critic diverged.
    """
    big = math.prod(f_test.shape) * 4 >= HEAP_RELEASE_BYTES  # wide layers: temporaries go
    with prompt_heap_release() if big else contextlib.nullcontext():  # back when freed
        return _measure_layer(f, y, f_test, y_test, noise_var, seed=seed, max_rows=max_rows,
                              mc_samples=mc_samples, check_rows=check_rows,
                              check_restarts=check_restarts, y_view=y_view, **options)


def check_subset(f: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """At most ``n`` rows of ``f`` ``(N, d)``: a seeded random subset (all of them if fewer)."""
    if len(f) <= n:
        return f
    return f[torch.randperm(len(f), generator=torch.Generator().manual_seed(seed + 1))[:n]]


def check_options(options: dict, restarts: int = 1) -> dict:
    """estimate_mi options of the I(X; L + eps) cross-check: ``options`` with
    :data:`CHECK_FIT` (where not given), ``restarts`` and no baseline."""
    fit = {k: v for k, v in CHECK_FIT.items() if k not in options}
    if "eval_every" in fit:  # no later than the step limit
        fit["eval_every"] = min(fit["eval_every"], options.get("max_steps", fit["eval_every"]))
    return {**options, **fit, "restarts": restarts, "baseline": False}


def report_y_candidates(num_classes: int, eval_batch_size: int) -> tuple[str, ...] | None:
    """The report's I(Y; L) candidates: ``("heads-infonce",)`` alone where InfoNCE's ceiling
    ln B is at least 1 nat above ln K >= H(Y) (it cannot saturate below the truth, and it has
    the lower variance), else None (:func:`estimate_mi`'s ``auto`` pair, heads-InfoNCE and
    heads-DV). On the default MNIST run (B = 500, K = 10) heads-InfoNCE was the chosen
    candidate on every layer; the rule halves I(Y; L)'s cost (docs/performance.md).

    Example:
        >>> report_y_candidates(10, 500), report_y_candidates(10, 16)
        (('heads-infonce',), None)
    """
    return ("heads-infonce",) if math.log(eval_batch_size) >= math.log(num_classes) + 1 else None


def estimate_y_report(x, y, *, seed: int, test=None, overwrite: bool = False, **options):
    """:func:`estimate_mi` of I(Y; L) (integer ``y``) with the report's candidates
    (:func:`report_y_candidates`, unless ``candidates`` is given); with ``baseline=True``
    (the default) its shuffled-pairs baseline only where the interval needs one (lower end
    below :data:`BASELINE_BELOW` nats): then the same fits again with it (same seed, same
    value); otherwise a note says why there is none."""
    want = options.pop("baseline", True)
    extra = ()
    if "candidates" not in options:
        k = int(max(int(torch.as_tensor(y).max()), int(torch.as_tensor(test[1]).max())
                    if test is not None else 0)) + 1
        n_test = len(test[1]) if test is not None else len(y) // 4  # B is at most the test rows
        b = max(2, min(options.get("eval_batch_size", 512), n_test))
        only = report_y_candidates(max(k, 2), b)
        if only is not None:
            options = {**options, "candidates": only}
            extra = (f"one candidate, heads-InfoNCE: its ceiling ln B = {math.log(b):.2f} is "
                     f"above ln K = {math.log(max(k, 2)):.2f} >= H(Y) by 1 nat or more",)
    r = estimate_mi(x, y, seed=seed, test=test, overwrite=overwrite, baseline=False, **options)
    r = dataclasses.replace(r, notes=r.notes + extra) if extra else r
    if not want:
        return r
    if r.low < BASELINE_BELOW:  # (overwritten rows hold their copula map: its map is itself)
        r = estimate_mi(x, y, seed=seed, test=test, overwrite=overwrite, baseline=True, **options)
        return dataclasses.replace(r, notes=r.notes + extra) if extra else r
    return dataclasses.replace(r, notes=r.notes + (
        f"shuffled-pairs baseline not fitted: the interval's lower end {r.low:.3f} is above "
        f"{BASELINE_BELOW:g} nats, which a baseline (truth 0) cannot change",))


def _measure_layer(f, y, f_test, y_test, noise_var: float, *, seed: int, max_rows: int,
                   mc_samples: int, check_rows: int, check_restarts: int,
                   y_view: torch.nn.Module | None = None, **options) -> dict:
    # In the order that holds the fewest large arrays at once: the truth and the scale on the
    # test features alone, then the training rows for I(X; L + eps), then I(Y; L), whose copula
    # map may overwrite rows read here for it (not the caller's tensors): the same values.
    owned_test = not isinstance(f_test, torch.Tensor)  # read from disk here
    f_test = as_tensor(f_test).flatten(1)
    mc = mixture_mi(f_test, noise_var, n_samples=mc_samples,  # float64 inside, distinct rows only
                    generator=torch.Generator().manual_seed(seed))
    rms = output_rms(f_test)
    release_free_memory()
    owned = len(f) > max_rows or not isinstance(f, torch.Tensor)
    if len(f) > max_rows:  # the seeded subset, read alone (f may be on disk)
        keep = torch.randperm(len(f), generator=torch.Generator().manual_seed(seed))[:max_rows]
        f, y = f[keep], (None if y is None else y[keep])
    f = as_tensor(f).flatten(1)
    width = f.shape[1]
    x_opts = check_options(options, check_restarts)
    def note_x(rows: int) -> tuple[str]:
        return (f"the cross-check of the Monte-Carlo value: {check_restarts} critic training(s) "
                f"on {rows} rows, no baseline (the Monte-Carlo value is the reference)",)
    note_y = () if y_view is None else (
        f"I(Y;L)'s critic reads each channel of the {tuple(y_view.shape)} map averaged over a "
        f"{y_view.grid[0]} x {y_view.grid[1]} grid ({y_view.out_dim} inputs; a lower bound on "
        "I(Y;L) all the same)",)
    if len(f) >= 48:  # the critics fit on training rows, the value is on the test rows
        fx = check_subset(f, check_rows, seed)
        rx = estimate_mi(fx, fx, noise_var=noise_var, seed=seed, test=(f_test, f_test), **x_opts)
        rx = dataclasses.replace(rx, notes=rx.notes + note_x(len(fx)))
        del fx
        if y is not None and y_view is not None:
            f, f_test = forward_cached(y_view, f), forward_cached(y_view, f_test)
            owned = owned_test = True
        ry = (estimate_y_report(f, y, seed=seed, test=(f_test, y_test), overwrite=owned and owned_test,
                          **options) if y is not None else None)
    else:  # too few training rows to split: estimate_mi splits the test rows itself (noted)
        note = (f"only {len(f)} training rows: critics fitted and tested on splits of the "
                f"{len(f_test)} test rows",)
        rx = estimate_mi(f_test, f_test, noise_var=noise_var, seed=seed, **x_opts)
        rx = dataclasses.replace(rx, notes=rx.notes + note_x(len(f_test)) + note)
        ry = None
        if y is not None:
            fy = f_test if y_view is None else forward_cached(y_view, f_test)
            ry = estimate_y_report(fy, y_test, seed=seed, **options)
            ry = dataclasses.replace(ry, notes=ry.notes + note)
    del f, f_test
    release_free_memory()
    reasons = {**truth_flag_reasons(rx, mc.value, mc.stderr),
               **rx.flags}
    reasons.update({f"i_y_{k}": v for k, v in (ry.flags.items() if ry is not None else ())})
    return {"width": width, "i_y_nats": None if ry is None else ry.value,
            "i_x_nats": rx.value, "i_x_monte_carlo_nats": mc.value,
            "i_x_monte_carlo_stderr": mc.stderr, "i_x_first": "monte_carlo",
            "batch_size": rx.batch_size, "noise_var": noise_var, "output_rms": rms,
            "flags": list(reasons), "flag_reasons": reasons,
            "i_y": None if ry is None else dataclasses.replace(ry, notes=ry.notes + note_y).to_dict(),
            "i_x": rx.to_dict()}


def layer_mi_report(feats: list[torch.Tensor], y: torch.Tensor, feats_test: list[torch.Tensor],
                    y_test: torch.Tensor, prior: torch.Tensor, cfg, seed: int = 0,
                    progress: bool = False,
                    shapes: list[tuple[int, ...]] | None = None) -> list[dict]:
    """One :func:`measure_layer` dict per layer, with ``index`` (1-based), for a run's result.json.

    Args:
        feats, feats_test: per-layer features ``(N, d_i)`` / ``(N_test, d_i)`` (tensors, or
            :class:`~layerib.ib.cache.DiskRows` read per layer).
        y, y_test: int64 labels; prior: ``(num_classes,)`` training class frequencies
            (unused: estimate_mi takes the class marginal from the labels it fits on).
        cfg: the run's :class:`~layerib.config.TrainConfig`: ``noise_var``,
            ``mi_eval_batch_size`` (held-out batch B), ``mi_restarts``, ``mi_baseline``,
            ``mi_max_rows``, ``mi_max_steps``.
        progress: show a progress bar over layers.
        shapes: each layer's unflattened output shape (one row); with ``cfg.y_pool >= 1`` the
            I(Y; L) critic of a ``(C, H, W)`` layer reads its ``y_pool x y_pool`` channel
            averages, as the layer-wise label critic does (``y_view`` of :func:`measure_layer`).
    """
    del prior
    out = []
    options = dict(eval_batch_size=max(2, min(cfg.mi_eval_batch_size, len(y_test) // 2)),
                   restarts=cfg.mi_restarts, baseline=cfg.mi_baseline,
                   max_steps=cfg.mi_max_steps)
    if cfg.mi_max_steps < 100:  # validate within the step limit (estimate_mi's default: 100)
        options["eval_every"] = cfg.mi_max_steps
    bar = progress_bar(total=len(feats), desc="MI report", enabled=progress, leave=False)
    for i, (f, ft) in enumerate(zip(feats, feats_test), start=1):
        release_free_memory()  # what training left free but resident, before the largest arrays
        view = label_view(shapes[i - 1], cfg.y_pool) if shapes is not None else None
        entry = measure_layer(f, y, ft, y_test, cfg.noise_var, seed=seed + i,
                              max_rows=cfg.mi_max_rows, y_view=view, **options)
        out.append({"index": i, **entry})
        bar.update()
    bar.close()
    return out
