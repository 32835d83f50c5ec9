"""Training curves of one run: losses and the per-layer MI estimates against the step."""

from __future__ import annotations

from matplotlib.figure import Figure

from layerib.analysis.runs import stage_ends, global_step


def phase_runs(records: list[dict]) -> list[tuple[str | None, list[dict]]]:
    """The records of one stage and layer (in file order) cut into the runs of its phases.

    With ``val_refit`` a stage runs twice, a *search* for its best validation step and a
    *refit* on all training rows, each counting its steps from the start. Records that carry
    a ``"phase"`` key (``"search"``, ``"refit"`` or ``"fit"``) are grouped by it; older
    records without one are cut where the step counter goes back (a repeated or smaller
    step cannot come from one run): two runs are the search and the refit, more are
    numbered ``"part k"``, one is unnamed (None).

    Returns:
        ``[(phase, records), ...]`` in the order the phases first appear.

    Example:
        >>> [(p, [r["step"] for r in rs]) for p, rs in phase_runs(
        ...     [{"step": 5}, {"step": 10}, {"step": 6}, {"step": 12}])]
        [('search', [5, 10]), ('refit', [6, 12])]
    """
    if any("phase" in r for r in records):
        by_phase: dict[str | None, list[dict]] = {}
        for r in records:
            by_phase.setdefault(r.get("phase"), []).append(r)
        return list(by_phase.items())
    runs: list[list[dict]] = []
    for r in records:
        if not runs or int(r.get("step", 0)) <= int(runs[-1][-1].get("step", 0)):
            runs.append([])
        runs[-1].append(r)
    names = ([None] if len(runs) == 1 else ["search", "refit"] if len(runs) == 2
             else [f"part {k}" for k in range(1, len(runs) + 1)])
    return list(zip(names, runs))


def _series(records: list[dict], stage: str, key: str,
            ends) -> dict[tuple[int, str | None], tuple[list, list]]:
    """``{(layer, phase): (steps over the run, values)}`` of ``key`` in ``stage``'s records."""
    by_layer: dict[int, list[dict]] = {}
    for r in records:
        if r.get("stage") == stage and r.get(key) is not None:
            by_layer.setdefault(int(r.get("layer", 0)), []).append(r)
    out = {}
    for layer, recs in by_layer.items():
        for phase, run in phase_runs(recs):
            out[layer, phase] = ([global_step(r, ends) for r in run], [float(r[key]) for r in run])
    return out


def _label(text: str, phase: str | None) -> str:
    return text if phase in (None, "fit") else f"{text} ({phase})"


def _style(phase: str | None) -> dict:
    """A search run is drawn faint with crosses, beside the solid run that made the net."""
    return {"alpha": 0.45, "marker": "x"} if phase == "search" else {"marker": "."}


def plot_training_curves(records: list[dict], title: str | None = None) -> Figure:
    """Loss, I(Y; L_i) and I(X; L_i + eps) (nats) against the run's step, one colour per layer.

    Args:
        records: the run's ``metrics.jsonl`` records: ``"layer"`` (layer-wise
            stages: training-batch means dashed, held-out averages solid),
            ``"infoplane"`` (end-to-end: held-out averages of every layer),
            ``"ce"`` and ``"readout"`` (cross-entropy per epoch). Each phase of a stage
            (``val_refit``'s search and refit, :func:`phase_runs`) is its own labelled
            line, the search faint with crosses, both starting at the stage's first step.
        title: optional figure title.

    Returns:
        A figure with three panels (nothing is shown or saved). Panels with no
        data say so instead of staying blank.
    """
    ends = stage_ends(records)
    fig = Figure(figsize=(14, 3.8), layout="constrained")
    ax_loss, ax_y, ax_x = fig.subplots(1, 3)
    for stage, label in (("ce", "end-to-end CE"), ("readout", "read-out CE")):
        for (_, phase), (xs, ys) in _series(records, stage, "train_ce", ends).items():
            ax_loss.plot(xs, ys, label=_label(label, phase), **_style(phase))
    ax_loss.set(title="training cross-entropy", xlabel="step", ylabel="nats")
    for ax, what in ((ax_y, "y"), (ax_x, "x")):
        for stage in ("layer", "infoplane"):
            for (layer, phase), (xs, ys) in _series(records, stage, f"test_i_{what}_nats",
                                                    ends).items():
                ax.plot(xs, ys, color=f"C{layer - 1}", label=_label(f"layer {layer} held-out", phase),
                        **_style(phase))
        for (layer, phase), (xs, ys) in _series(records, "layer", f"train_i_{what}_nats",
                                                ends).items():
            ax.plot(xs, ys, ls="--", color=f"C{layer - 1}", alpha=0.45 if phase == "search" else 0.6,
                    label=_label(f"layer {layer} train", phase))
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
