"""Constant and collapsed features never crash t-SNE or the clustering measures (issue 15, item 5).

scikit-learn's t-SNE divides by the zero spread of its PCA initialisation on identical
points (a NaN embedding, then a segmentation fault in Barnes-Hut under OMP_NUM_THREADS=1);
a layer trained at beta = 1e2 can output exactly that.
"""

import warnings

import numpy as np
import pytest
import torch

from layerib.analysis.clustering import clustering_report
from layerib.analysis.tsne import is_collapsed, tsne_embedding
from layerib.data.checks import warn_if_constant

N, D = 60, 8
LABELS = np.arange(N) % 10


def _tsne(f):
    return tsne_embedding(f, perplexity=10.0, seed=0, max_iter=250)


def _one_unit(seed=0):
    f = np.zeros((N, D), dtype=np.float32)  # all but one unit constant (ReLU-dead)
    f[:, 3] = np.maximum(np.random.default_rng(seed).normal(size=N), 0)
    return f


@pytest.mark.parametrize("value", [0.0, 0.3, -1e4])
def test_tsne_of_constant_features_warns_and_puts_every_point_at_the_origin(value):
    f = np.full((N, D), value, dtype=np.float32)
    assert is_collapsed(f)
    with pytest.warns(RuntimeWarning, match="all equal"):
        emb = _tsne(f)
    assert emb.shape == (N, 2) and emb.dtype == np.float64 and not emb.any()


def test_tsne_of_rounding_noise_around_a_constant_counts_as_collapsed():
    f = 5.0 + 1e-9 * np.random.default_rng(0).normal(size=(N, D))
    with pytest.warns(RuntimeWarning, match="all equal"):
        assert not _tsne(f).any()


def test_tsne_with_one_varying_unit_or_one_odd_point_is_finite_and_silent():
    odd = np.zeros((N, D))
    odd[0, 0] = 1.0  # all points but one coincide
    for f in (_one_unit(), odd):
        assert not is_collapsed(f)
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            emb = _tsne(f)
        assert emb.shape == (N, 2) and np.isfinite(emb).all() and emb.std() > 0


def test_tsne_of_non_finite_features_is_an_error():
    f = np.zeros((N, D))
    f[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        _tsne(f)


def test_tsne_ignores_scale_and_offset():
    f = np.random.default_rng(1).normal(size=(N, D))
    assert np.allclose(_tsne(f), _tsne(1e-4 * f + 3.0), atol=1e-3)


def test_clustering_report_of_constant_features_is_the_one_point_it_is():
    for f in (np.zeros((N, D)), np.full((N, D), 0.3, dtype=np.float32)):
        with pytest.warns(RuntimeWarning, match="measured as one point"):
            r = clustering_report(f, LABELS, embedding=np.zeros((N, 2)))
        assert r["active_units"] == 0 and r["n_points"] == N
        assert all(v == 1 / N for v in r["distinct_fraction"].values())
        assert r["median_nn_distance"] == 0.0
        assert np.isfinite(r["knn_entropy_nats"]) and np.isfinite(r["knn_entropy_per_dim_nats"])
        assert r["silhouette_by_class"] is None and r["silhouette_by_class_embedding"] is None


def test_clustering_report_with_all_but_one_constant_unit():
    f = _one_unit()
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        r = clustering_report(f, LABELS, embedding=_tsne(f))
    assert r["active_units"] == 1 and r["dim"] == D
    assert 1 / N < r["distinct_fraction"]["0.2"] <= r["distinct_fraction"]["0.01"] <= 1
    for key in ("median_nn_distance", "knn_entropy_nats", "silhouette_by_class",
                "silhouette_by_class_embedding"):
        assert np.isfinite(r[key])


def test_warn_if_constant_names_the_set():
    with pytest.warns(RuntimeWarning, match=r"^training set: the 5 images are all zero; "):
        assert warn_if_constant(torch.zeros(5, 1, 28, 28))
    with pytest.warns(RuntimeWarning, match="digits: the 3 images are all identical"):
        assert warn_if_constant(torch.full((3, 4), 0.5), "digits")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = torch.zeros(4, 3)
        x[2, 1] = 1.0
        assert not warn_if_constant(x)  # one differing pixel is enough
        assert not warn_if_constant(torch.zeros(1, 3))  # one image is not a "constant set"
