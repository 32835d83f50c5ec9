"""Speed of the final MI report and of ``layerib estimate --run`` on the default MNIST run.

Prints the run's wall time, the final report's wall and CPU time and its share of the run,
and the wall and CPU time of ``layerib estimate --run RUN`` with its defaults, with the
machine (``lscpu`` model name, threads) and the load before and after each step.

Run (from the repository root)::

    OMP_NUM_THREADS=2 PYTHONPATH=src python3 benchmarks/bench_report_speed.py --train runs/bench

``--train DIR`` first trains the README's first command (``layerib train --dataset mnist
--method ib``) into DIR (refused if DIR exists) and measures it; ``--run DIR`` reuses a
finished run instead (its ``result.json`` has the report's time since the report recorded
it). ``estimate --run`` then runs on that run, writing to a temporary file.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def cpu_model() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    return next((ln.split(":", 1)[1].strip() for ln in out.splitlines()
                 if ln.startswith("Model name")), "unknown CPU")


def load() -> str:
    return "load %.2f %.2f %.2f" % os.getloadavg()


def timed(cmd: list[str]) -> tuple[float, float, str]:
    """``(wall s, CPU s of the child: user + sys, its stdout)``; exits on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{p.stderr[-2000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--train", type=Path, help="train the default MNIST run into this new folder")
    g.add_argument("--run", type=Path, help="a finished default MNIST run to reuse")
    ap.add_argument("--skip-estimate", action="store_true", help="time the run only")
    args = ap.parse_args()
    threads = os.environ.get("OMP_NUM_THREADS", "unset (torch's default)")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs; OMP_NUM_THREADS={threads}")
    layerib = [sys.executable, "-m", "layerib"]
    run = args.run
    if args.train is not None:
        if args.train.exists():
            sys.exit(f"{args.train} exists; pass a new folder (or --run {args.train})")
        print(f"train: start, {load()}", flush=True)
        wall, cpu, _ = timed(layerib + ["train", "--dataset", "mnist", "--method", "ib",
                                        "--out", str(args.train), "--no-progress"])
        print(f"train: {wall:.1f} s wall, {cpu:.1f} s CPU (user + sys); end, {load()}")
        run = args.train
    res = json.loads((run / "result.json").read_text())
    print(f"run {run}: {res['wall_seconds']:.1f} s wall (its own clock), test accuracy "
          f"{res['test_accuracy']:.4f}")
    if "report_seconds" in res:
        share = res["report_seconds"] / res["wall_seconds"]
        print(f"final MI report: {res['report_seconds']:.1f} s wall ({share:.1%} of the run), "
              f"{res['report_cpu_seconds']:.1f} s CPU")
    else:
        print("final MI report: not timed (a run written before the report recorded its time)")
    for layer in res["layers"]:
        print(f"  layer {layer['index']}: I(X;L+eps) Monte Carlo {layer['i_x_monte_carlo_nats']:.3f}"
              f" +- {layer['i_x_monte_carlo_stderr']:.3f}, neural check {layer['i_x_nats']:.3f}, "
              f"I(Y;L) {layer['i_y_nats']:.3f}; flags {layer['flags']}")
    if args.skip_estimate:
        return
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "estimate.json"
        print(f"estimate --run: start, {load()}", flush=True)
        wall, cpu, _ = timed(layerib + ["estimate", "--run", str(run), "--out", str(out),
                                        "--no-progress"])
        est = json.loads(out.read_text())
    print(f"estimate --run (defaults): {wall:.1f} s wall, {cpu:.1f} s CPU (user + sys); "
          f"end, {load()}")
    for layer in est["layers"]:
        row = layer["i_x"][0]
        auto = row["estimates"].get("auto")
        iy = next(iter(layer["i_y"].values()), None)
        print(f"  layer {layer['index']}: I(X;L+eps) Monte Carlo {row['truth']['value']:.3f} +- "
              f"{row['truth']['stderr']:.3f}" + (f", neural check {auto['value']:.3f}" if auto else "")
              + (f", I(Y;L) {iy['value']:.3f}" if iy else ""))


if __name__ == "__main__":
    main()
