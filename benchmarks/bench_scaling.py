"""Time per epoch of IB and CE training against training-set size and layer width.

Each configuration runs in its own subprocess (so its peak resident set size is its
own) through :func:`bench_train_speed.measure`: MNIST fractions 1 %, 10 %, 100 % at
widths 512-512-10, then widths 256 to 2048 (both hidden layers) at 10 %. Prints a table,
the seconds per training image of each row (constant when time grows linearly with the
set size) and writes a CSV. A script, not a test:

    LAYERIB_DATA_ROOT=../shared/data OMP_NUM_THREADS=1 python benchmarks/bench_scaling.py
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench_train_speed import write_csv  # this folder is on sys.path when run as a script

HERE = Path(__file__).resolve().parent


def _child(fraction: float, width: int) -> dict:
    code = ("import json, sys; sys.path.insert(0, %r); from bench_train_speed import measure; "
            "r = measure(%r, (%d, %d, 10)); print('RESULT ' + json.dumps(r))"
            % (str(HERE), fraction, width, width))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"fraction {fraction}, width {width} failed:\n{proc.stderr[-2000:]}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT "):])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fractions", default="0.01,0.1,1.0")
    p.add_argument("--widths", default="256,512,1024,2048")
    p.add_argument("--width-fraction", type=float, default=0.1, help="set size of the width sweep")
    p.add_argument("--out", default="bench_scaling.csv")
    a = p.parse_args()
    configs = [("size", float(f), 512) for f in a.fractions.split(",")]
    configs += [("width", a.width_fraction, int(w)) for w in a.widths.split(",")]
    done: dict[tuple[float, int], dict] = {}
    print(f"{'sweep':>6} {'N':>6} {'width':>5} {'IB s/ep':>8} {'CE s/ep':>8} {'ratio':>6} "
          f"{'IB ms/img':>9} {'CE ms/img':>9} {'RSS MiB':>8}")
    rows = []
    for sweep, fraction, width in configs:
        if (fraction, width) not in done:  # the 10 %, 512 point serves both sweeps
            done[fraction, width] = _child(fraction, width)
        r = dict(done[fraction, width], sweep=sweep)
        r.pop("ib_layer_seconds_per_epoch")
        r["ib_ms_per_image"] = 1e3 * r["ib_all_stages_seconds_per_epoch"] / r["n_train"]
        r["ce_ms_per_image"] = 1e3 * r["ce_seconds_per_epoch"] / r["n_train"]
        rows.append(r)
        print(f"{r['sweep']:>6} {r['n_train']:>6} {width:>5} {r['ib_all_stages_seconds_per_epoch']:>8.2f} "
              f"{r['ce_seconds_per_epoch']:>8.2f} {r['ratio_all']:>6.2f} {r['ib_ms_per_image']:>9.3f} "
              f"{r['ce_ms_per_image']:>9.3f} {r['peak_rss_mib']:>8.0f}", flush=True)
    size = [r for r in rows if r["sweep"] == "size"]
    if len(size) > 1:
        lo, hi = size[0], size[-1]
        grow = (hi["ib_all_stages_seconds_per_epoch"] / lo["ib_all_stages_seconds_per_epoch"])
        print(f"IB time per epoch grew {grow:.1f}x for {hi['n_train'] / lo['n_train']:.0f}x the "
              f"images: per-image cost {lo['ib_ms_per_image']:.3f} -> {hi['ib_ms_per_image']:.3f} ms "
              f"({'linear or better' if hi['ib_ms_per_image'] <= 1.1 * lo['ib_ms_per_image'] else 'super-linear'})")
    write_csv(a.out, rows)
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
