"""IB vs CE: wall time per training epoch of the MNIST MLP, in one process.

Prints a table and writes ``bench_train_speed.csv``: seconds per epoch of one
layer-wise IB stage (each of the three layers, critics included) and of
end-to-end CE training, at the same batch size, on the same data, plus their
ratio and the peak resident set size. A script, not a test:

    LAYERIB_DATA_ROOT=../shared/data python benchmarks/bench_train_speed.py [--fraction 0.1]

Close other jobs first: with other processes on the two cores, torch's
OpenMP threads contend and times grow many-fold (set OMP_NUM_THREADS=1 then).
"""

from __future__ import annotations

import argparse
import csv
import resource
import time

import torch

from layerib.config import TrainConfig, resolve_beta
from layerib.ib.endtoend import train_cross_entropy
from layerib.ib.layerwise import forward_cached, train_layer
from layerib.models.mlp import mlp
from layerib.train import _layer_settings, load_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fraction", type=float, default=0.1, help="training-set fraction")
    p.add_argument("--epochs", type=int, default=1, help="epochs timed per method")
    p.add_argument("--out", default="bench_train_speed.csv")
    a = p.parse_args()
    cfg = TrainConfig(train_fraction=a.fraction, epochs_per_layer=a.epochs, min_steps_per_layer=0)
    train, _ = load_data(cfg)
    cfg = resolve_beta(cfg, len(train))
    x, y = train.images, train.labels
    prior = torch.bincount(y, minlength=10).float() / len(y)
    s = _layer_settings(cfg, len(y))
    g = torch.Generator().manual_seed(0)
    net = mlp(tuple(x.shape[1:]), cfg.widths)
    rows, h, ib_total = [], x, 0.0
    for i, layer in enumerate(net.layers, start=1):
        t = time.perf_counter()
        train_layer(layer, i, h, y, prior, net.feature_dims[i - 1], s, g)
        dt = (time.perf_counter() - t) / a.epochs
        ib_total += dt
        rows.append({"method": f"ib layer {i}", "seconds_per_epoch": dt})
        net.freeze(i)
        h = forward_cached(layer, h)
    ce_net = mlp(tuple(x.shape[1:]), cfg.widths)
    t = time.perf_counter()
    train_cross_entropy(ce_net, x, y, steps=s.steps, batch_size=cfg.batch_size, lr=cfg.lr_layer, g=g)
    ce = (time.perf_counter() - t) / a.epochs
    rows.append({"method": "ib, mean over layers", "seconds_per_epoch": ib_total / len(net)})
    rows.append({"method": "ce (whole net)", "seconds_per_epoch": ce})
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"MNIST {len(y)} images, batch {cfg.batch_size}, {torch.get_num_threads()} threads, "
          f"peak RSS {rss:.0f} MiB")
    for r in rows:
        print(f"{r['method']:>22}: {r['seconds_per_epoch']:7.2f} s/epoch")
    print(f"ratio IB (per layer stage, mean) / CE: {ib_total / len(net) / ce:.2f}; "
          f"IB all three stages / CE: {ib_total / ce:.2f}")
    with open(a.out, "w", newline="") as f:
        w = csv.DictWriter(f, ["method", "seconds_per_epoch"])
        w.writeheader()
        w.writerows(rows)


if __name__ == "__main__":
    main()
