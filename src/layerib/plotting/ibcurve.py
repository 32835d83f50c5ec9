"""The IB curve: test accuracy and per-layer MI against beta, mean and spread over seeds."""

from __future__ import annotations

from matplotlib.figure import Figure


def _band(ax, xs, stats, color, label, marker="o"):
    means = [s["mean"] for s in stats]
    stds = [s["std"] for s in stats]
    ax.plot(xs, means, marker=marker, color=color, label=label)
    ax.fill_between(xs, [m - s for m, s in zip(means, stds)], [m + s for m, s in zip(means, stds)],
                    color=color, alpha=0.2, linewidth=0)
    for x, s in zip(xs, stats):  # every seed, so the spread is visible with 2-3 seeds too
        ax.scatter([x] * len(s["values"]), s["values"], s=8, color=color, alpha=0.5)


def _baseline(ax, stats, color, label):
    ax.axhline(stats["mean"], color=color, ls="--", lw=1.2, label=label)
    if stats["std"] > 0:
        ax.axhspan(stats["mean"] - stats["std"], stats["mean"] + stats["std"], color=color,
                   alpha=0.08, linewidth=0)


def plot_ib_curve(curve: dict, title: str | None = None) -> Figure:
    """Three panels against beta (log axis): test accuracy, I(X; L_i + eps), I(Y; L_i).

    Args:
        curve: what :func:`layerib.experiments.ibcurve.aggregate` returns:
            ``"ib"``, a list over beta of ``{"beta", "test_accuracy",
            "layers": [{"index", "i_x_nats", "i_y_nats"}]}`` where each
            quantity is ``{"mean", "std", "values"}`` over seeds (accuracy as
            a fraction, MI in nats); ``"ce"``, the same without ``beta`` for
            the cross-entropy baseline (or None); ``"iy"``, the same for layer-wise
            I(Y; L) only, beta = 0 (or None; drawn on the accuracy panel); ``"noise_var"``.
        title: optional figure title.

    Returns:
        A figure (nothing shown or saved): lines are seed means, bands one
        standard deviation, dots single seeds; the CE baseline is a dashed
        line (band: its standard deviation). MI axes are in nats.
    """
    ib, ce = curve["ib"], curve.get("ce")
    betas = [p["beta"] for p in ib]
    fig = Figure(figsize=(15, 4.2), layout="constrained")
    ax_acc, ax_x, ax_y = fig.subplots(1, 3)
    _band(ax_acc, betas, [{k: (v * 100 if k != "values" else [a * 100 for a in v])
                           for k, v in p["test_accuracy"].items()} for p in ib], "C0", "layer-wise IB")
    if ce:
        acc = ce["test_accuracy"]
        _baseline(ax_acc, {"mean": 100 * acc["mean"], "std": 100 * acc["std"]}, "k",
                  f"CE baseline ({100 * acc['mean']:.1f}%)")
    if curve.get("iy"):
        acc = curve["iy"]["test_accuracy"]
        _baseline(ax_acc, {"mean": 100 * acc["mean"], "std": 100 * acc["std"]}, "C2",
                  f"beta = 0, I(Y;L) only ({100 * acc['mean']:.1f}%)")
    n_layers = len(ib[0]["layers"]) if ib else 0
    for ax, key in ((ax_x, "i_x_nats"), (ax_y, "i_y_nats")):
        for i in range(n_layers):
            _band(ax, betas, [p["layers"][i][key] for p in ib], f"C{i}", f"layer {i + 1} (IB)")
            if ce:
                _baseline(ax, ce["layers"][i][key], f"C{i}", f"layer {i + 1} (CE)")
    sigma2 = curve.get("noise_var")
    ax_acc.set(title="test accuracy", xlabel=r"$\beta$", ylabel="%")
    ax_x.set(title=r"$I(X;\,L_i+\varepsilon)$" + (f", $\\sigma^2$={sigma2:g}" if sigma2 else ""),
             xlabel=r"$\beta$", ylabel="nats")
    ax_y.set(title=r"$I(Y;\,L_i)$", xlabel=r"$\beta$", ylabel="nats")
    for ax in (ax_acc, ax_x, ax_y):
        ax.set_xscale("log")
        ax.grid(alpha=0.3)
        if ax.has_data():
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return fig
