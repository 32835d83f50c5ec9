"""Scan beta on a small MNIST subset: test accuracy and every layer's I(Y;L), I(X;L+eps), scale.

Issue 15, item 3 (why beta in [1e-2, 1e-1] collapsed on MNIST 1 %). Each (beta, seed) is one
``layerib train`` run (``--method iy`` for beta = 0) in ``OUT/b{beta}s{seed}``; a finished run
folder is read, not retrained. The table gives, per run, the test accuracy and per layer the
held-out I(Y;L), I(X;L+eps) (nats), the per-element RMS of L and the fraction of dead units
(zero on all held-out images), at the end of the layer's stage; ``--trace`` also prints every
evaluation of every layer (training and held-out I(Y;L), I(X;L+eps), RMS, per-unit std).

    OMP_NUM_THREADS=1 LAYERIB_DATA_ROOT=/work/shared/data PYTHONPATH=$PWD/src \\
        python3 examples/beta_scan.py --out /tmp/ib15/scan --betas 0,1e-4,1e-2,1e-1,1 --seeds 0
    ... --set critic_update=alternating   # any TrainConfig field (key=value, parsed as YAML)
    ... --set layer_first=true --set y_input_norm=rms   # the options this study added

``--jobs 2`` runs two trainings at once (each on one thread).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import yaml


def _run(args: tuple[float, int, float, dict, str]) -> str:
    beta, seed, fraction, extra, out = args
    from layerib.config import TrainConfig
    from layerib.runs.training import run_training

    if Path(out, "result.json").exists():
        return out
    method = "iy" if beta == 0 else "ib"
    cfg = TrainConfig(method=method, beta=None if beta == 0 else beta, train_fraction=fraction,
                      seed=seed, evals_per_layer=extra.pop("evals_per_layer", 20), **extra)
    run_training(cfg, out, force=True)
    return out


def _records(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines() if line]


def summarise(folder: Path) -> dict:
    """Test accuracy and, per layer, the last evaluation of its stage."""
    res = json.loads((folder / "result.json").read_text())
    recs = _records(folder)
    layers = {}
    for r in recs:
        if r.get("stage") == "layer":
            layers[r["layer"]] = r
    return {"acc": res["test_accuracy"], "layers": layers, "records": recs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--betas", default="0,1e-4,1e-3,1e-2,1e-1,1,1e1,1e2")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--fraction", type=float, default=0.01)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="TrainConfig field for every run (repeatable)")
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--trace", action="store_true", help="print every evaluation too")
    ap.add_argument("--json", help="write the table as JSON here")
    a = ap.parse_args(argv)
    betas = [float(b) for b in a.betas.split(",")]
    seeds = [int(s) for s in a.seeds.split(",")]
    extra = {}
    for kv in a.set:
        k, v = kv.split("=", 1)
        extra[k] = yaml.safe_load(v)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    jobs = [(b, s, a.fraction, dict(extra), str(Path(a.out, f"b{b:g}s{s}")))
            for b in betas for s in seeds]
    if a.jobs > 1:
        with ProcessPoolExecutor(a.jobs) as ex:
            list(ex.map(_run, jobs))
    else:
        import torch
        torch.set_num_threads(1)
        for j in jobs:
            _run(j)
    table = []
    print(f"{'beta':>7} {'seed':>4} {'acc':>6} | per layer: I(Y;L) I(X;L+e) rms dead")
    for b, s, _, _, out in jobs:
        sm = summarise(Path(out))
        row = {"beta": b, "seed": s, "test_accuracy": sm["acc"], "layers": {}}
        cells = []
        for i, r in sorted(sm["layers"].items()):
            row["layers"][i] = {k: r.get(k) for k in ("test_i_y_nats", "test_i_x_nats", "test_output_rms",
                                                      "test_unit_std", "test_dead_units")}
            cells.append(f"L{i} {r['test_i_y_nats']:.2f} {r['test_i_x_nats']:.3f} "
                         f"{r.get('test_output_rms', float('nan')):.3g} {r.get('test_dead_units', 0):.2f}")
        table.append(row)
        print(f"{b:7g} {s:4d} {100 * sm['acc']:6.2f} | " + " | ".join(cells))
        if a.trace:
            for r in sm["records"]:
                if r.get("stage") == "layer":
                    print(f"    L{r['layer']} step {r['step']:4d}  I(Y) tr {r['train_i_y_nats']:.3f} "
                          f"te {r['test_i_y_nats']:.3f}  I(X) tr {r['train_i_x_nats']:.4f} "
                          f"te {r['test_i_x_nats']:.4f}  rms {r.get('test_output_rms', float('nan')):.4g} "
                          f"ustd {r.get('test_unit_std', float('nan')):.4g} "
                          f"dead {r.get('test_dead_units', 0):.2f}")
    if a.json:
        Path(a.json).write_text(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
