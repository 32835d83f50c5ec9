"""How clustered ("quantised") a representation is: the numbers behind Fig. 3.

Elad et al. 2019 (Sec. 4, Fig. 3) say that a large beta makes the first
layer's representation "quantised": fewer effective points, a smaller
effective support, lower differential entropy. These functions measure that
on a set of representations ``(N, d)``, each invariant to a global rescaling
of the representation (the IB penalty with a fixed noise variance can also
just shrink the layer's output, which is not quantisation):

* :func:`normalise`: centre and divide by the RMS distance to the centroid.
* :func:`distinct_fraction`: fraction of points that stay distinct when points
  closer than ``tol`` (in normalised units) are merged (greedy leader clustering).
* :func:`knn_entropy`: the Kozachenko-Leonenko k-NN estimate of the
  differential entropy of the normalised representation (nats).
* :func:`clustering_report`: all of them, plus silhouette scores by class.
"""

from __future__ import annotations

import math
import warnings

import numpy as np

#: Tolerances (normalised units: RMS distance to the centroid = 1) of :func:`clustering_report`.
TOLERANCES = (0.01, 0.05, 0.1, 0.2)


def normalise(feats: np.ndarray) -> np.ndarray:
    """Centre ``(N, d)`` features and scale them to RMS distance 1 from their centroid.

    A representation whose points all coincide is returned centred (all zeros).
    """
    f = np.asarray(feats, dtype=np.float64)
    f = f - f.mean(0, keepdims=True)
    rms = math.sqrt(float((f ** 2).sum(1).mean()))
    return f / rms if rms > 0 else f


def _sq_dists(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    d = (a ** 2).sum(1)[:, None] + (b ** 2).sum(1)[None, :] - 2 * a @ b.T
    return np.maximum(d, 0.0)


def distinct_fraction(feats: np.ndarray, tol: float) -> float:
    """Fraction of the ``N`` points left when points within ``tol`` of a kept one merge.

    Greedy leader clustering in the given order: the first uncovered point is
    kept and covers every point within Euclidean distance ``tol``. Returns
    ``kept / N`` in ``(0, 1]``: 1 means no two points are within ``tol``.
    Use normalised features (:func:`normalise`) so ``tol`` is scale-free.
    """
    f = np.asarray(feats, dtype=np.float64)
    n = len(f)
    covered = np.zeros(n, dtype=bool)
    kept, t2 = 0, tol * tol
    for i in range(n):
        if covered[i]:
            continue
        kept += 1
        rest = np.flatnonzero(~covered)
        covered[rest[_sq_dists(f[i:i + 1], f[rest])[0] <= t2]] = True
    return kept / n


def knn_entropy(feats: np.ndarray, k: int = 3, floor: float = 1e-6) -> float:
    """Kozachenko-Leonenko estimate of the differential entropy of ``(N, d)`` samples (nats).

    ``H = psi(N) - psi(k) + log V_d + (d / N) sum_i log r_i``, ``r_i`` the
    distance to the k-th nearest neighbour and ``V_d`` the unit ball's volume.
    Coinciding points (a truly quantised set) would give ``-inf``; distances
    are floored at ``floor`` so the value stays finite and falls with it.
    """
    from scipy.special import digamma, gammaln
    from sklearn.neighbors import NearestNeighbors

    f = np.asarray(feats, dtype=np.float64)
    n, d = f.shape
    if n <= k:
        raise ValueError(f"knn_entropy needs more than k={k} points, got {n}")
    dist, _ = NearestNeighbors(n_neighbors=k + 1).fit(f).kneighbors(f)
    r = np.maximum(dist[:, k], floor)
    log_vd = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1)
    return float(digamma(n) - digamma(k) + log_vd + d * np.log(r).mean())


def clustering_report(feats: np.ndarray, labels: np.ndarray,
                      embedding: np.ndarray | None = None) -> dict:
    """Scale-free measures of clustering of representations ``(N, d)`` with labels ``(N,)``.

    Returns a dict with ``n_points``, ``dim``, ``active_units`` (units not
    constant over the set), ``distinct_fraction`` (one value per tolerance in
    :data:`TOLERANCES`, keys as strings), ``median_nn_distance`` (normalised),
    ``knn_entropy_nats`` and ``knn_entropy_per_dim_nats`` (of the normalised
    active units), ``silhouette_by_class`` (Euclidean, on the representation)
    and, when ``embedding`` ``(N, 2)`` is given, ``silhouette_by_class_embedding``.

    A collapsed representation (no unit varies over the set: every point the same, as a
    layer with constant output gives) is measured as the single point it is, with a one-line
    warning: ``distinct_fraction`` 1/N at every tolerance, ``median_nn_distance`` 0, the
    k-NN entropy at its floor (:func:`knn_entropy` of coinciding points) and the
    silhouettes None (undefined for one point); so is an embedding whose points coincide.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.neighbors import NearestNeighbors

    f = np.asarray(feats, dtype=np.float64)
    labels = np.asarray(labels)
    active = f.std(0) > 1e-12 * max(float(np.abs(f).max()), 1e-30)
    collapsed = not active.any()
    if collapsed:
        warnings.warn(f"clustering_report: the {len(f)} feature vectors are all equal (no unit "
                      "varies); measured as one point", RuntimeWarning, stacklevel=2)
    fn = normalise(f[:, active]) if not collapsed else np.zeros((len(f), 1))
    nn, _ = NearestNeighbors(n_neighbors=2).fit(fn).kneighbors(fn)
    h = knn_entropy(fn)
    many_classes = 1 < len(np.unique(labels)) < len(f)
    out = {
        "n_points": int(len(f)), "dim": int(f.shape[1]), "active_units": int(active.sum()),
        "distinct_fraction": {str(t): distinct_fraction(fn, t) for t in TOLERANCES},
        "median_nn_distance": float(np.median(nn[:, 1])),
        "knn_entropy_nats": h, "knn_entropy_per_dim_nats": h / fn.shape[1],
        "silhouette_by_class": (float(silhouette_score(fn, labels))
                                if many_classes and not collapsed else None),
    }
    if embedding is not None:
        emb = np.asarray(embedding, dtype=np.float64)
        spread = bool(np.isfinite(emb).all() and (emb.std(0) > 0).any())
        out["silhouette_by_class_embedding"] = (float(silhouette_score(emb, labels))
                                                if many_classes and spread else None)
    return out
