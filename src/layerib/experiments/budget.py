"""How each method uses a fixed amount of time: layer-wise IB, iy and CE within the same budget.

Every run trains the same net with ``budget_minutes`` set (:mod:`layerib.ib.budget`: each
stage plans its steps, and its cosine schedule, for its share of the wall-clock budget from a
timed probe). A preset names the variants (a method and its own settings) and the budgets;
every variant runs at every budget, ``workers`` runs side by side at one thread each (so they
share the machine alike; the page that reports them must say so).

The runs are a sweep (:func:`layerib.sweep.run_sweep`, one ``layerib train`` process per
point) in ``DIR/runs/<point>``, ordered budget by budget (every variant's shortest budget
first): a finished point is never run again and a stopped one resumes from its
checkpoint, so a study runs in parts. ``DIR/budget.json``, ``DIR/budget.md`` and
``DIR/budget.png`` (test accuracy against minutes, one line per variant) are written
atomically at the end, from the runs' ``result.json`` files only.

Presets: ``default`` (full CIFAR-10, the airbench-style net at airbench93's widths, IB, iy
and CE at 15 and 45 minutes), ``ablation`` (10 % of CIFAR-10, 3 minutes: the recipe's pieces
one at a time from the IB run) and ``quick`` (a seconds-long smoke test on MNIST-format data).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from layerib.analysis.runs import read_json
from layerib.config import config_from_dict
from layerib.errors import ConfigError, LayerIBError
from layerib.experiments.presets import choose
from layerib.runs.folder import atomic_write_json, atomic_write_text
from layerib.sweep import run_sweep
from layerib.sweep.spec import SweepSpec, expand, plain


@dataclass(frozen=True)
class BudgetPreset:
    """One budget study: settings shared by every run, the variants, the budgets.

    Example:
        >>> p = PRESETS["default"]
        >>> sorted(p.variants), p.minutes, p.workers
        (['ce', 'ib', 'iy'], (15.0, 45.0), 3)
    """

    base: dict                     # TrainConfig keys of every run (data, net, augmentation, report)
    variants: dict                 # variant name -> TrainConfig keys of its own (its method first)
    minutes: tuple[float, ...]     # the budgets, each run by every variant
    workers: int = 3               # runs side by side, one thread each

    def check(self, name: str) -> None:
        """Raise ConfigError on an empty or non-positive budget list or a variant without a method."""
        if not self.minutes or not all(isinstance(m, (int, float)) and m > 0 for m in self.minutes):
            raise ConfigError(f"budget preset {name}: budgets must be minutes > 0, got {self.minutes}")
        for v, keys in self.variants.items():
            if "method" not in keys:
                raise ConfigError(f"budget preset {name}: variant {v} names no method")


# Shared by every CIFAR-10 run: the airbench-style net at airbench93's widths (569 666
# parameters), crop + flip, bfloat16 training passes, a cosine schedule over each planned
# stage, no validation split (a budget plans each stage once), one held-out evaluation per
# layer stage and none during CE (they would take from the budget without training), and a
# light final MI report after the budget (one restart, no baseline, at most 2000 training rows
# and 500 steps a critic: the accuracy does not depend on it). The label critic reads 4 x 4
# channel averages (15 points better than the flattened maps on a 10 % pilot,
# docs/results/cifar10_vgg.md), in training (ib, iy) and in every run's report (I(Y;L) of a
# 16384-wide conv layer then costs a 16th).
_CIFAR = dict(dataset="cifar10", arch="airbench", channels=(64, 128, 128), augment="crop_flip",
              precision="bfloat16", lr_schedule="cosine", val_fraction=0.0, evals_per_layer=1,
              infoplane_evals=0, mi_restarts=1, mi_baseline=False, mi_max_rows=2000,
              mi_max_steps=500, y_pool=4)
# CE as usually trained on CIFAR-10 (airbench's Nesterov SGD and label smoothing 0.2; rate and
# decay a starting point, not tuned here)
_IB = dict(method="ib")
_IB_ABL = dict(method="ib", beta=0.012)
_CE = dict(method="ce", ce_optimizer="nesterov", label_smoothing=0.2, lr_layer=0.05,
           weight_decay=5e-4)

#: name -> preset (``layerib reproduce budget --preset NAME``).
PRESETS: dict[str, BudgetPreset] = {
    "default": BudgetPreset(_CIFAR, {"ib": _IB, "iy": dict(_IB, method="iy"), "ce": _CE},
                            (15.0, 45.0)),
    # IB at the full-size runs' beta (600 / 50 000; the auto beta of 10 %, 0.12, held a first
    # pass at 26 % test accuracy: the penalty outweighed I(Y; L), not a measure of the pieces)
    "ablation": BudgetPreset(dict(_CIFAR, train_fraction=0.1), {
        "ib": _IB_ABL,
        "ib space-to-depth": dict(_IB_ABL, arch_params={"downsample": "space_to_depth"}),
        "ib convhead": dict(_IB_ABL, y_critic="convhead"),
        "ib wide 128,128,128": dict(_IB_ABL, channels=(128, 128, 128)),
        "ib equal steps": dict(_IB_ABL, budget_split="steps"),
        "ce": _CE,
        "ce adam": dict(method="ce"),
    }, (3.0,), workers=2),
    "quick": BudgetPreset(dict(dataset="mnist", train_fraction=0.5, widths=(16, 10), batch_size=32,
                               critic_hidden=16, val_fraction=0.0, evals_per_layer=1,
                               infoplane_evals=0, mi_restarts=1, mi_baseline=False,
                               mi_max_steps=50, lr_schedule="cosine"),
                          {"ib": dict(method="ib"), "iy": dict(method="iy"), "ce": dict(method="ce")},
                          (0.05,), workers=3),
}


def spec(p: BudgetPreset, base: dict) -> SweepSpec:
    """The study's sweep: every variant at every budget, shortest budget first.

    ``base`` adds run-wide keys (``data_root``, ``download``, ``device``).

    Example:
        >>> [pt.overrides["budget_minutes"] for pt in expand(spec(PRESETS["default"], {}))]
        [15.0, 15.0, 15.0, 45.0, 45.0, 45.0]
    """
    base = dict(p.base, **base)
    # every variant names every key some variant sets (the others at the base's value), so the
    # point folders are told apart by those keys
    keys = list(dict.fromkeys(k for v in p.variants.values() for k in v))
    shared = config_from_dict(base)
    full = [{k: v.get(k, getattr(shared, k)) for k in keys} for v in p.variants.values()]
    grids = tuple({**{k: [v] for k, v in f.items()}, "budget_minutes": [float(m)]}
                  for m in p.minutes for f in full)
    return SweepSpec(base=base, grids=grids)


def _points(p: BudgetPreset, sweep: SweepSpec) -> list[tuple[str, float, str]]:
    """``(variant, minutes, point folder name)`` of every point, in the sweep's order."""
    names = list(p.variants)
    pts = expand(sweep)
    return [(names[i % len(names)], float(pt.overrides["budget_minutes"]), pt.name)
            for i, pt in enumerate(pts)]


