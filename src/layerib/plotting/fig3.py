"""Fig. 3 of Elad et al. 2019: t-SNE embeddings of layer-1 representations, one panel per beta."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def _beta_label(beta: float) -> str:
    exp = np.log10(beta) if beta > 0 else None
    if exp is not None and abs(exp - round(exp)) < 1e-9:
        return rf"$\beta = 10^{{{int(round(exp))}}}$"
    return rf"$\beta = {beta:g}$"


def plot_tsne_panels(panels: list[dict], num_classes: int = 10,
                     title: str | None = None) -> Figure:
    """Side-by-side scatter plots of 2-D embeddings, coloured by class, one legend.

    Args:
        panels: one dict per panel with ``beta`` (float), ``embedding``
            ``(N, 2)`` array, ``labels`` ``(N,)`` ints, and optional ``note``
            (a line of text under the panel title, e.g. the measured numbers).
        num_classes: number of classes (colours of the tab10 map).
        title: optional figure title.

    Returns:
        The figure (nothing is shown or saved).

    Raises:
        ValueError: no panels, or an embedding that is not ``(N, 2)`` with N labels.
    """
    if not panels:
        raise ValueError("plot_tsne_panels needs at least one panel")
    fig = Figure(figsize=(5.2 * len(panels) + 1.2, 5.4), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    colours = [f"C{c % 10}" for c in range(num_classes)]
    for k, (ax, p) in enumerate(zip(axes, panels)):
        emb, lab = np.asarray(p["embedding"], dtype=float), np.asarray(p["labels"])
        if emb.ndim != 2 or emb.shape[1] != 2 or len(emb) != len(lab):
            raise ValueError(f"panel {k}: embedding must be (N, 2) with N labels, "
                             f"got {emb.shape} and {lab.shape}")
        for c in range(num_classes):
            sel = lab == c
            ax.scatter(emb[sel, 0], emb[sel, 1], s=4, c=colours[c], label=str(c),
                       linewidths=0, alpha=0.8, rasterized=True)
        head = f"({chr(ord('a') + k)}) {_beta_label(float(p['beta']))}"
        ax.set_title(head + (f"\n{p['note']}" if p.get("note") else ""), fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("t-SNE 1")
        ax.set_ylabel("t-SNE 2")
    axes[-1].legend(title="class", loc="center left", bbox_to_anchor=(1.02, 0.5),
                    markerscale=3, frameon=False)
    if title:
        fig.suptitle(title)
    return fig
