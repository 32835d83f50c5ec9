"""The bias-aware 95 % interval of ``estimate_mi`` and the references as values (nats)."""

import math

import numpy as np
import pytest

from layerib import estimate_mi
from layerib.mi.estimate import BIAS_ALLOWANCE, _bias_aware
from layerib.mi.tasks import student_task


def test_the_upper_end_reaches_the_in_sample_value_the_allowance_and_the_references():
    reported, (low, high, value), method = _bias_aware(1.0, 0.05, 1.3, 1.0, {}, "rows")
    assert reported == "neural" and value == 1.0
    assert low == pytest.approx(0.902) and high == pytest.approx(1.3) and "in-sample" in method
    _, (_, high, _), method = _bias_aware(1.0, 0.05, 0.9, 1.2, {}, "rows")  # best candidate 1.2
    assert high == pytest.approx(1.2 * (1 + BIAS_ALLOWANCE) + 0.098) and "best candidate" in method
    refs = dict(reference_ksg=1.1, reference_ksg_se=0.1)  # above, but its interval overlaps
    reported, (_, high, value), method = _bias_aware(1.0, 0.05, 0.9, 1.0, refs, "rows")
    assert reported == "neural" and value == 1.0 and high == pytest.approx(1.296) and "KSG" in method


def test_a_reference_above_the_neural_interval_is_reported_and_one_with_ties_only_shown():
    refs = dict(reference_cca=1.5, reference_cca_se=0.05)
    reported, (low, high, value), method = _bias_aware(1.0, 0.05, 1.05, 1.0, refs, "rows")
    assert reported == "CCA" and value == 1.5 and "CCA reference reported" in method
    assert low == pytest.approx(0.902) and high == pytest.approx(1.5 * 1.1 + 0.098)
    # CCA on rows with ties is no lower bound: no standard error, neither value nor interval
    reported, (_, high, value), _ = _bias_aware(1.0, 0.05, 1.05, 1.0, dict(reference_cca=1.5), "rows")
    assert reported == "neural" and value == 1.0 and high < 1.5


def _noise_pair(n, seed):
    """X ~ U[0, 1], Y = X + N(0, 0.1^2): I = h(Y) - h(noise) = 1.0643 nats (numerical integration,
    ``benchmarks/bench_coverage.py``'s additive-noise task)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(size=(n, 1))
    return x, x + 0.1 * rng.standard_normal((n, 1))


@pytest.mark.parametrize("case", ["additive noise, n = 500",
                                  pytest.param("Student-t 3-d, n = 2000", marks=pytest.mark.slow)])
def test_the_interval_holds_the_truth_where_the_rows_interval_missed(case):
    """Two draws of the coverage grid whose rows-and-restarts interval missed the truth:
    0.814 [0.686, 0.943] for 1.064 and 1.010 [0.875, 1.145] for 1.179 (seed 0 of each)."""
    if case.startswith("additive"):
        (x, y), truth = _noise_pair(500, 100), 1.0643
    else:
        task = student_task(3, 1.0, 3.0)
        (x, y), truth = task.sample(2000, seed=100), task.mi
    r = estimate_mi(x, y, seed=0)
    rows_high = r.value_neural + 1.96 * r.stderr
    assert rows_high < truth, "the case no longer shows the old miss"
    assert r.low <= truth <= r.high, str(r)
    assert r.interval_method.startswith("bias-aware"), r.interval_method


def test_a_named_critic_goes_through_the_same_checks():
    g = np.random.default_rng(4)
    x = g.standard_normal((1000, 2))
    y = 0.8 * x + 0.6 * g.standard_normal((1000, 2))  # MI = -ln 0.36 = 1.022 nats
    r = estimate_mi(x, y, candidates=("gauss-dv",), restarts=1, baseline=False)
    assert r.value_train is not None and r.reference_cca_se is not None and r.reference_ksg_se
    assert r.interval_method.startswith("bias-aware") and r.low <= -math.log(0.36) <= r.high, str(r)


def test_a_label_interval_ends_at_the_label_entropy():
    """No I(Y; L) exceeds H(Y): the upper end of a label interval is capped at the test labels'
    entropy, corrected for its low bias, and at ln K (seen on the default MNIST run: 2.215
    [2.203, 2.448] with H(Y) = 2.301)."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 4, 800)
    x = np.eye(4)[y] + 0.05 * rng.standard_normal((800, 4))  # L determines Y: I = H(Y) ~ ln 4
    r = estimate_mi(x.astype(np.float32), y, seed=0, restarts=1, baseline=False, max_steps=300)
    assert r.entropy == pytest.approx(math.log(4), abs=0.01)
    # the cap: the plug-in H(Y) of the 160 test labels + (K - 1) / (2 N), at most ln K
    cap = min(math.log(4), r.entropy + 3 / (2 * r.n_points))
    assert r.low <= r.value <= r.high == pytest.approx(cap, abs=1e-12)
    assert "high capped at" in r.interval_method and "Miller-Madow" in r.interval_method
