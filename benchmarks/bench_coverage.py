"""Coverage of ``estimate_mi``'s 95 % interval on tasks with known MI (nats), KSG and CCA beside it.

One command writes ``benchmarks/results/coverage.md`` and ``coverage.csv``:

    OMP_NUM_THREADS=1 PYTHONPATH=src python3 benchmarks/bench_coverage.py [--full] [--ns N,..] [--seeds S,..] [--out NAME]

Task families (:mod:`layerib.mi.tasks`, plus additive noise defined here): correlated
Gaussians, heavy tails (multivariate Student-t), MI-preserving per-coordinate transforms
(cube, asinh, halfcube), additive noise (X uniform on [0, 1]^d, Y = X + N(0, s^2 I): the
truth by numerical integration, d times the 1-d value), discrete-continuous pairs (a label
and a Gaussian mixture). Per row of the table (family x n): the fraction of 95 % intervals
that hold the truth, the fraction flagged (any flag), the count of unflagged intervals that
miss, the mean signed error of the estimate, and the mean error of KSG (on at most the first
10 000 rows) and of the CCA (Gaussian) estimate (all n rows) on the same samples. By default the small grid runs
(n = 100 .. 5000, 15 tasks, 2 seeds; about 15 minutes on one thread); ``--full`` the full
grid (24 tasks, n up to 50 000, d up to 100, 3 seeds; hours). ``--ns`` / ``--seeds`` run a
part of either grid (e.g. its large n alone) into a file of its own (``--out``). ``flagged`` counts any flag; ``small_n``
(fewer than 500 test rows, i.e. n < 2 500) is raised on every estimate below that, so the
column ``flagged beyond small_n`` shows what the other checks caught. ``--merge A.csv,B.csv``
writes one table from parts run separately (e.g. one seed each, every part's own command and
machine in its own .md; a later part's row replaces an earlier one of the same task, n and
seed), running nothing; ``--families`` runs only the named families.
"""

from __future__ import annotations

import argparse
import csv
import math
import subprocess
import time
from pathlib import Path

import numpy as np
from scipy.stats import norm

from layerib import estimate_mi
from layerib.mi.baselines import cca_mi, ksg_mi
from layerib.mi.ground_truth import rho_for_mi
from layerib.mi.tasks import Task, gaussian_task, mixture_task, student_task, transformed_task

OUT = Path(__file__).parent / "results"


def additive_noise_task(dim: int, noise_sd: float) -> Task:
    """X ~ U[0, 1]^dim, Y = X + N(0, noise_sd^2 I): I = dim (h(Y_1) - h(noise)), h(Y_1) on a grid."""
    grid = np.linspace(-8 * noise_sd, 1 + 8 * noise_sd, 200_001)
    p = norm.cdf(grid / noise_sd) - norm.cdf((grid - 1) / noise_sd)  # density of Y_1
    h_y = -float(np.sum(np.where(p > 0, p * np.log(np.maximum(p, 1e-300)), 0.0)) * (grid[1] - grid[0]))
    mi = dim * (h_y - 0.5 * math.log(2 * math.pi * math.e * noise_sd ** 2))

    def sample(n, rng):
        x = rng.uniform(size=(n, dim))
        return x, x + noise_sd * rng.standard_normal((n, dim))
    return Task(f"noise_d{dim}_{mi:.2f}nats", mi, dim, dim, sample)


def sparse_gaussian_task(dim: int, mi: float, pairs: int = 3) -> Task:
    """``dim``-d Gaussians a side of which only the first ``pairs`` coordinate pairs are correlated
    (the rest independent noise), true MI ``mi`` nats."""
    rho = rho_for_mi(mi, pairs)

    def sample(n, rng):
        x = rng.standard_normal((n, dim))
        y = rng.standard_normal((n, dim))
        y[:, :pairs] = rho * x[:, :pairs] + math.sqrt(1 - rho * rho) * y[:, :pairs]
        return x, y
    return Task(f"sparse{pairs}_d{dim}_{mi:g}nats", mi, dim, dim, sample)


def spiral(a: np.ndarray, speed: float | None = None) -> np.ndarray:
    """Rotate the plane of coordinates 0 and 1 by ``speed * |a|^2`` radians (default
    ``speed = 0.5 / dim``: 1 rad at the mean |a|^2 of a standard normal), row by row: a smooth
    invertible map (|a| is unchanged, so the angle is known from the image), MI-preserving but
    not per coordinate (the copula map does not undo it)."""
    t = (0.5 / a.shape[1] if speed is None else speed) * (a ** 2).sum(1)
    out = a.copy()
    out[:, 0] = np.cos(t) * a[:, 0] - np.sin(t) * a[:, 1]
    out[:, 1] = np.sin(t) * a[:, 0] + np.cos(t) * a[:, 1]
    return out