def run(out: str | Path, *, preset: str = "default", data_root: str | None = None,
        download: bool | None = None, device: str | None = None, seed: int | None = None,
        force: bool = False, progress: bool = False, argv: list[str] | None = None,
        workers: int | None = None) -> dict:
    """Run (or resume) a budget study into ``out``; write ``budget.json``, ``.md`` and ``.png``.

    Args:
        out: the study's folder (created; may hold a stopped run of the same study).
        preset: a key of :data:`PRESETS`.
        data_root, download, device: passed to every run (None: the defaults).
        seed: every run's seed (None: the config default, 0).
        force: train every run again (their folders are overwritten).
        progress: a progress bar over the sweep's points.
        argv: the command line, recorded in ``budget.json``.
        workers: runs side by side, one thread each (None: the preset's).

    Returns:
        What ``budget.json`` holds: ``experiment, preset, base, variants, minutes, workers,
        rows`` (per run: ``variant, method, budget_minutes, wall_minutes, test_accuracy_percent,
        train_accuracy_percent, stages`` (unit -> planned steps), ``machine``, ``run``),
        ``summary`` (one line per run), ``wall_seconds`` (this call) and ``argv``.

    Raises:
        ConfigError: an unknown preset or bad workers.
        LayerIBError: failed runs (the rest is kept; run the command again to retry them).
    """
    t0 = time.perf_counter()
    p = choose(PRESETS, preset, "budget")
    p.check(preset)
    workers = p.workers if workers is None else workers
    if not (isinstance(workers, int) and workers >= 1):
        raise ConfigError(f"--workers must be an integer >= 1, got {workers!r}")
    out = Path(out)
    base = {k: v for k, v in dict(data_root=data_root, download=download, device=device,
                                  seed=seed).items() if v is not None}
    sweep = spec(p, base)
    if force:
        shutil.rmtree(out / "runs", ignore_errors=True)
    done = run_sweep(sweep, out / "runs", workers=workers, threads=1, progress=progress)
    if done.failed:
        name, err = next(iter(done.failed.items()))
        raise LayerIBError(f"budget: {len(done.failed)} run(s) failed, e.g. {out / 'runs' / name}: "
                           f"{err} (see its train.log); run the command again to retry them")
    rows = [_row(variant, minutes, out / "runs" / name, out)
            for variant, minutes, name in _points(p, sweep)]
    table = {"experiment": "budget", "preset": preset, "base": {k: plain(v) for k, v in p.base.items()},
             "variants": {v: {k: plain(x) for k, x in keys.items()} for v, keys in p.variants.items()},
             "minutes": list(p.minutes), "workers": workers, "threads_per_run": 1, "rows": rows,
             "wall_seconds": time.perf_counter() - t0, "argv": list(argv or [])}
    table["summary"] = summary_lines(table)
    atomic_write_json(out / "budget.json", table)
    atomic_write_text(out / "budget.md", render_markdown(table))
    render(out)
    return table


