"""Profile one IB layer stage and one CE run of the MNIST MLP (torch.profiler).

Prints the top operators by self CPU time of ``--steps`` layer-1 IB steps and of
the same number of CE steps, plus the wall time per step of each. A script, not a test:

    LAYERIB_DATA_ROOT=../shared/data OMP_NUM_THREADS=1 python benchmarks/profile_train.py [--steps 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch
from torch.profiler import ProfilerActivity, profile

from layerib.config import TrainConfig, resolve_beta
from layerib.ib.endtoend import train_cross_entropy
from layerib.ib.layerwise import train_layer
from layerib.models.mlp import mlp
from layerib.runs.training import load_data


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100, help="steps profiled per method")
    p.add_argument("--layer", type=int, default=1, choices=(1, 2, 3), help="IB layer stage profiled")
    p.add_argument("--top", type=int, default=15, help="rows printed per profile")
    p.add_argument("--critic-update", default="auto", choices=("auto", "joint", "alternating"))
    p.add_argument("--y-critic", default="concat", choices=("concat", "heads"))
    a = p.parse_args()
    cfg = TrainConfig(train_fraction=0.1, min_steps_per_layer=0, critic_update=a.critic_update,
                      y_critic=a.y_critic)
    train, _ = load_data(cfg)
    cfg = resolve_beta(cfg, len(train))
    x, y = train.images, train.labels
    prior = torch.bincount(y, minlength=10).float() / len(y)
    s = dataclasses.replace(cfg, epochs_per_layer=1, min_steps_per_layer=a.steps, evals_per_layer=1)
    g = torch.Generator().manual_seed(0)
    net = mlp(tuple(x.shape[1:]), cfg.widths)
    h = x
    with torch.no_grad():
        for layer in net.layers[:a.layer - 1]:
            h = layer(h)
    layer = net.layers[a.layer - 1]
    for name, fn in (
        (f"ib layer {a.layer}", lambda: train_layer(layer, a.layer, h, y, prior, s, g)),
        ("ce", lambda: train_cross_entropy(mlp(tuple(x.shape[1:]), cfg.widths), x, y,
                                           steps=a.steps, batch_size=cfg.batch_size,
                                           lr=cfg.lr_layer, g=g)),
    ):
        t = time.perf_counter()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            fn()
        dt = time.perf_counter() - t
        print(f"\n=== {name}: {a.steps} steps, {1e3 * dt / a.steps:.1f} ms/step (profiled), "
              f"{torch.get_num_threads()} threads ===")
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=a.top))


if __name__ == "__main__":
    main()
