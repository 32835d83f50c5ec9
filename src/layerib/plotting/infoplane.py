"""Information-plane trajectories: (I(X; L_i + eps), I(Y; L_i)) over training, in bits."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

LN2 = math.log(2.0)
_MARKERS = "os^Dvp*hX<>"


def _draw_layer(ax, layer: int, traj: dict, cmap, norm) -> None:
    x = np.asarray(traj["i_x_nats"], dtype=float) / LN2
    y = np.asarray(traj["i_y_nats"], dtype=float) / LN2
    prog = np.asarray(traj["progress"], dtype=float)
    if not (len(x) == len(y) == len(prog)):
        raise ValueError(f"layer {layer}: progress, i_x_nats and i_y_nats differ in length")
    if len(x) > 1:
        seg = np.stack([np.column_stack([x[:-1], y[:-1]]), np.column_stack([x[1:], y[1:]])], 1)
        lc = LineCollection(seg, cmap=cmap, norm=norm, linewidths=1.8)
        lc.set_array(0.5 * (prog[:-1] + prog[1:]))
        ax.add_collection(lc)
    marker = _MARKERS[(layer - 1) % len(_MARKERS)]
    ax.scatter(x, y, c=prog, cmap=cmap, norm=norm, marker=marker, s=30, edgecolors="k",
               linewidths=0.4, zorder=3)
    if len(x):
        ax.annotate(f"L{layer}", (x[-1], y[-1]), textcoords="offset points", xytext=(5, 4),
                    fontsize=9)


def plot_information_plane(panels: dict[str, dict[int, dict]], *, noise_var: float | None = None,
                           batch_size: int | None = None, num_classes: int | None = 10,
                           cmap: str = "viridis") -> Figure:
    """One panel per training method; one curve per layer, coloured by training progress.

    Args:
        panels: ``{title: {layer: {"progress": [...], "i_x_nats": [...], "i_y_nats": [...]}}}``;
            ``progress`` in [0, 1] (fraction of the run's steps), MI in nats
            (plotted in bits). Panels share both axes.
        noise_var: sigma^2 of I(X; L + eps), stated on the x-axis label.
        batch_size: held-out B; a dotted line marks the ceiling log2 B in panels
            whose values come within a factor 1.5 of it.
        num_classes: a dotted line marks H(Y) = log2(num_classes) (balanced classes).
        cmap: colour map of training progress.

    Returns:
        The figure, with a shared colour bar (nothing is shown or saved).

    Raises:
        ValueError: no panels, or a layer whose lists differ in length.
    """
    if not panels:
        raise ValueError("plot_information_plane needs at least one panel")
    fig = Figure(figsize=(5.0 * len(panels) + 1.4, 4.8), layout="constrained")
    # y (I(Y;L), at most H(Y)) is shared; x is not: a layer-wise IB run can sit at
    # a hundredth of the I(X;L+eps) of a CE run, and would be a vertical line beside it
    axes = fig.subplots(1, len(panels), squeeze=False, sharey=True)[0]
    norm, layers_seen, ceiling_drawn = Normalize(0.0, 1.0), set(), False
    for ax, (title, trajs) in zip(axes, panels.items()):
        xmax = 0.0
        for layer in sorted(trajs):
            _draw_layer(ax, layer, trajs[layer], cmap, norm)
            layers_seen.add(layer)
            xmax = max([xmax, *(v / LN2 for v in trajs[layer]["i_x_nats"])])
        if num_classes:
            ax.axhline(math.log2(num_classes), color="0.5", ls=":", lw=1)
        if batch_size and math.log2(batch_size) <= 1.5 * xmax:
            ax.axvline(math.log2(batch_size), color="0.5", ls=":", lw=1)
            ceiling_drawn = True
        ax.set_title(title)
        xl = r"$I(X;\,L_i+\varepsilon)$ [bits]"
        ax.set_xlabel(xl + (rf", $\sigma^2={noise_var:g}$" if noise_var is not None else ""))
        ax.grid(alpha=0.3)
        ax.autoscale_view()
    axes[0].set_ylabel(r"$I(Y;\,L_i)$ [bits]")
    handles = [Line2D([], [], color="0.3", marker=_MARKERS[(k - 1) % len(_MARKERS)], ls="",
                      label=f"layer {k}") for k in sorted(layers_seen)]
    notes = []
    if num_classes:
        notes.append(Line2D([], [], color="0.5", ls=":", label=f"H(Y) = log2 {num_classes}"))
    if ceiling_drawn:
        notes.append(Line2D([], [], color="0.5", ls=":", label=f"log2 B, B = {batch_size}"))
    axes[-1].legend(handles=handles + notes, fontsize=8, loc="lower right")
    sm = fig.colorbar(_mappable(cmap, norm), ax=list(axes), shrink=0.9)
    sm.set_label("training progress (fraction of steps)")
    return fig


def _mappable(cmap, norm):
    from matplotlib.cm import ScalarMappable
    m = ScalarMappable(norm=norm, cmap=cmap)
    m.set_array([])
    return m
