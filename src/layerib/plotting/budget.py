"""Test accuracy against wall-clock minutes, one line per variant (``layerib reproduce budget``)."""

from __future__ import annotations

from matplotlib.figure import Figure


def plot_accuracy_vs_minutes(rows: list[dict], title: str | None = None) -> Figure:
    """Test accuracy (%) against wall minutes (the run with its final report), a line per variant.

    Args:
        rows: ``budget.json``'s rows (``variant``, ``budget_minutes``, ``wall_minutes``,
            ``test_accuracy_percent``).
        title: the figure's title (default: a description of the axes).

    Returns:
        The matplotlib figure (not shown, not saved).

    Example:
        >>> fig = plot_accuracy_vs_minutes([
        ...     {"variant": "ib", "budget_minutes": 15, "wall_minutes": 16.0, "test_accuracy_percent": 80.0},
        ...     {"variant": "ib", "budget_minutes": 45, "wall_minutes": 47.0, "test_accuracy_percent": 84.0}])
        >>> len(fig.axes[0].lines)
        1
    """
    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.add_subplot()
    variants = list(dict.fromkeys(r["variant"] for r in rows))
    for v in variants:
        pts = sorted((r["wall_minutes"], r["test_accuracy_percent"], r["budget_minutes"])
                     for r in rows if r["variant"] == v)
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=v)
        for x, y, b in pts:
            ax.annotate(f"{b:g} min budget", (x, y), textcoords="offset points", xytext=(4, -10),
                        fontsize=7)
    ax.set_xlabel("wall-clock minutes (training + final MI report)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title or "Test accuracy within a wall-clock budget")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