def mapped_task(base: Task, name: str, fx, fy) -> Task:
    """``base`` with ``fx`` applied to x and ``fy`` to y (invertible maps: MI unchanged)."""
    def sample(n, rng):
        x, y = base.sampler(n, rng)
        return fx(x), fy(y)
    dx = fx(np.zeros((2, base.dim_x))).shape[1]
    return Task(f"{name}({base.name})", base.mi, dx, base.dim_y, sample)


def swiss_roll(a: np.ndarray) -> np.ndarray:
    """1-d -> 2-d: the normal CDF onto (0, 1), then ``t (cos t, sin t) / 21``, ``t = 1.5 pi (1 + 2 u)``
    (injective: MI unchanged)."""
    t = 1.5 * math.pi * (1 + 2 * norm.cdf(a[:, :1]))
    return np.hstack([t * np.cos(t), t * np.sin(t)]) / 21


def families(grid: str) -> dict[str, list[Task]]:
    """The task families of the grid ``"small"`` (the one the library's settings are checked on)
    or ``"full"`` (more tasks of each family)."""
    fams = {"gaussian": [gaussian_task(1, 0.5), gaussian_task(5, 0.0), gaussian_task(10, 1.5),
                         gaussian_task(3, 4.0), gaussian_task(100, 1.0)],
            "heavy tails": [student_task(3, 1.0, 3.0), student_task(5, 0.0, 2.0)],
            "transform": [mapped_task(sparse_gaussian_task(25, 1.0), "spiral", spiral, spiral),
                          mapped_task(gaussian_task(5, 1.5), "cdf-spiral", lambda a: norm.cdf(spiral(a)),
                                      lambda a: norm.cdf(spiral(a))),
                          transformed_task(gaussian_task(25, 2.0), "asinh"),
                          mapped_task(gaussian_task(1, 1.0), "swissroll", swiss_roll, lambda a: a)],
            "additive noise": [additive_noise_task(1, 0.1), additive_noise_task(2, 0.2)],
            "discrete-continuous": [mixture_task(4, 5, 1.0), mixture_task(10, 10, 1.0)]}
    if grid == "full":
        fams["gaussian"] += [gaussian_task(20, 2.0, mixed=True), gaussian_task(25, 5.0)]
        fams["heavy tails"] += [student_task(5, 1.0, 3.0), student_task(2, 1.0, 1.0)]
        fams["transform"] += [transformed_task(gaussian_task(5, 1.0), t) for t in ("cube", "halfcube")]
        fams["transform"] += [mapped_task(sparse_gaussian_task(25, 1.0), "cdf", norm.cdf, norm.cdf)]
        fams["additive noise"] += [additive_noise_task(5, 0.3)]
        fams["discrete-continuous"] += [mixture_task(2, 5, 1.0)]
    return fams


#: KSG on the benchmark's samples only up to this many dimensions (x and y together): above it
#: the k-d tree search is brute force and slow, and the estimate meaningless
BENCH_KSG_MAX_DIM = 60
#: ... and on at most this many of the sample's rows (its first; the rows are i.i.d.): on
#: 50 000 rows of a 50-d pair the benchmark's own KSG search ran for over 20 minutes
BENCH_KSG_MAX_ROWS = 10_000


def run_grid(grid: str, ns, seeds, only: list[str] | None = None) -> list[dict]:
    rows = []
    for family, tasks in families(grid).items():
        if only and family not in only:
            continue
        for task in tasks:
            for n in ns:
                for seed in seeds:
                    x, y = task.sample(n, seed=100 + seed)
                    t = time.process_time()
                    r = estimate_mi(x, y, seed=seed)
                    cpu = time.process_time() - t
                    dims = task.dim_x + task.dim_y
                    m = BENCH_KSG_MAX_ROWS
                    ksg = ksg_mi(x[:m], y[:m], seed=seed) if dims <= BENCH_KSG_MAX_DIM else None
                    cca = None if task.discrete_y else cca_mi(x, y)
                    rows.append(dict(
                        family=family, task=task.name, n=n, seed=seed, dim=dims, truth=task.mi,
                        value=r.value, low=r.low, high=r.high, covered=r.low <= task.mi <= r.high,
                        flags=" ".join(r.flags), stderr=r.stderr, critic=r.critic, bound=r.bound,
                        n_test=r.n_points, ln_batch=r.ln_batch, shuffled=r.shuffled,
                        value_neural=getattr(r, "value_neural", r.value),
                        value_train=getattr(r, "value_train", None),
                        ref_cca=r.reference_cca, ref_cca_se=getattr(r, "reference_cca_se", None),
                        ref_ksg=r.reference_ksg, ref_ksg_se=getattr(r, "reference_ksg_se", None),
                        candidates=" ".join(f"{c}:{v:.4f}:{te:.4f}" for c, v, te in r.candidates),
                        reported=getattr(r, "reported", "neural"),
                        upper_end=(r.interval_method or "").split("here ")[-1].split(";")[0],
                        ksg=ksg, cca=cca, cpu_s=cpu))
                    print(f"{task.name:>32} n={n:>5} seed={seed}: truth {task.mi:.3f}  {r}", flush=True)
    return rows


