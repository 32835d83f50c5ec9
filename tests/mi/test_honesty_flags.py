"""Where the interval cannot be honest: ``small_n``, ``near_ln_batch``, ``candidates_disagree``."""

from dataclasses import replace

import numpy as np

from layerib import estimate_mi
from layerib.mi.result import MIResult


def _r(value, n=2000, b=400, **kw):
    return MIResult(value=value, stderr=0.02, shuffled=None, batch_size=b, ln_batch=float(np.log(b)),
                    n_points=n, n_batches=max(1, n // b), noise_var=None, bound="dv",
                    exceeds_ln_batch=False, critic="gauss", **kw)


def test_small_n_names_its_remedy():
    assert not _r(1.0).small_n
    assert not _r(1.0, n=100, b=100).small_n  # measured: 100 test rows held the truth
    r = _r(1.0, n=20, b=20)
    assert r.small_n and "only 20 test rows (< 100)" in r.flags["small_n"]
    assert "pass at least 500 rows" in r.flags["small_n"]
    assert not replace(r, bound="exact").small_n  # the exact 0 of a constant variable


def test_near_ln_batch_reads_the_value_and_the_reference():
    """A truth of 3.02 just above ln B = 3.00 (B = 20) came back as 1.713: the reference shows it."""
    assert not _r(1.713, n=20, b=20).near_ln_batch
    r = _r(1.713, n=20, b=20, reference_ksg=2.9)
    assert r.near_ln_batch and "KSG reference 2.900" in r.flags["near_ln_batch"]
    assert "ln B = 3.00 (B = 20)" in r.flags["near_ln_batch"]
    assert _r(5.8).near_ln_batch and not _r(5.4).near_ln_batch  # ln 400 = 5.99
    assert not replace(_r(5.8), critic="heads").near_ln_batch  # exact class marginal: no ln B


def test_candidates_disagreeing_beyond_their_intervals_are_named():
    r = _r(0.8, candidates_disagree=("gauss-dv",))
    assert r.candidates_disagree == ("gauss-dv",)
    assert "candidate(s) gauss-dv gave a test value" in r.flags["candidates_disagree"]
    assert "candidates_disagree" not in _r(0.8).flags


def test_small_samples_are_flagged_by_estimate_mi():
    """10-d Gaussians, rho = 0.5, n = 100 (truth 1.438): intervals that missed came unflagged."""
    g = np.random.default_rng(0)
    x = g.standard_normal((100, 10))
    y = 0.5 * x + np.sqrt(0.75) * g.standard_normal((100, 10))
    r = estimate_mi(x, y, restarts=2)
    assert r.small_n and "small_n" in r.flags and r.n_points == 20, str(r)
    assert r.near_ln_batch or r.value < r.ln_batch - 0.5


def test_heavy_tailed_dv_value_is_flagged_with_its_remedy():
    """A DV value no candidate choice would use (its marginal term on fewer than min_ess
    effective pairs) came back unflagged: -28.8 nats beside a Monte-Carlo 3.20 on a CIFAR
    unit (the report's AA-MINE cross-check)."""
    r = _r(-28.8, heavy_tailed=True, marginal_ess=1.0, interval=(-29.8, 3.3))
    assert "heavy_tailed" in r.flags and "negative" not in r.flags  # the interval holds 0
    assert "rests on 1.0 effective marginal pairs" in r.flags["heavy_tailed"]
    assert "InfoNCE" in r.flags["heavy_tailed"] and "Monte-Carlo" in r.flags["heavy_tailed"]
    assert "heavy_tailed" not in _r(1.0).flags
    g = np.random.default_rng(0)
    x = g.standard_normal((600, 2))
    y = x + 0.5 * g.standard_normal((600, 2))
    # every candidate held to an unreachable effective-pairs bar: the one reported is flagged
    strict = estimate_mi(x, y, candidates=("concat-dv",), min_ess=1e9, max_steps=60)
    assert strict.heavy_tailed and strict.marginal_ess is not None and "heavy_tailed" in strict.flags
    usual = estimate_mi(x, y, candidates=("concat-dv",), max_steps=60)
    assert usual.heavy_tailed == (usual.marginal_ess is not None and usual.marginal_ess < 20)
    assert not estimate_mi(x, y, candidates=("separable-infonce",), max_steps=60).heavy_tailed


def test_tail_dependent_flag_only_on_few_test_rows_with_its_remedy():
    """Student-t pairs on 100 test rows missed the truth unflagged (coverage grid, n = 500, 2 of
    12); from 400 test rows on the interval's wider top held it: no flag there. The statistic
    is read on all rows (``tail_rows``, test and pool) and needs three standard errors."""
    r = _r(0.0, n=100, b=100, tail_dependence=0.8, tail_rows=500, interval=(-0.18, 0.29))
    assert r.tail_dependent and "only 100 test rows (< 400)" in r.flags["tail_dependent"]
    assert "pass at least 2000 rows" in r.flags["tail_dependent"]
    assert not _r(0.4, n=400, b=400, tail_dependence=0.8, tail_rows=2000).tail_dependent
    assert not _r(0.4, n=100, b=100, tail_dependence=0.05, tail_rows=500).tail_dependent  # < 0.1
    assert not _r(0.4, n=100, b=100, tail_dependence=0.25, tail_rows=100).tail_dependent  # < 3 se
    assert not _r(0.4, n=100, b=100).tail_dependent  # no statistic (labels, noisy layers)
