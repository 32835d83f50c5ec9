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
Finished runs are kept: re-running the command resumes. Each run is a subprocess of
``layerib train`` with one thread; ``--jobs`` run side by side. The final MI report is
cut to one restart without the baseline (it does not change accuracy).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from layerib.analysis.validation import outside_subset_accuracy
from layerib.experiments.table1 import paired_markdown, paired_differences
from layerib.runs.folder import atomic_write_json, atomic_write_text

GRIDS = {
    "ib": [{"beta": b, "noise_var": v} for b, v in itertools.product((1e-3, 1e-2, 1e-1), (10.0, 100.0))],
    "iy": [{"lr_layer": lr, "weight_decay": wd} for lr, wd in itertools.product((3e-4, 1e-3, 3e-3), (0.0, 1e-4))],
}
GRIDS["ce"] = GRIDS["iy"]
TUNE_SEEDS, EVAL_SEEDS = (0, 1, 2), (0, 1, 2, 3, 4)
COMMON = ["--dataset", "mnist", "--train-fraction", "0.01", "--mi-restarts", "1",
          "--mi-baseline", "false", "--no-progress"]


def tag(setting: dict) -> str:
    return "_".join(f"{k}{v:g}" for k, v in setting.items())


def run_one(out: Path, method: str, setting: dict, seed: int) -> Path:
    d = out / method / tag(setting) / f"seed{seed}"
    if (d / "result.json").exists():
        return d
    flags = [a for k, v in setting.items() for a in (f"--{k.replace('_', '-')}", f"{v:g}")]
    cmd = [sys.executable, "-m", "layerib", "train", *COMMON, "--method", method,
           "--seed", str(seed), *flags, "--out", str(d), "--force"]
    d.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{d}.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"}).returncode
    if rc != 0:
        raise SystemExit(f"claim_tuning: {' '.join(cmd)} failed (exit {rc}); see {d}.log")
    return d


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--data-root", default=None)
    a = p.parse_args()
    jobs = [(m, s, k) for m, grid in GRIDS.items() for s in grid for k in TUNE_SEEDS]
    with ThreadPoolExecutor(a.jobs) as pool:
        dirs = list(pool.map(lambda j: run_one(a.out, *j), jobs))
    scores: dict = {}
    for (m, s, k), d in zip(jobs, dirs):
        scores.setdefault((m, tag(s)), []).append(outside_subset_accuracy(d, a.data_root))
    chosen = {}
    for m, grid in GRIDS.items():
        ranked = sorted(grid, key=lambda s: -statistics.fmean(
            r["val_accuracy"] for r in scores[(m, tag(s))]))
        chosen[m] = ranked[0]
    with ThreadPoolExecutor(a.jobs) as pool:
        list(pool.map(lambda j: run_one(a.out, *j),
                      [(m, s, k) for m, s in chosen.items() for k in EVAL_SEEDS]))
    cells = []
    for m, s in chosen.items():
        res = [json.loads((a.out / m / tag(s) / f"seed{k}" / "result.json").read_text())
               for k in EVAL_SEEDS]
        cells.append({"setting": "mnist1", "method": m, "chosen": s,
                      "seeds": list(EVAL_SEEDS),
                      "accuracy_percent": [100 * r["test_accuracy"] for r in res],
                      "wall_seconds": [r["wall_seconds"] for r in res]})
    paired = paired_differences(cells, cells)
    table = {"grids": GRIDS, "tune_seeds": TUNE_SEEDS, "eval_seeds": EVAL_SEEDS,
             "validation": {f"{m}/{t}": [r["val_accuracy"] for r in rs] for (m, t), rs in scores.items()},
             "cells": cells, "paired": paired}
    lines = ["# The claim on MNIST 1 %, same tuning budget per method", "",
             "Six settings per method, each at seeds 0-2, scored by accuracy on the 59 400 "
             "training images outside each subset (never the test set); steps by the default "
             "early stopping with refit.", "",
             "| method | setting | validation accuracy % (mean over seeds 0-2) | chosen |",
             "|---|---|---|---|"]
    for m, grid in GRIDS.items():
        for s in grid:
            v = 100 * statistics.fmean(r["val_accuracy"] for r in scores[(m, tag(s))])
            lines.append(f"| {m} | {tag(s)} | {v:.2f} | {'yes' if s == chosen[m] else ''} |")
    lines += ["", "| method | chosen setting | test accuracy %, seeds 0-4 | mean | std |",
              "|---|---|---|---|---|"]
    for c in cells:
        acc = c["accuracy_percent"]
        lines.append(f"| {c['method']} | {tag(c['chosen'])} | {', '.join(f'{x:.2f}' for x in acc)} | "
                     f"{statistics.fmean(acc):.2f} | {statistics.stdev(acc):.2f} |")
    lines += paired_markdown(paired, "Paired differences (test accuracy points, 95 % Student-t CI)")
    atomic_write_json(a.out / "claim.json", table)
    atomic_write_text(a.out / "claim.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
