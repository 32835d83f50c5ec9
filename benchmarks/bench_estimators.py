"""Accuracy and wall time of every bound and critic against closed-form MI (nats).

Run: ``OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_estimators.py [--out bench.csv]``.

Two problems with a known answer:

* Poole et al. (2019)'s staircase: 20-dimensional correlated Gaussians at true MI 2, 4, 6
  and 8 nats (:func:`layerib.mi.ground_truth.rho_for_mi`); critics ``concat`` and
  ``separable`` on (x, y).
* The linear-Gaussian layer of Elad et al. (2019), Eq. 5: X ~ N(0, I_10), L = W X + b,
  I(X; L + eps) = 0.5 logdet(I + W W^T / sigma^2) at sigma^2 = 1e-3 .. 1; every critic of
  :data:`layerib.mi.recipes.X_CRITICS` (``mine`` sees x, the AA-MINE critics see L).

``--suite``: :func:`layerib.mi.estimate.estimate_mi` with its defaults on the tasks of
:func:`layerib.mi.tasks.suite_tasks` (or ``--staircase``) at ``--n`` samples over ``--seeds``
seeds, beside KSG (k = 3) and CCA (:mod:`layerib.mi.baselines`) on the first
``--baseline-seeds`` seeds (KSG takes minutes at 50-100 dimensions a side). Columns:
mean estimate, relative error of the mean, interval coverage k / seeds, seconds, flags.
Measured (``benchmarks/results/``): ``--suite --n 5000 --seeds 10 --baseline-seeds 1``
took 27 min on one shared thread (KSG at 50-100 dimensions most of it); ``--staircase``
2 min; estimate_mi itself 2-12 s per call.

Each estimate of ``--part`` follows the reporting protocol (:func:`layerib.mi.recipes.estimate_x`: a
critic trained on ``--n-train`` samples, a held-out average over ``--n-test`` samples with
its standard error; no shuffled baseline here). The concatenation critics are trained on
all pairs of each batch (``--concat-marginal all``; MINE's one shuffle per batch gave
3.10 instead of 3.86 nats at 4 nats). Both parts take 20-40 minutes on one CPU thread;
``--part`` runs one of them. It prints a table and writes a CSV with
estimate, stderr, truth, relative error, ln B and wall seconds per (problem, critic, bound).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

import torch

from layerib.mi.ground_truth import linear_gaussian_mi, rho_for_mi, sample_correlated_gaussians
from layerib.mi.recipes import estimate_x, recipe_settings
from layerib.mi.settings import EstimatorSettings

FIELDS = ("problem", "truth_nats", "critic", "bound", "estimate_nats", "stderr_nats",
          "rel_error", "ln_batch", "exceeds_ln_batch", "wall_seconds", "steps", "batch_size",
          "n_train", "n_test")


def _staircase(args, s: EstimatorSettings):
    for mi in args.gaussian_mi:
        rho = rho_for_mi(mi, 20)
        g = torch.Generator().manual_seed(int(10 * mi))
        x, y = sample_correlated_gaussians(args.n_train, 20, rho, g)
        xt, yt = sample_correlated_gaussians(args.n_test, 20, rho, g)
        for critic in args.staircase_critics:
            yield f"gaussian20d_{mi:g}nats", mi, critic, (x, y, xt, yt, 0.0)


def _linear_layer(args, s: EstimatorSettings):
    g = torch.Generator().manual_seed(1)
    d = 10
    w, b = torch.randn(d, d, generator=g) / math.sqrt(d), torch.randn(d, generator=g)
    x, xt = torch.randn(args.n_train, d, generator=g), torch.randn(args.n_test, d, generator=g)
    l, lt = x @ w.T + b, xt @ w.T + b
    for nv in args.noise_vars:
        truth = linear_gaussian_mi(w, torch.eye(d), nv)
        for critic in args.layer_critics:
            u, ut = (x, xt) if critic == "mine" else (l, lt)
            yield f"linear_layer_var{nv:g}", truth, critic, (u, l, ut, lt, nv)


def _suite(args) -> None:
    import numpy as np

    from layerib.mi.baselines import cca_mi, ksg_mi
    from layerib.mi.estimate import estimate_mi
    from layerib.mi.tasks import staircase_tasks, suite_tasks
    tasks = staircase_tasks() if args.staircase else suite_tasks()
    if args.tasks:
        tasks = [t for t in tasks if any(k in t.name for k in args.tasks.split(","))]
    rows, table = [], []
    head = (f"{'task':>26} {'N':>6} {'truth':>6} {'estimate':>8} {'rel.err':>7} {'|err|med':>8} "
            f"{'cover':>5} {'sec':>5} {'KSG':>6} {'CCA':>6} {'best':>17} flags")
    print(head, flush=True)
    for t in tasks:
        for n in args.n:
            res, secs = [], []
            for seed in range(args.seeds):
                x, y = t.sample(n, seed)
                t0 = time.perf_counter()
                r = estimate_mi(x, y, seed=seed)
                secs.append(time.perf_counter() - t0)
                res.append(r)
                rows.append({"task": t.name, "n": n, "seed": seed, "truth_nats": t.mi, **{
                    k: v for k, v in r.to_dict().items() if k in (
                        "value", "stderr", "low", "high", "shuffled", "critic", "bound", "batch_size")},
                    "flags": ";".join(r.flags), "seconds": secs[-1]})
            base = [(ksg_mi(*t.sample(n, s_)), cca_mi(*t.sample(n, s_)))
                    for s_ in range(min(args.baseline_seeds, args.seeds))]
            vals = np.array([r.value for r in res])
            cover = sum(r.low <= t.mi <= r.high for r in res)
            ksg = float(np.mean([b[0] for b in base])) if base else float("nan")
            cca = float(np.mean([b[1] for b in base])) if base else float("nan")
            picked = max(set(f"{r.critic}/{r.bound}" for r in res), key=[f"{r.critic}/{r.bound}" for r in res].count)
            flags = sorted(set(f for r in res for f in r.flags))
            line = {"task": t.name, "n": n, "truth": t.mi, "mean": float(vals.mean()),
                    "rel_err_mean": float(vals.mean() / t.mi - 1),
                    "abs_rel_err_median": float(np.median(np.abs(vals / t.mi - 1))),
                    "coverage": f"{cover}/{len(res)}", "seconds": float(np.mean(secs)), "ksg": ksg,
                    "cca": cca, "picked": picked, "flags": ",".join(flags),
                    "half_width_mean": float(np.mean([(r.high - r.low) / 2 for r in res])),
                    "nonfinite": int(sum(not np.isfinite(r.value) for r in res)),
                    "unflagged_negative": int(sum(r.value < 0 and not r.negative for r in res))}
            table.append(line)
            print(f"{t.name:>26} {n:>6} {t.mi:>6.3f} {line['mean']:>8.3f} {100 * line['rel_err_mean']:>6.1f}% "
                  f"{100 * line['abs_rel_err_median']:>7.1f}% {line['coverage']:>5} {line['seconds']:>5.1f} "
                  f"{ksg:>6.3f} {cca:>6.3f} {picked:>17} {line['flags']}", flush=True)
    atomic_csv(args.out, rows)
    atomic_csv(args.out.with_suffix(".summary.csv"), table)
    print(f"wrote {args.out} and {args.out.with_suffix('.summary.csv')}")


def atomic_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else [])
        w.writeheader()
        w.writerows(rows)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=Path("bench_estimators.csv"), help="CSV to write")
    p.add_argument("--steps", type=int, default=2000, help="critic training steps")
    p.add_argument("--batch-size", type=int, default=128, help="B (ln B caps batch estimates)")
    p.add_argument("--hidden", type=int, default=256, help="MLP critic width")
    p.add_argument("--lr", type=float, default=1e-3, help="critic learning rate")
    p.add_argument("--n-train", type=int, default=65536, help="training samples")
    p.add_argument("--n-test", type=int, default=8192, help="held-out samples")
    p.add_argument("--passes", type=int, default=2, help="held-out passes")
    p.add_argument("--bounds", default="dv,nwj,infonce", help="comma-separated bounds")
    p.add_argument("--gaussian-mi", default="2,4,6,8", help="staircase MI values (nats)")
    p.add_argument("--staircase-critics", default="concat,separable",
                   help="critics on (x, y) for the Gaussian staircase")
    p.add_argument("--noise-vars", default="0.001,0.01,0.1,1", help="linear-layer noise variances")
    p.add_argument("--layer-critics", default="mixture,gaussian,concat,separable,mine")
    p.add_argument("--concat-marginal", default="all", choices=("all", "shuffle"),
                   help="marginal pairs of the concat critics under DV/NWJ")
    p.add_argument("--part", default="both", choices=("both", "gaussian", "layer"),
                   help="which problem to run")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    p.add_argument("--suite", action="store_true", help="estimate_mi, KSG and CCA on the task suite")
    p.add_argument("--staircase", action="store_true", help="with --suite: the 20-d staircase only")
    p.add_argument("--tasks", default="", help="with --suite: comma-separated name fragments to keep")
    p.add_argument("--n", default="5000", help="with --suite: comma-separated sample sizes")
    p.add_argument("--seeds", type=int, default=10, help="with --suite: seeds per task (coverage)")
    p.add_argument("--baseline-seeds", type=int, default=2, help="with --suite: seeds of KSG / CCA")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.suite:
        args.n = [int(v) for v in args.n.split(",") if v]
        _suite(args)
        return
    args.gaussian_mi = [float(v) for v in args.gaussian_mi.split(",") if v]
    args.noise_vars = [float(v) for v in args.noise_vars.split(",") if v]
    args.layer_critics = [c for c in args.layer_critics.split(",") if c]
    args.staircase_critics = [c for c in args.staircase_critics.split(",") if c]
    bounds = [b for b in args.bounds.split(",") if b]
    s = recipe_settings(steps=args.steps, lr=args.lr, batch_size=args.batch_size, hidden=args.hidden,
                       passes=args.passes, baseline=False, pair_batch_size=args.batch_size,
                       concat_marginal=args.concat_marginal)
    print(f"B={args.batch_size} (ln B={math.log(args.batch_size):.2f}) steps={args.steps} "
          f"n_train={args.n_train} n_test={args.n_test} threads={torch.get_num_threads()}")
    print(f"{'problem':>24} {'truth':>7} {'critic':>9} {'bound':>7} {'estimate':>9} {'stderr':>7} "
          f"{'rel.err':>8} {'seconds':>8}")
    rows = []
    problems = {"both": (_staircase, _linear_layer), "gaussian": (_staircase,),
                "layer": (_linear_layer,)}[args.part]
    for problem in problems:
        for name, truth, critic, (u, v, ut, vt, nv) in problem(args, s):
            for bound in bounds:
                t0 = time.perf_counter()
                r = estimate_x(critic, bound, u, v, ut, vt, nv, s)
                row = {"problem": name, "truth_nats": truth, "critic": critic, "bound": bound,
                       "estimate_nats": r.value, "stderr_nats": r.stderr,
                       "rel_error": (r.value - truth) / truth, "ln_batch": r.ln_batch,
                       "exceeds_ln_batch": r.exceeds_ln_batch,
                       "wall_seconds": time.perf_counter() - t0, "steps": args.steps,
                       "batch_size": args.batch_size, "n_train": args.n_train, "n_test": args.n_test}
                rows.append(row)
                print(f"{name:>24} {truth:>7.3f} {critic:>9} {bound:>7} {r.value:>9.3f} "
                      f"{r.stderr:>7.3f} {100 * row['rel_error']:>7.1f}% {row['wall_seconds']:>8.1f}"
                      + ("  > ln B" if r.exceeds_ln_batch else ""), flush=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
