"""Training curves of one run: losses and the per-layer MI estimates against the step."""

from __future__ import annotations

from matplotlib.figure import Figure

from layerib.analysis.runs import stage_ends, global_step


def _series(records: list[dict], stage: str, key: str, ends) -> dict[int, tuple[list, list]]:
    out: dict[int, tuple[list, list]] = {}
    for r in records:
        if r.get("stage") == stage and r.get(key) is not None:
            xs, ys = out.setdefault(int(r.get("layer", 0)), ([], []))
            xs.append(global_step(r, ends))
            ys.append(float(r[key]))
    return out


def plot_training_curves(records: list[dict], title: str | None = None) -> Figure:
    """Loss, I(Y; L_i) and I(X; L_i + eps) (nats) against the run's step, one colour per layer.

    Args:
        records: the run's ``metrics.jsonl`` records: ``"layer"`` (layer-wise
            stages: training-batch means dashed, held-out averages solid),
            ``"infoplane"`` (end-to-end: held-out averages of every layer),
            ``"ce"`` and ``"readout"`` (cross-entropy per epoch).
        title: optional figure title.

    Returns:
        A figure with three panels (nothing is shown or saved). Panels with no
        data say so instead of staying blank.
    """
    ends = stage_ends(records)
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    ax_loss, ax_y, ax_x = fig.subplots(1, 3)
    for stage, label in (("ce", "end-to-end CE"), ("readout", "read-out CE")):
        for _, (xs, ys) in _series(records, stage, "train_ce", ends).items():
            ax_loss.plot(xs, ys, marker=".", label=label)
    ax_loss.set(title="training cross-entropy", xlabel="step", ylabel="nats")
    for ax, what in ((ax_y, "y"), (ax_x, "x")):
        for stage in ("layer", "infoplane"):
            for layer, (xs, ys) in _series(records, stage, f"test_i_{what}_nats", ends).items():
                ax.plot(xs, ys, marker=".", color=f"C{layer - 1}", label=f"layer {layer} held-out")
        for layer, (xs, ys) in _series(records, "layer", f"train_i_{what}_nats", ends).items():
            ax.plot(xs, ys, ls="--", color=f"C{layer - 1}", alpha=0.6, label=f"layer {layer} train")
    ax_y.set(title=r"$I(Y;\,L_i)$", xlabel="step", ylabel="nats")
    ax_x.set(title=r"$I(X;\,L_i+\varepsilon)$", xlabel="step", ylabel="nats")
    for ax in (ax_loss, ax_y, ax_x):
        if ax.has_data():
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3)
        else:
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes)
    if title:
        fig.suptitle(title)
    return fig
