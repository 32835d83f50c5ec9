"""Quantisation measures of Fig. 3: exact cases, scale invariance, a closed-form entropy."""

import math

import numpy as np
import pytest

from layerib.analysis.clustering import (clustering_report, distinct_fraction, knn_entropy,
                                         normalise)


def _quantised_and_spread(n=400, d=8, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 10
    centres = rng.normal(size=(10, d))
    quantised = centres[labels] + 1e-4 * rng.normal(size=(n, d))
    spread = centres[labels] + 1.0 * rng.normal(size=(n, d))
    return quantised, spread, labels


def test_normalise_is_shift_and_scale_free():
    f = np.random.default_rng(1).normal(size=(50, 4))
    a, b = normalise(f), normalise(7.5 * f - 3.0)
    assert np.allclose(a, b)
    assert math.isclose(float((a ** 2).sum(1).mean()), 1.0, rel_tol=1e-12)
    assert np.all(normalise(np.ones((5, 3))) == 0)  # one point repeated: centred, no division by 0


def test_distinct_fraction_exact_cases():
    dup = np.repeat(np.eye(10) * 5.0, 20, axis=0)  # 10 points, each 20 times
    assert distinct_fraction(dup, 0.01) == 10 / 200
    grid = np.stack(np.meshgrid(np.arange(10.0), np.arange(10.0)), -1).reshape(-1, 2)
    assert distinct_fraction(grid, 0.5) == 1.0  # neighbours 1 apart: nothing merges
    assert distinct_fraction(grid, 100.0) == 1 / 100  # one point covers all


def test_knn_entropy_of_a_gaussian_matches_closed_form():
    # H(N(0, I_2)) = ln(2 pi e) = 2.838 nats; the Kozachenko-Leonenko estimate with
    # N = 2000, k = 3 has a standard deviation of about 0.03 nats here, so 0.1 is > 3 sd.
    x = np.random.default_rng(0).normal(size=(2000, 2))
    assert abs(knn_entropy(x) - math.log(2 * math.pi * math.e)) < 0.1
    with pytest.raises(ValueError, match="needs more than k=3 points"):
        knn_entropy(x[:3])


def test_report_tells_quantised_from_spread_and_ignores_scale():
    q, s, labels = _quantised_and_spread()
    rq, rs = clustering_report(q, labels), clustering_report(s, labels)
    assert rq["distinct_fraction"]["0.05"] == pytest.approx(10 / 400)
    assert rs["distinct_fraction"]["0.05"] > 0.9
    assert rq["median_nn_distance"] < 0.01 * rs["median_nn_distance"]
    assert rq["knn_entropy_per_dim_nats"] < rs["knn_entropy_per_dim_nats"]
    assert rq["silhouette_by_class"] > 0.99 > rs["silhouette_by_class"]
    scaled = clustering_report(1000.0 * s, labels)
    assert scaled["distinct_fraction"] == rs["distinct_fraction"]
    assert scaled["silhouette_by_class"] == pytest.approx(rs["silhouette_by_class"], abs=1e-9)
    assert scaled["knn_entropy_nats"] == pytest.approx(rs["knn_entropy_nats"], abs=1e-6)


def test_report_counts_active_units_and_takes_an_embedding():
    q, _, labels = _quantised_and_spread()
    q = np.concatenate([q, np.zeros((len(q), 3))], axis=1)  # three dead (ReLU-off) units
    r = clustering_report(q, labels, embedding=q[:, :2])
    assert r["dim"] == 11 and r["active_units"] == 8
    assert -1.0 <= r["silhouette_by_class_embedding"] <= 1.0
