"""t-SNE embeddings (van der Maaten & Hinton 2008) of layer representations, via scikit-learn."""

from __future__ import annotations

import numpy as np


def tsne_embedding(feats: np.ndarray, *, perplexity: float = 30.0, seed: int = 0,
                   max_iter: int = 1000) -> np.ndarray:
    """Embed ``(N, d)`` features in 2-D with scikit-learn's Barnes-Hut t-SNE.

    PCA initialisation, ``learning_rate="auto"`` and a fixed ``seed``, so the
    same features give the same picture. The perplexity is capped at
    ``(N - 1) / 3`` (scikit-learn requires it below N). ``max_iter``: optimisation
    steps (scikit-learn's default 1000; at least 250).

    Returns:
        ``(N, 2)`` float64 embedding.

    Raises:
        ValueError: fewer than 4 points.
    """
    from sklearn.manifold import TSNE

    f = np.asarray(feats, dtype=np.float32)
    if len(f) < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {len(f)}")
    perp = min(perplexity, (len(f) - 1) / 3)
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto",
                random_state=seed, n_jobs=1, max_iter=max_iter)
    return tsne.fit_transform(f).astype(np.float64)