def _row(variant: str, minutes: float, folder: Path, out: Path) -> dict:
    r = read_json(folder / "result.json")
    if r is None:
        raise LayerIBError(f"{folder} has no result.json; run the study again to finish it")
    stages = r.get("budget", {}).get("stages", {})
    return {"variant": variant, "method": r["method"], "budget_minutes": minutes,
            "wall_minutes": r["wall_seconds"] / 60,
            # the final MI report after the training (not in the budget)
            "report_minutes": (r["report_seconds"] / 60 if r.get("report_seconds") is not None
                               else None),
            "test_accuracy_percent": 100 * r["test_accuracy"],
            "train_accuracy_percent": (100 * r["train_accuracy"]
                                       if r.get("train_accuracy") is not None else None),
            "stages": {u: s.get("steps") for u, s in stages.items()},
            "machine": r.get("machine", {}), "run": str(folder.relative_to(out))}


def summary_lines(table: dict) -> list[str]:
    """One line per run: variant, budget, wall minutes, test accuracy."""
    return [f"{r['variant']} at {r['budget_minutes']:g} min: test accuracy "
            f"{r['test_accuracy_percent']:.2f}% ({r['wall_minutes']:.1f} min wall with the report)"
            for r in table["rows"]]


def render_markdown(table: dict) -> str:
    """``budget.md``: the table of runs, the machine and how they shared it, the command."""
    machines = {(r["machine"].get("cpu"), r["machine"].get("threads"), r["machine"].get("gpu"))
                for r in table["rows"]}
    lines = [f"# Test accuracy within a wall-clock budget ({table['preset']} preset)", "",
             f"Every run: {', '.join(f'{k}={v}' for k, v in table['base'].items())}. "
             f"{table['workers']} runs side by side, one thread each.", "",
             "| variant | method | budget (min) | wall (min, with the report) | of it the MI report "
             "(min) | test accuracy % | planned steps per stage |", "|---|---|---|---|---|---|---|"]
    for r in table["rows"]:
        steps = ", ".join(f"{u}: {s}" for u, s in r["stages"].items())
        rep = "-" if r.get("report_minutes") is None else f"{r['report_minutes']:.1f}"
        lines.append(f"| {r['variant']} | {r['method']} | {r['budget_minutes']:g} | "
                     f"{r['wall_minutes']:.1f} | {rep} | {r['test_accuracy_percent']:.2f} | {steps} |")
    lines += ["", "Machine: " + "; ".join(
        f"{cpu} ({threads} thread{'s' if threads != 1 else ''} per run)" + (f", GPU {gpu}" if gpu else "")
        for cpu, threads, gpu in sorted(machines, key=str)) + "."]
    if table["argv"]:
        lines += ["", f"Command: `layerib {' '.join(table['argv'][1:])}`"]
    return "\n".join(lines) + "\n"


def render(out: str | Path) -> Path:
    """Draw ``budget.png`` (test accuracy against wall minutes, a line per variant) from
    the stored ``budget.json``.

    Raises:
        RunDirError: ``out`` holds no finished budget study.
    """
    from layerib.experiments.presets import read_stored
    from layerib.plotting.budget import plot_accuracy_vs_minutes

    out = Path(out)
    fig = plot_accuracy_vs_minutes(read_stored(out, "budget")["rows"])
    fig.savefig(out / "budget.png", dpi=110)
    return out / "budget.png"


def best_by_variant(rows: list[dict]) -> dict[str, float]:
    """Each variant's test accuracy (%) at its longest budget.

    Example:
        >>> best_by_variant([{"variant": "ib", "budget_minutes": 15, "test_accuracy_percent": 80.0},
        ...                  {"variant": "ib", "budget_minutes": 45, "test_accuracy_percent": 84.0}])
        {'ib': 84.0}
    """
    out: dict[str, tuple[float, float]] = {}
    for r in rows:
        if r["variant"] not in out or r["budget_minutes"] > out[r["variant"]][0]:
            out[r["variant"]] = (r["budget_minutes"], r["test_accuracy_percent"])
    return {v: a for v, (_, a) in out.items()}


__all__ = ["BudgetPreset", "PRESETS", "run", "spec", "render", "render_markdown", "best_by_variant",
           "summary_lines"]
