"""Fig. 1 of Elad et al. 2019: I(X; L + eps) against the noise variance, MINE vs AA-MINE vs truth."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure


def plot_fig1(rows: list[dict]) -> Figure:
    """MINE, AA-MINE and the Monte-Carlo truth against sigma^2, in nats, with ln B and ln N.

    The x axis is symmetric-log (linear below the smallest positive noise variance), so
    sigma^2 = 0 is drawn at the left edge and the rest on a log scale. Error bars are
    two held-out standard errors. A lower panel shows estimate / truth with a +-5 % band.

    Args:
        rows: one dict per noise variance with the keys of
            :data:`layerib.experiments.fig1.COLUMNS` (``noise_var``, ``truth_nats``,
            ``mine_nats``, ``aa_mine_nats``, their ``*_stderr_nats``, ``ln_batch``,
            ``ln_n_test``, ``batch_size``, ``n_test``, ``layer``), as read from ``fig1.csv``.

    Returns:
        The figure (nothing is shown or saved).

    Raises:
        ValueError: no rows, or no positive noise variance to set the log scale.
    """
    if not rows:
        raise ValueError("plot_fig1 needs at least one row")
    rows = sorted(rows, key=lambda r: r["noise_var"])
    x = np.array([r["noise_var"] for r in rows], dtype=float)
    if not (x > 0).any():
        raise ValueError("plot_fig1 needs a positive noise variance for its log axis")
    fig = Figure(figsize=(7.0, 6.4), layout="constrained")
    ax, ax_ratio = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1.3))
    curves = (("truth", "Monte-Carlo truth", "k", "--", None),
              ("aa_mine", "AA-MINE (critic contains the net)", "C0", "-", "o"),
              ("mine", "MINE (critic on raw x)", "C3", "-", "s"))
    for key, label, colour, style, marker in curves:
        value_key = f"{key}_nats"
        y = np.array([np.nan if r[value_key] is None else r[value_key] for r in rows], dtype=float)
        err = np.array([r[f"{key}_stderr_nats"] or 0.0 for r in rows], dtype=float)
        ax.errorbar(x, y, yerr=2 * err, color=colour, linestyle=style, marker=marker,
                    markersize=4, capsize=2, label=label, zorder=3 if key == "truth" else 2)
    r0 = rows[0]
    ax.axhline(r0["ln_batch"], color="0.5", linestyle=":", linewidth=1)
    ax.axhline(r0["ln_n_test"], color="0.5", linestyle="-.", linewidth=1)
    ax.annotate(f"ln B = {r0['ln_batch']:.2f} (B = {int(r0['batch_size'])})", (x.max(), r0["ln_batch"]),
                ha="right", va="bottom", fontsize=8, color="0.4")
    ax.annotate(f"ln N = {r0['ln_n_test']:.2f} (N = {int(r0['n_test'])} test images)",
                (x.max(), r0["ln_n_test"]), ha="right", va="bottom", fontsize=8, color="0.4")
    linthresh = float(x[x > 0].min())
    ax.set_xscale("symlog", linthresh=linthresh, linscale=0.5)
    ax.set_xlim(-0.15 * linthresh, x.max() * 1.3)
    ax.set_ylabel(rf"$I(X;\,L_{{{int(r0['layer'])}}} + \varepsilon)$ [nats]")
    ax.set_title(f"Random-weight MLP on MNIST inputs, layer {int(r0['layer'])}")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper right", bbox_to_anchor=(1.0, 0.9), fontsize=9)
    _ratio_panel(ax_ratio, rows, x)
    ax_ratio.set_xlabel(r"noise variance $\sigma^2$ (symmetric log scale; 0 at the left edge)")
    return fig


def _ratio_panel(ax, rows: list[dict], x: np.ndarray) -> None:
    """Estimate / truth, with the +-5 % band, where the truth is below ln B - 1 (filled markers)."""
    truth = np.array([r["truth_nats"] for r in rows], dtype=float)
    inside = truth < np.array([r["ln_batch"] for r in rows], dtype=float) - 1.0
    ax.axhspan(0.95, 1.05, color="0.85", zorder=0, label="truth +- 5 %")
    ax.axhline(1.0, color="k", linestyle="--", linewidth=1)
    for key, colour, marker in (("aa_mine", "C0", "o"), ("mine", "C3", "s")):
        est = np.array([np.nan if r[f"{key}_nats"] is None else r[f"{key}_nats"] for r in rows])
        ratio = np.where(truth > 0, est / np.where(truth > 0, truth, 1.0), np.nan)
        ax.plot(x, ratio, color=colour, linewidth=1)
        ax.plot(x[inside], ratio[inside], color=colour, marker=marker, linestyle="none", markersize=4)
        ax.plot(x[~inside], ratio[~inside], color=colour, marker=marker, linestyle="none",
                markersize=4, markerfacecolor="white")
    ax.set_ylim(0.0, 1.5)
    ax.set_ylabel("estimate / truth")
    ax.grid(True, which="major", alpha=0.3)
    ax.text(0.99, 0.86, "filled: truth < ln B - 1 (where a batch estimate can be accurate)",
            transform=ax.transAxes, fontsize=8, color="0.3", ha="right")
