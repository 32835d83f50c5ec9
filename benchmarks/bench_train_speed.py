"""IB vs CE: wall time per training epoch of the MNIST MLP, in one process.

Prints a table and writes a CSV: seconds per epoch of each layer-wise IB stage
(the layer and its two critics, one epoch of the training subset) and of end-to-end
CE training of the whole net, at the same batch size, on the same data, their
ratios, and the peak resident set size. A script, not a test:

    LAYERIB_DATA_ROOT=../shared/data python benchmarks/bench_train_speed.py [--fraction 0.1]

Two ratios are printed: one IB layer stage (mean over layers) / CE, the like-for-like
"epoch of training" of each method, and all IB stages together / CE (layer-wise
training runs one stage per layer, so a full IB pass over the data costs the sum).
Close other jobs first: with other processes on the two cores, torch's OpenMP
threads contend and times grow many-fold (set OMP_NUM_THREADS=1 then).
"""

from __future__ import annotations

import argparse
import csv
import math
import resource
import time
from pathlib import Path

import dataclasses

import torch

from layerib.config import TrainConfig, resolve_beta, resolve_critic_update
from layerib.ib.endtoend import train_cross_entropy
from layerib.ib.layerwise import forward_cached, train_layer
from layerib.models.mlp import mlp
from layerib.runs.folder import atomic_write
from layerib.runs.training import load_data


def measure(fraction: float, widths: tuple[int, ...] = (512, 512, 10), epochs: int = 1,
            min_steps: int = 20, seed: int = 0, y_critic: str = "concat",
            critic_update: str = "auto") -> dict:
    """Seconds per epoch of each IB layer stage and of CE on the MNIST MLP.

    Each method runs ``max(epochs, ceil(min_steps / steps_per_epoch))`` epochs (so
    tiny subsets are not timed on 2 steps) after one untimed warm-up step.

    Returns:
        ``{"n_train", "steps_per_epoch", "ib_layer_seconds_per_epoch": [...],
        "ib_seconds_per_epoch" (mean over layers), "ib_all_stages_seconds_per_epoch",
        "ce_seconds_per_epoch", "ratio_stage", "ratio_all", "peak_rss_mib", "threads"}``.
    """
    cfg = TrainConfig(train_fraction=fraction, widths=widths, seed=seed, y_critic=y_critic,
                      critic_update=critic_update)
    train, _ = load_data(cfg)
    cfg = resolve_beta(cfg, len(train))
    x, y = train.images, train.labels
    prior = torch.bincount(y, minlength=10).float() / len(y)
    per_epoch = len(y) // cfg.batch_size
    n_epochs = max(epochs, math.ceil(min_steps / max(per_epoch, 1)))
    s = dataclasses.replace(cfg, epochs_per_layer=n_epochs, min_steps_per_layer=0, evals_per_layer=1)
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = mlp(tuple(x.shape[1:]), widths)
    bs = cfg.batch_size  # warm-up: one step on one batch
    train_layer(mlp(tuple(x.shape[1:]), widths).layers[0], 1, x[:bs], y[:bs], prior,
                dataclasses.replace(s, epochs_per_layer=1), g)
    ib, h = [], x
    for i, layer in enumerate(net.layers, start=1):
        t = time.perf_counter()
        train_layer(layer, i, h, y, prior, s, g)
        ib.append((time.perf_counter() - t) / n_epochs)
        net.freeze(i)
        h = forward_cached(layer, h)
    ce_net = mlp(tuple(x.shape[1:]), widths)
    t = time.perf_counter()
    train_cross_entropy(ce_net, x, y, steps=n_epochs * per_epoch, batch_size=cfg.batch_size, lr=cfg.lr_layer, g=g)
    ce = (time.perf_counter() - t) / n_epochs
    mean_ib = sum(ib) / len(ib)
    return {"n_train": len(y), "y_critic": y_critic,
            "critic_update": resolve_critic_update(cfg), "widths": "-".join(map(str, widths)), "batch_size": cfg.batch_size,
            "steps_per_epoch": per_epoch, "epochs_timed": n_epochs,
            "ib_layer_seconds_per_epoch": ib, "ib_seconds_per_epoch": mean_ib,
            "ib_all_stages_seconds_per_epoch": sum(ib), "ce_seconds_per_epoch": ce,
            "ratio_stage": mean_ib / ce, "ratio_all": sum(ib) / ce,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads()}


def write_csv(path: str, rows: list[dict]) -> None:
    """``rows`` (dicts with the first row's keys) as a CSV, atomically."""
    def write(f) -> None:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write(Path(path), write)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fraction", type=float, default=0.1, help="training-set fraction")
    p.add_argument("--epochs", type=int, default=1, help="epochs timed per method")
    p.add_argument("--y-critic", default="concat", choices=("concat", "heads"),
                   help="I(Y;L) critic of the IB stages")
    p.add_argument("--critic-update", default="auto", choices=("auto", "joint", "alternating"),
                   help="how the IB stages update critic and layer (see layerib.ib.layerwise)")
    p.add_argument("--out", default="bench_train_speed.csv")
    a = p.parse_args()
    r = measure(a.fraction, epochs=a.epochs, y_critic=a.y_critic, critic_update=a.critic_update)
    print(f"MNIST {r['n_train']} images, I(Y;L) critic {r['y_critic']}, {r['critic_update']} updates, batch {r['batch_size']}, {r['threads']} threads, "
          f"{r['epochs_timed']} epochs timed, peak RSS {r['peak_rss_mib']:.0f} MiB")
    for i, t in enumerate(r["ib_layer_seconds_per_epoch"], start=1):
        print(f"{'ib layer ' + str(i):>22}: {t:7.2f} s/epoch")
    print(f"{'ib, mean over layers':>22}: {r['ib_seconds_per_epoch']:7.2f} s/epoch")
    print(f"{'ce (whole net)':>22}: {r['ce_seconds_per_epoch']:7.2f} s/epoch")
    print(f"ratio IB (one layer stage, mean) / CE: {r['ratio_stage']:.2f}; "
          f"IB all {len(r['ib_layer_seconds_per_epoch'])} stages / CE: {r['ratio_all']:.2f}")
    row = {k: v for k, v in r.items() if k != "ib_layer_seconds_per_epoch"}
    for i, t in enumerate(r["ib_layer_seconds_per_epoch"], start=1):
        row[f"ib_layer{i}_seconds_per_epoch"] = t
    write_csv(a.out, [row])
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
