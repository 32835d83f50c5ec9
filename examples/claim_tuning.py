"""The paper's claim tested fairly on MNIST 1 %: the same tuning budget for every method.

    LAYERIB_DATA_ROOT=../shared/data python examples/claim_tuning.py OUT [--jobs 2]

Every method gets six settings and the library's default early stopping with refit
(which chooses each stage's steps on a validation split of the 600 training images):

- ``ib``: beta in {1e-3, 1e-2, 1e-1} x noise variance in {10, 100};
- ``iy`` and ``ce``: learning rate in {3e-4, 1e-3, 3e-3} x weight decay in {0, 1e-4}
  (their own regularisers; steps are chosen by early stopping as for IB).

Each setting is trained at seeds 0-2 and scored by its mean accuracy on the 59 400
MNIST training images outside each seed's subset
(:func:`layerib.analysis.validation.outside_subset_accuracy`), never on the test set.
The best setting of each method is then trained at seeds 3 and 4 as well, and
``OUT/claim.md`` / ``claim.json`` give every setting's validation score, the chosen
ones' test accuracies over seeds 0-4 and the paired differences IB - iy and IB - CE
with 95 % Student-t intervals (:func:`layerib.experiments.table1.paired_differences`).

The runs are one sweep per method (:func:`layerib.sweep.run_sweep`, folders
``OUT/<method>/<point>``, each point one ``layerib train`` process with one thread,
``--jobs`` side by side): re-running the command skips finished points and resumes
stopped ones. The final MI report is cut to one restart without the baseline (it does
not change accuracy).
"""

from __future__ import annotations

import argparse
import itertools
import statistics
from pathlib import Path

from layerib.analysis.validation import outside_subset_accuracy
from layerib.experiments.table1 import paired_differences, paired_markdown
from layerib.runs.folder import atomic_write_json, atomic_write_text
from layerib.sweep import run_sweep
from layerib.sweep.spec import SweepSpec, expand

GRIDS = {
    "ib": [{"beta": b, "noise_var": v} for b, v in itertools.product((1e-3, 1e-2, 1e-1), (10.0, 100.0))],
    "iy": [{"lr_layer": lr, "weight_decay": wd} for lr, wd in itertools.product((3e-4, 1e-3, 3e-3), (0.0, 1e-4))],
}
GRIDS["ce"] = GRIDS["iy"]
TUNE_SEEDS, EVAL_SEEDS = (0, 1, 2), (0, 1, 2, 3, 4)
BASE = {"dataset": "mnist", "train_fraction": 0.01, "mi_restarts": 1, "mi_baseline": False}


def tag(setting: dict) -> str:
    return "_".join(f"{k}{v:g}" for k, v in setting.items())


def method_spec(method: str, grid: list[dict], base: dict, tune_seeds, eval_seeds,
                chosen: dict | None = None) -> SweepSpec:
    """One method's sweep: every setting at ``tune_seeds``; ``chosen`` also at ``eval_seeds``.

    The tuning points keep their folder names when the chosen setting is added (the
    same keys vary), so the second call reuses them."""
    grids = tuple({**{k: [v] for k, v in s.items()}, "seed": list(
        eval_seeds if s == chosen else tune_seeds)} for s in grid)
    return SweepSpec(base={**base, "method": method}, grids=grids)


def _folders(out: Path, spec: SweepSpec) -> dict[tuple[str, int], Path]:
    """``(tag(setting), seed) -> point folder`` of a method's sweep."""
    return {(tag({k: v for k, v in p.overrides.items() if k != "seed"}), p.overrides["seed"]):
            out / p.name for p in expand(spec)}


def _sweep(spec: SweepSpec, out: Path, jobs: int) -> dict:
    done = run_sweep(spec, out, workers=jobs, threads=1)
    if done.failed:
        name, err = next(iter(done.failed.items()))
        raise SystemExit(f"claim_tuning: {len(done.failed)} run(s) failed, e.g. {out / name}: "
                         f"{err} (see its train.log)")
    return _folders(out, spec)


def run(out: Path, *, grids: dict = GRIDS, base: dict = BASE, tune_seeds=TUNE_SEEDS,
        eval_seeds=EVAL_SEEDS, jobs: int = 1, data_root: str | None = None) -> dict:
    """Tune every method on the images outside its subset, test the chosen settings.

    Returns the ``claim.json`` dict (also written, with ``claim.md``, under ``out``)."""
    out = Path(out)
    base = dict(base, **({"data_root": data_root} if data_root else {}))
    scores: dict = {}
    chosen = {}
    for m, grid in grids.items():
        folders = _sweep(method_spec(m, grid, base, tune_seeds, eval_seeds), out / m, jobs)
        for s in grid:
            scores[(m, tag(s))] = [outside_subset_accuracy(folders[(tag(s), k)], data_root)
                                   for k in tune_seeds]
        chosen[m] = max(grid, key=lambda s: statistics.fmean(
            r["val_accuracy"] for r in scores[(m, tag(s))]))  # the first of equals
    cells = []
    for m, s in chosen.items():
        folders = _sweep(method_spec(m, grids[m], base, tune_seeds, eval_seeds, s), out / m, jobs)
        res = [outside_subset_accuracy(folders[(tag(s), k)], data_root) for k in eval_seeds]
        cells.append({"setting": "mnist1", "method": m, "chosen": s, "seeds": list(eval_seeds),
                      "accuracy_percent": [100 * r["test_accuracy"] for r in res]})
    paired = paired_differences(cells, cells)
    table = {"grids": grids, "base": base, "tune_seeds": list(tune_seeds),
             "eval_seeds": list(eval_seeds),
             "validation": {f"{m}/{t}": [r["val_accuracy"] for r in rs] for (m, t), rs in scores.items()},
             "cells": cells, "paired": paired}
    n_set = {m: len(g) for m, g in grids.items()}
    lines = ["# The claim on MNIST 1 %, same tuning budget per method", "",
             f"Settings per method: {n_set}, each at seeds {list(tune_seeds)}, scored by accuracy "
             "on the training images outside each subset (never the test set); steps by the "
             "default early stopping with refit.", "",
             "| method | setting | validation accuracy % (mean over tuning seeds) | chosen |",
             "|---|---|---|---|"]
    for m, grid in grids.items():
        for s in grid:
            v = 100 * statistics.fmean(r["val_accuracy"] for r in scores[(m, tag(s))])
            lines.append(f"| {m} | {tag(s)} | {v:.2f} | {'yes' if s == chosen[m] else ''} |")
    lines += ["", f"| method | chosen setting | test accuracy %, seeds {list(eval_seeds)} | mean | std |",
              "|---|---|---|---|---|"]
    for c in cells:
        acc = c["accuracy_percent"]
        sd = f"{statistics.stdev(acc):.2f}" if len(acc) > 1 else "-"
        lines.append(f"| {c['method']} | {tag(c['chosen'])} | {', '.join(f'{x:.2f}' for x in acc)} | "
                     f"{statistics.fmean(acc):.2f} | {sd} |")
    lines += paired_markdown(paired, "Paired differences (test accuracy points, 95 % Student-t CI)")
    atomic_write_json(out / "claim.json", table)
    atomic_write_text(out / "claim.md", "\n".join(lines) + "\n")
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--jobs", type=int, default=1, help="runs side by side (one thread each)")
    p.add_argument("--data-root", default=None)
    a = p.parse_args()
    run(a.out, jobs=a.jobs, data_root=a.data_root)
    print((a.out / "claim.md").read_text(), end="")


if __name__ == "__main__":
    main()
