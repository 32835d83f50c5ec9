"""The IB curve: test accuracy and per-layer information against beta, with a CE baseline.

The paper trains at a few betas (Fig. 3 uses 1e2 and 1e-3; Table 1 one
value per data set) but shows no curve over beta. :func:`run` runs a sweep
(:mod:`layerib.sweep`) of layer-wise IB on MNIST 1 % over a log grid of beta
and several seeds, plus two baselines at the same seeds, end-to-end
cross-entropy (``ce``) and layer-wise I(Y; L) only (``iy``, beta = 0), into
``<out>/runs``. Every point trains with the library's defaults (early stopping on
a validation split of the training images, then refit on all of them). From the runs' ``result.json`` files it writes
``ibcurve.json`` and ``ibcurve.csv`` (per beta: mean and standard deviation
over seeds of test accuracy and of every layer's held-out I(X; L_i + eps)
and I(Y; L_i), nats; ``ibcurve.json`` also each beta's accuracy gap to beta = 0,
paired by seed) and, from ``ibcurve.json`` only, ``ibcurve.png``
(:func:`render`).

The sweep resumes: finished points are skipped, so an interrupted
reproduction continues where it stopped, and the points can be run
elsewhere first (``layerib sweep <out>/... --ray-address auto``, see the
docs/results/ibcurve_mnist1.md) and only gathered here.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from layerib.config import TrainConfig
from layerib.errors import LayerIBError, RunDirError
from layerib.experiments.presets import choose, read_stored, with_train
from layerib.experiments.paper_numbers import table1_accuracy
from layerib.sweep.spec import SweepSpec

PAPER = {
    "artefact": "beta dependence (no figure in the paper)",
    "claim": "The paper reports layer-wise IB at single betas (Table 1; Fig. 3 at 1e2 and 1e-3) "
             "and no curve over beta; Table 1's MNIST 1% accuracies are put beside ours.",
}


@dataclass(frozen=True)
class IBCurvePreset:
    """Settings of one IB-curve reproduction."""

    train: TrainConfig                 # shared settings (method, beta and seed are set per point)
    betas: tuple[float, ...]           # the grid of beta (IB points)
    seeds: tuple[int, ...]             # seeds of every beta and of the baseline
    baseline: bool = True              # also run end-to-end CE at each seed
    iy_baseline: bool = True           # also run layer-wise I(Y;L) only (beta = 0) at each seed


#: The final MI report of each point: no shuffled baseline (27 points; the report does not
#: change accuracy, and the spread over seeds is what the curve shows); one critic restart is
#: the library's default.
_REPORT = dict(mi_baseline=False)
PRESETS = {
    # MNIST 1 % (Table 1, first row) with the library's defaults (early stopping with refit);
    # beta from 1e-4 to 1e2
    "default": IBCurvePreset(
        TrainConfig(train_fraction=0.01, noise_var=100.0, infoplane_evals=0,
                    **_REPORT),
        betas=(1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0), seeds=(0, 1, 2)),
    # about a minute on MNIST 1 % with 2 cores: a smoke test of the pipeline, not a result
    "quick": IBCurvePreset(
        TrainConfig(train_fraction=0.01, noise_var=100.0, widths=(64, 32, 10), batch_size=64,
                    epochs_per_layer=1, min_steps_per_layer=30, ce_epochs=1, readout_epochs=1,
                    critic_hidden=16, mi_eval_batch_size=50, evals_per_layer=2,
                    infoplane_evals=0, val_fraction=0.0),
        betas=(1e-3, 1.0, 100.0), seeds=(0,)),
}


def resolve_preset(preset: str, seed: int | None = None, **overrides) -> IBCurvePreset:
    """The named preset, ``TrainConfig`` fields in ``overrides`` replaced (None: keep).

    ``seed`` replaces the preset's seeds by that one seed.

    Raises:
        ConfigError: an unknown preset name.
    """
    p = with_train(choose(PRESETS, preset, "ibcurve"), overrides)
    return p if seed is None else dataclasses.replace(p, seeds=(seed,))


def sweep_spec(p: IBCurvePreset) -> SweepSpec:
    """The sweep of a preset: IB over ``seeds x betas``; with ``baseline``, CE over ``seeds``;
    with ``iy_baseline``, iy (beta = 0) over ``seeds``.

    Points run in grid order: the baselines first, then seed by seed over
    every beta, so an interrupted sweep already spans the whole beta range.
    ``base`` holds only the settings that differ from the defaults.
    """
    defaults = TrainConfig().to_dict()
    base = {k: v for k, v in p.train.to_dict().items()
            if k not in ("method", "beta", "seed") and v != defaults[k]}
    grids = [{"method": ["ce"], "seed": list(p.seeds)}] if p.baseline else []
    if p.iy_baseline:
        grids.append({"method": ["iy"], "seed": list(p.seeds)})
    grids.append({"method": ["ib"], "seed": list(p.seeds), "beta": list(p.betas)})
    return SweepSpec(base=base, grids=tuple(grids))


def _stats(values: list[float]) -> dict:
    """Mean and sample standard deviation (0 for one value) of ``values``."""
    return {"mean": statistics.fmean(values),
            "std": statistics.stdev(values) if len(values) > 1 else 0.0, "values": values}


def _group(results: list[dict]) -> dict:
    n_layers = min(len(r["layers"]) for r in results)
    return {"n_seeds": len(results), "seeds": [r["seed"] for r in results],
            "test_accuracy": _stats([r["test_accuracy"] for r in results]),
            "layers": [{"index": i + 1,
                        "i_x_nats": _stats([r["layers"][i]["i_x_nats"] for r in results]),
                        "i_y_nats": _stats([r["layers"][i]["i_y_nats"] for r in results])}
                       for i in range(n_layers)]}


def aggregate(results: list[dict]) -> dict:
    """Group finished runs' ``result.json`` dicts into the curve.

    Returns:
        ``{"ib": [ {"beta", "n_seeds", "seeds", "test_accuracy", "layers"} ... ]
        (sorted by beta), "ce": {...} or None, "iy": {...} or None}``; each quantity
        is ``{"mean", "std", "values"}`` over seeds (accuracy a fraction, MI in nats).
        With an ``iy`` group, each beta also has ``"gap_to_iy_points"``: the mean over
        the seeds run at both of (IB accuracy - iy accuracy), in percentage points, and
        ``"gap_seeds"``.
    """
    ib: dict[float, list] = {}
    for r in results:
        if r["method"] == "ib":
            ib.setdefault(r["beta"], []).append(r)
    ce = [r for r in results if r["method"] == "ce"]
    iy = {r["seed"]: r for r in results if r["method"] == "iy"}
    points = []
    for b, rs in sorted(ib.items()):
        point = dict(beta=b, **_group(rs))
        both = [r for r in rs if r["seed"] in iy]  # the seeds run at beta and at beta = 0
        if both:
            point["gap_to_iy_points"] = 100 * statistics.fmean(
                r["test_accuracy"] - iy[r["seed"]]["test_accuracy"] for r in both)
            point["gap_seeds"] = [r["seed"] for r in both]
        points.append(point)
    return {"ib": points, "ce": _group(ce) if ce else None,
            "iy": _group(list(iy.values())) if iy else None}


def curve_csv(curve: dict) -> str:
    """The curve as CSV text: one row per beta and one for CE; MI in nats, accuracy a fraction."""
    rows = [dict(method="ib", **p) for p in curve["ib"]]
    for m in ("iy", "ce"):
        if curve.get(m):
            rows.append(dict(method=m, beta=0.0 if m == "iy" else "", **curve[m]))
    n_layers = max((len(r["layers"]) for r in rows), default=0)
    cols = ["method", "beta", "n_seeds", "test_accuracy_mean", "test_accuracy_std",
            "gap_to_iy_points"]
    for i in range(1, n_layers + 1):
        cols += [f"layer{i}_i_x_nats_mean", f"layer{i}_i_x_nats_std",
                 f"layer{i}_i_y_nats_mean", f"layer{i}_i_y_nats_std"]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for r in rows:
        flat = {"method": r["method"], "beta": r["beta"], "n_seeds": r["n_seeds"],
                "test_accuracy_mean": r["test_accuracy"]["mean"],
                "test_accuracy_std": r["test_accuracy"]["std"],
                "gap_to_iy_points": r.get("gap_to_iy_points", "")}
        for layer in r["layers"]:
            for key in ("i_x_nats", "i_y_nats"):
                flat[f"layer{layer['index']}_{key}_mean"] = layer[key]["mean"]
                flat[f"layer{layer['index']}_{key}_std"] = layer[key]["std"]
        w.writerow(flat)
    return buf.getvalue()


def run(out: str | Path, *, preset: str = "default", data_root: str | None = None,
        download: bool | None = None, device: str | None = None, seed: int | None = None,
        force: bool = False, progress: bool = False, argv: list[str] | None = None,
        workers: int | None = None, ray_address: str | None = None) -> dict:
    """Run (or resume) the preset's sweep into ``out/runs``; write ``ibcurve.json/.csv/.png``.

    Args:
        workers, ray_address: how the sweep runs (:func:`layerib.sweep.run_sweep`).
        Others: the shared runner arguments (:mod:`layerib.experiments`);
        ``seed`` replaces the preset's seeds by one seed, ``force`` re-runs
        every point.

    Returns:
        What ``ibcurve.json`` holds.

    Raises:
        LayerIBError: unknown preset, a finished reproduction in ``out``
            (without ``force``), bad data, or failed points (the sweep is
            kept; re-run to retry them).
    """
    from layerib.runs.folder import atomic_write_json, atomic_write_text
    from layerib.sweep import expand, run_sweep

    t0 = time.perf_counter()
    p = resolve_preset(preset, seed=seed, data_root=data_root, download=download, device=device)
    out = Path(out)
    if (out / "ibcurve.json").exists() and not force:
        raise RunDirError(f"{out} already holds an ibcurve reproduction; choose another --out "
                          "or pass --force to re-run it")
    spec = sweep_spec(p)
    if force:
        for point in expand(spec):
            shutil.rmtree(out / "runs" / point.name, ignore_errors=True)
    sweep = run_sweep(spec, out / "runs", workers=workers, ray_address=ray_address,
                      progress=progress)
    if sweep.failed:
        name, error = next(iter(sweep.failed.items()))
        raise LayerIBError(f"{len(sweep.failed)} of {len(sweep.points)} ibcurve points failed "
                           f"(first: {name}: {error}); see {sweep.table}; re-run to retry them")
    from layerib.analysis.runs import read_json
    results = [read_json(out / "runs" / pt.name / "result.json") for pt in sweep.points]
    curve = aggregate(results)
    n_train = results[0]["n_train"]
    paper = {m: table1_accuracy(p.train.dataset, p.train.train_fraction, m, n_train)
             for m in ("ib", "ce")}
    result = {"experiment": "ibcurve", "preset": preset, "paper": dict(PAPER, numbers=paper),
              "curve": curve, "noise_var": p.train.noise_var, "betas": list(p.betas),
              "seeds": list(p.seeds), "n_train": n_train, "n_test": results[0]["n_test"],
              "config": p.train.to_dict(), "sweep": "runs", "table": "ibcurve.csv",
              "figure": "ibcurve.png", "points_run": len(sweep.ran),
              "points_reused": len(sweep.skipped), "wall_seconds": time.perf_counter() - t0}
    result["summary"] = summary_lines(result)
    atomic_write_text(out / "ibcurve.csv", curve_csv(curve))
    atomic_write_json(out / "ibcurve.json", result)
    render(out)
    return result


def summary_lines(res: dict) -> list[str]:
    """Per beta: accuracy and each layer's (I(X;L+eps), I(Y;L)) means, for the terminal."""
    def line(label, g):
        acc = g["test_accuracy"]
        mi = "  ".join(f"L{la['index']} ({la['i_x_nats']['mean']:.2f}, {la['i_y_nats']['mean']:.2f})"
                       for la in g["layers"])
        return (f"{label:>14}: test accuracy {100 * acc['mean']:.2f} +- {100 * acc['std']:.2f}% "
                f"over {g['n_seeds']} seed(s); (I(X;L+eps), I(Y;L)) nats: {mi}")
    lines = [line(f"beta={p['beta']:g}", p)
             + (f"; vs beta=0 {p['gap_to_iy_points']:+.2f} points" if "gap_to_iy_points" in p else "")
             for p in res["curve"]["ib"]]
    if res["curve"].get("iy"):
        lines.append(line("beta=0 (iy)", res["curve"]["iy"]))
    if res["curve"]["ce"]:
        lines.append(line("CE baseline", res["curve"]["ce"]))
    paper = res["paper"]["numbers"]
    if paper.get("ib") is not None:
        lines.append(f"paper (Table 1, MNIST 1%): IB {paper['ib']:.2f}%, CE {paper['ce']:.2f}%")
    return lines


def render(out: str | Path) -> Path:
    """Draw ``ibcurve.png`` from the stored ``ibcurve.json``.

    Raises:
        RunDirError: ``out`` holds no finished ibcurve reproduction.
    """
    from layerib.plotting.ibcurve import plot_ib_curve

    out = Path(out)
    res = read_stored(out, "ibcurve")
    curve = dict(res["curve"], noise_var=res["noise_var"])
    fig = plot_ib_curve(curve, title=f"layer-wise IB on {res['n_train']} {res['config']['dataset']} images, "
                                     f"{len(res['seeds'])} seed(s)")
    fig.savefig(out / "ibcurve.png", dpi=110)
    return out / "ibcurve.png"

