"""t-SNE embeddings (van der Maaten & Hinton 2008) of layer representations, via scikit-learn."""

from __future__ import annotations

import warnings

import numpy as np

#: Features whose centred spread is at most this fraction of their magnitude (or exactly 0)
#: count as collapsed: in float32 their differences are rounding noise.
COLLAPSE_RTOL = 1e-6


def spread(feats: np.ndarray) -> float:
    """RMS distance of ``(N, d)`` features to their centroid (float64); 0 for identical points."""
    f = np.asarray(feats, dtype=np.float64)
    c = f - f.mean(0, keepdims=True)
    return float(np.sqrt((c ** 2).sum(1).mean())) if len(f) else 0.0


def is_collapsed(feats: np.ndarray, rtol: float = COLLAPSE_RTOL) -> bool:
    """True when all rows of ``(N, d)`` features coincide (up to ``rtol`` of their magnitude)."""
    f = np.asarray(feats, dtype=np.float64)
    s = spread(f)
    return s == 0.0 or s <= rtol * float(np.abs(f).max())


def tsne_embedding(feats: np.ndarray, *, perplexity: float = 30.0, seed: int = 0,
                   max_iter: int = 1000) -> np.ndarray:
    """Embed ``(N, d)`` features in 2-D with scikit-learn's Barnes-Hut t-SNE.

    PCA initialisation, ``learning_rate="auto"`` and a fixed ``seed``, so the
    same features give the same picture. The features are centred and scaled to unit RMS
    distance from their centroid first (t-SNE is invariant to both; it keeps tiny or
    offset features from losing their differences in float32). Features with no spread
    (all points equal, :func:`is_collapsed`: a layer collapsed to constant output) give a
    one-line warning and every point at the origin, instead of scikit-learn dividing by the
    zero spread of its PCA initialisation (a NaN embedding, or a segmentation fault in its
    Barnes-Hut code). The perplexity is capped at
    ``(N - 1) / 3`` (scikit-learn requires it below N). ``max_iter``: optimisation
    steps (scikit-learn's default 1000; at least 250).

    Returns:
        ``(N, 2)`` float64 embedding.

    Raises:
        ValueError: fewer than 4 points, or a non-finite feature.
    """
    from sklearn.manifold import TSNE

    f = np.asarray(feats, dtype=np.float64).reshape(len(feats), -1)
    if len(f) < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {len(f)}")
    if not np.isfinite(f).all():
        raise ValueError("t-SNE: the features hold NaN or infinite values")
    if is_collapsed(f):
        warnings.warn(f"t-SNE: the {len(f)} feature vectors are all equal (collapsed "
                      "representation); every point is put at the origin", RuntimeWarning,
                      stacklevel=2)
        return np.zeros((len(f), 2))
    f = ((f - f.mean(0, keepdims=True)) / spread(f)).astype(np.float32)
    perp = min(perplexity, (len(f) - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto",
                random_state=seed, n_jobs=1, max_iter=max_iter)
    return tsne.fit_transform(f).astype(np.float64)
