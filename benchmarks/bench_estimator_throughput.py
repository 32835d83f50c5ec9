"""Critic steps per second and final accuracy of each bound, against the batch size.

On the 20-dimensional correlated Gaussian of the estimation issue (Poole et al. 2019's
staircase; true MI ``--mi`` nats, closed form), for every bound (dv, nwj, infonce) and
critic (separable; concat on all pairs, up to B = 256 by default) at batch
sizes 64 to 1024: trains a fresh critic
for ``--steps`` steps (timed: steps per second of the training loop alone), then reports
the held-out estimate (nats, :func:`layerib.mi.protocol.heldout_estimate`) with its
standard error and the truth. Peak resident set size is printed per row (it only grows
within one process, so the row that raises it is the one that needs it). A script, not a test:

    OMP_NUM_THREADS=1 python benchmarks/bench_estimator_throughput.py [--steps 300] [--out CSV]
"""

from __future__ import annotations

import argparse
import csv
import math
import resource
import time
from pathlib import Path

import torch

from layerib.mi.critics import ConcatCritic, SeparableCritic
from layerib.mi.estimators import MIEstimator
from layerib.mi.ground_truth import rho_for_mi, sample_correlated_gaussians
from layerib.mi.protocol import heldout_estimate, train_estimator

FIELDS = ("critic", "bound", "batch_size", "steps", "steps_per_second", "estimate_nats",
          "stderr_nats", "truth_nats", "rel_error", "ln_batch", "peak_rss_mib", "threads")


def _estimator(critic: str, bound: str, dim: int, hidden: int) -> MIEstimator:
    module = (SeparableCritic(dim, dim, hidden) if critic == "separable"
              else ConcatCritic(dim, dim, hidden))
    return MIEstimator(module, bound=bound, marginal="all", ema_rate=0.01 if bound == "dv" else None)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mi", type=float, default=2.0, help="true MI of the Gaussian (nats)")
    p.add_argument("--dim", type=int, default=20)
    p.add_argument("--steps", type=int, default=300, help="critic steps per row")
    p.add_argument("--batch-sizes", default="64,128,256,512,1024")
    p.add_argument("--critics", default="separable,concat")
    p.add_argument("--bounds", default="dv,nwj,infonce")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--concat-max-batch", type=int, default=256,
                   help="largest B for the concat critic (all B^2 pairs through an MLP: "
                        "0.8 steps/s at B = 256 on one thread)")
    p.add_argument("--n-train", type=int, default=32768)
    p.add_argument("--n-test", type=int, default=8192)
    p.add_argument("--out", type=Path, default=Path("bench_estimator_throughput.csv"))
    a = p.parse_args()
    g = torch.Generator().manual_seed(0)
    rho = rho_for_mi(a.mi, a.dim)
    x, y = sample_correlated_gaussians(a.n_train, a.dim, rho, g)
    xt, yt = sample_correlated_gaussians(a.n_test, a.dim, rho, g)
    print(f"{a.dim}-d Gaussian, true MI {a.mi} nats, {a.steps} steps per row, "
          f"{torch.get_num_threads()} threads")
    print(f"{'critic':>9} {'bound':>7} {'B':>5} {'steps/s':>8} {'estimate':>9} {'stderr':>7} "
          f"{'rel.err':>8} {'ln B':>5} {'RSS MiB':>8}")
    rows = []
    for critic in a.critics.split(","):
        for bound in a.bounds.split(","):
            for b in (int(v) for v in a.batch_sizes.split(",")):
                if critic == "concat" and b > a.concat_max_batch:
                    print(f"{critic:>9} {bound:>7} {b:>5}  skipped (> --concat-max-batch)")
                    continue
                torch.manual_seed(0)
                est = _estimator(critic, bound, a.dim, a.hidden)
                train_estimator(_estimator(critic, bound, a.dim, a.hidden), x[:2 * b], y[:2 * b],
                                epochs=1, batch_size=b, seed=0)  # warm-up, not timed
                # time exactly `steps` steps: train on the first steps * B rows, one epoch
                m = min(a.steps * b, a.n_train)
                reps = math.ceil(a.steps * b / m)
                t = time.perf_counter()
                train_estimator(est, x[:m], y[:m], epochs=reps, batch_size=b, seed=0)
                dt = time.perf_counter() - t
                n_steps = reps * (m // b)
                r = heldout_estimate(est, xt, yt, b, seed=1)
                row = {"critic": critic, "bound": bound, "batch_size": b, "steps": n_steps,
                       "steps_per_second": n_steps / dt, "estimate_nats": r.value,
                       "stderr_nats": r.stderr, "truth_nats": a.mi,
                       "rel_error": (r.value - a.mi) / a.mi, "ln_batch": math.log(b),
                       "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                       "threads": torch.get_num_threads()}
                rows.append(row)
                print(f"{critic:>9} {bound:>7} {b:>5} {row['steps_per_second']:>8.1f} "
                      f"{r.value:>9.3f} {r.stderr:>7.3f} {100 * row['rel_error']:>7.1f}% "
                      f"{row['ln_batch']:>5.2f} {row['peak_rss_mib']:>8.0f}", flush=True)
    tmp = a.out.with_suffix(".tmp")
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        w.writerows(rows)
    tmp.replace(a.out)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