def _mean(values) -> str:
    values = [v for v in values if v is not None and v != ""]
    return f"{np.mean(values):+.3f}" if values else "n/a"


def table(rows: list[dict], order: list[str]) -> list[str]:
    """The markdown table of ``rows`` (family x n, then all)."""
    lines = ["| family | n | estimates | coverage | flagged | flagged beyond small_n | unflagged misses | "
             "mean error | mean abs error | mean KSG error | mean CCA error |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["family"], int(r["n"])) for r in rows}, key=lambda k: (order.index(k[0]), k[1]))
    for fam, n in keys + [("all", None)]:
        sel = [r for r in rows if fam == "all" or (r["family"] == fam and int(r["n"]) == n)]
        cov = np.mean([str(r["covered"]) == "True" for r in sel])
        flagged = np.mean([bool(r["flags"]) for r in sel])
        other = np.mean([bool(set(r["flags"].split()) - {"small_n"}) for r in sel])
        silent = sum(1 for r in sel if str(r["covered"]) != "True" and not r["flags"])
        err = [float(r["value"]) - float(r["truth"]) for r in sel]
        ek = [float(r["ksg"]) - float(r["truth"]) for r in sel if r["ksg"] not in (None, "")]
        ec = [float(r["cca"]) - float(r["truth"]) for r in sel if r["cca"] not in (None, "")]
        lines.append(f"| {fam} | {'' if n is None else n} | {len(sel)} | {cov:.0%} | {flagged:.0%} | "
                     f"{other:.0%} | {silent} | {np.mean(err):+.3f} | {np.mean(np.abs(err)):.3f} | "
                     f"{_mean(ek)} | {_mean(ec)} |")
    return lines


def merge(parts: list[str], grid: str, out: str) -> None:
    """One table (``benchmarks/results/<out>.md`` / ``.csv``) from CSVs of parts of a grid."""
    rows = []
    for part in parts:
        path = OUT / part
        if not path.is_file():
            raise SystemExit(f"bench_coverage: no such CSV {path}; name files in {OUT}")
        with open(path) as fh:
            rows += list(csv.DictReader(fh))
    if not rows:
        raise SystemExit("bench_coverage: the CSVs hold no rows")
    # a later part's row replaces an earlier one of the same task, n and seed (a re-run)
    rows = list({(r["task"], r["n"], r["seed"]): r for r in rows}.values())
    fields = list(dict.fromkeys(k for r in rows for k in r))  # every part's columns, in order
    with open(OUT / f"{out}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=fields, restval="")
        w.writeheader()
        w.writerows(rows)
    ns = sorted({int(r["n"]) for r in rows})
    seeds = sorted({int(r["seed"]) for r in rows})
    cmd = (f"PYTHONPATH=src python3 benchmarks/bench_coverage.py{' --full' if grid == 'full' else ''} "
           f"--merge {','.join(parts)} --out {out}")
    parts_md = ", ".join(f"`{p.rsplit('.', 1)[0]}.md`" for p in parts)
    lines = [f"# Coverage of estimate_mi's 95 % interval ({grid} grid, merged)", "",
             f"Made by `{cmd}` from parts run separately ({parts_md}: each states its own command, "
             f"wall time and machine; a later part's row replaces an earlier one of the same task, "
             f"n and seed): {len(rows)} estimates, n = {', '.join(map(str, ns))}, "
             f"seeds {', '.join(map(str, seeds))}. Columns as in those parts: MI in nats, errors "
             "estimate - truth, `coverage` the share of 95 % intervals holding the truth, "
             "`unflagged misses` intervals missing it with no flag raised.", ""]
    order = [f for f in families(grid) if any(r["family"] == f for r in rows)]
    lines += table(rows, order)
    misses = [r for r in rows if str(r["covered"]) != "True"]
    if misses:
        lines += ["", "Misses: " + "; ".join(
            f"{r['task']} n={r['n']} seed={r['seed']}: {float(r['value']):.3f} "
            f"[{float(r['low']):.3f}, {float(r['high']):.3f}] (truth {float(r['truth']):.3f}"
            f"{', flags ' + r['flags'] if r['flags'] else ', unflagged'})" for r in misses) + "."]
    (OUT / f"{out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--full", action="store_true",
                    help="the full grid (more tasks, n up to 50 000, 3 seeds; hours on one thread)")
    ap.add_argument("--ns", default=None,
                    help="comma-separated sample sizes instead of the grid's (e.g. 20000,50000: the "
                         "large-n part of a grid on its own)")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds instead of the grid's")
    ap.add_argument("--out", default="coverage", help="name of the .md / .csv written to benchmarks/results/")
    ap.add_argument("--before", default=None,
                    help="a CSV of an earlier run of the same grid (e.g. coverage_before.csv): its "
                         "table is written beside this run's")
    ap.add_argument("--families", default=None,
                    help="comma-separated families of the grid to run (e.g. 'heavy tails'), "
                         "instead of all")
    ap.add_argument("--merge", default=None,
                    help="comma-separated CSVs in benchmarks/results/ (parts of a grid run "
                         "separately): write their joint table to --out, run nothing")
    args = ap.parse_args()
    grid = "full" if args.full else "small"
    if args.merge:
        merge(args.merge.split(","), grid, args.out)
        return
    ns = (100, 500, 2000, 5000, 20000, 50000) if args.full else (100, 500, 2000, 5000)
    seeds = (0, 1, 2) if args.full else (0, 1)
    try:
        ns = tuple(int(v) for v in args.ns.split(",")) if args.ns else ns
        seeds = tuple(int(v) for v in args.seeds.split(",")) if args.seeds else seeds
    except ValueError:
        ap.error("--ns and --seeds take comma-separated integers, e.g. --ns 20000,50000 --seeds 0")
    if min(ns) < 20 or min(seeds) < 0:
        ap.error(f"--ns must be at least 20 and --seeds at least 0, got {ns} and {seeds}")
    fams = args.families.split(",") if args.families else None
    unknown = set(fams or ()) - set(families(grid))
    if unknown:
        ap.error(f"unknown families {sorted(unknown)}; the {grid} grid has {list(families(grid))}")
    t0, c0 = time.perf_counter(), time.process_time()
    rows = run_grid(grid, ns, seeds, fams)
    wall, cpu_total = time.perf_counter() - t0, time.process_time() - c0
    OUT.mkdir(exist_ok=True)
    with open(OUT / f"{args.out}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    cpu = next((ln.split(":", 1)[1].strip() for ln in subprocess.run(
        ["lscpu"], capture_output=True, text=True).stdout.splitlines() if ln.startswith("Model name")), "?")
    load = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    order = list(families(grid))
    cmd = ("OMP_NUM_THREADS=1 PYTHONPATH=src python3 benchmarks/bench_coverage.py"
           + (" --full" if args.full else "") + (f" --ns {args.ns}" if args.ns else "")
           + (f" --seeds {args.seeds}" if args.seeds else "")
           + (f" --families '{args.families}'" if args.families else "")
           + (f" --out {args.out}" if args.out != "coverage" else "")
           + (f" --before {args.before}" if args.before else ""))
    tasks = sum(len(t) for f, t in families(grid).items() if not fams or f in fams)
    lines = [f"# Coverage of estimate_mi's 95 % interval ({grid} grid)", "",
             f"Made by `{cmd}`: {len(rows)} estimates ({tasks} tasks x n = {', '.join(map(str, ns))} x "
             f"{len(seeds)} seeds), {wall:.0f} s wall, {cpu_total:.0f} s CPU on one thread of {cpu} "
             f"(load at the end: `{load}`). MI in nats; errors are estimate - truth (mean over "
             "tasks and seeds); KSG (k = 3; up to "
             f"{BENCH_KSG_MAX_DIM} dimensions, on the first {BENCH_KSG_MAX_ROWS} rows) and CCA "
             "(plug-in Gaussian MI; not for labels) on all n rows of the same samples. `coverage`: share of 95 % intervals holding the truth. "
             "`flagged`: any flag raised. `unflagged misses`: intervals that miss the truth with "
             "no flag raised.", "", "Tasks: " + "; ".join(
                 f"{fam}: {', '.join(t.name for t in ts)}" for fam, ts in families(grid).items()) + ".", ""]
    lines += table(rows, order)
    if args.before:
        with open(OUT / args.before) as fh:
            before = list(csv.DictReader(fh))
        lines += ["", f"## Before: the same grid with the earlier interval and flags (`{args.before}`)", ""]
        lines += table(before, order)
    (OUT / f"{args.out}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
