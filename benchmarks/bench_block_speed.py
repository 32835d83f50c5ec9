"""Cost of layer-wise IB steps on the VGG / ResNet units against one end-to-end CE step.

For each conv unit of the net: the flattened size its critics see, their parameter
counts, the CPU seconds of one layer-wise IB step (:func:`layerib.ib.layerwise.train_layer`
with the stage settings of the
default CIFAR-10 :class:`TrainConfig` at batch 128: joint updates, concat label critic,
hidden 128), of the unit's own forward + backward + Adam step on a dummy loss ("unit
only"), of the critics' share of a step on a random leaf standing for the unit's output
("critics only": both bounds, backward to the output, the critics' Adam), and the
float32 size of the unit's cached output on 50000 images. Then one CE step of the
whole net (:func:`layerib.ib.endtoend.train_cross_entropy`). Random images (the speed
does not depend on them); each timing is the median and min of ``--steps`` steps after
one untimed one, in process CPU time (wall time on two shared cores varied 2-3x).
A benchmark, not a test:

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_block_speed.py \\
        --arch vgg --unit block --steps 5 [--flush-denormal] --out vgg_block.csv

``--flush-denormal`` calls ``torch.set_flush_denormal(True)``. Without it, the InfoNCE
softmax weights that underflow into float32 denormals (score gaps of ~87-104 nats)
make the critics' ``(128, 128) @ (128, D)`` backward products 10-15x slower on this
CPU (profiled: 0.45 s each for D = 16384 in VGG unit 1), so an IB step's cost depends
on the scale of the unit's output; with it, they flush to 0 (they are < 1.2e-38).

Measured 2026-12-01 (torch 2.13 CPU, one thread, batch 128, 5 timed steps, two cores
shared with other jobs): CPU s per step, median, with --flush-denormal, [without] where
it differs by more than 20 %; "label cr." = label-critic parameters:

    unit          output      dim  label cr.  IB step       unit only  critics only
    vgg block 1   64x16x16  16384    2.10M    0.80 [1.32]   0.65       0.06
    vgg block 2   128x8x8    8192    1.05M    0.41          0.41       0.03 [0.40]
    vgg block 3   256x4x4    4096    0.53M    0.32          0.30       0.02
    vgg conv 1    64x32x32  65536    8.39M    0.51          0.28       0.36
    vgg conv 2    64x16x16  16384    2.10M    0.45 [1.17]   0.42       0.06
    vgg conv 3    128x16x16 32768    4.20M    0.20 [1.33]   0.14       0.12
    vgg conv 4    128x8x8    8192    1.05M    0.21          0.19       0.03 [0.43]
    vgg conv 5    256x8x8   16384    2.10M    0.13          0.08       0.05
    vgg conv 6    256x4x4    4096    0.53M    0.16          0.15       0.02
    resnet st. 1  64x32x32  65536    8.39M    1.38          1.11       0.34
    resnet st. 2  128x16x16 32768    4.20M    0.51          0.43       0.13
    resnet st. 3  256x8x8   16384    2.10M    0.39 [0.73]   0.34       0.06

One CE step of the whole net: vgg 1.15-1.27 s (1.19M parameters), resnet 1.88-2.18 s
(1.23M). All IB unit steps together: vgg block 1.53 s, vgg conv 1.67 s, resnet 2.28 s.
The AA-MINE critic has as many parameters again (its MLP f on the flattened map), unused
by the default q-free InfoNCE bound.

Close other jobs first; on two shared cores use one thread (the default).
"""

from __future__ import annotations

import argparse
import dataclasses
import csv
import os
import statistics
import time
from pathlib import Path

import torch

from layerib.config import TrainConfig, resolve_beta, resolve_critic_update
from layerib.ib.endtoend import train_cross_entropy
from layerib.ib.layerwise import forward_cached, make_objective, train_layer
from layerib.models.conv import count_parameters
from layerib.models.resnet import resnet
from layerib.models.vgg import Unit, vgg
from layerib.utils.optim import adam

N_CIFAR = 50000


def _build(arch: str, unit: str | None, input_shape=(3, 32, 32)):
    if arch == "vgg":
        return vgg(input_shape, unit=unit or "block")
    return resnet(input_shape, unit=unit or "stage")


def _timed_steps(run, steps: int) -> list[float]:
    """CPU seconds (process time: robust to other jobs on shared cores) of each of ``steps``
    steps after one untimed: ``run(tick)`` calls ``tick()`` after each of its ``steps + 1``."""
    stamps = [time.process_time()]
    run(lambda *_: stamps.append(time.process_time()))
    return [b - a for a, b in zip(stamps[:-1], stamps[1:])][1:]


def _unit_only(layer, h, bs: int, steps: int) -> list[float]:
    """Seconds of the unit's forward + backward + Adam step on a dummy loss."""
    layer.train()
    opt = adam(layer.parameters(), lr=1e-3)

    def run(tick) -> None:
        for k in range(steps + 1):
            hb = h[torch.arange(k * bs, (k + 1) * bs) % len(h)]  # a copy, as train_layer's
            opt.zero_grad(set_to_none=True)
            layer(hb).square().mean().backward()
            opt.step()
            tick()
    return _timed_steps(run, steps)


def _critics_only(dim: int, y, prior, s, g, steps: int) -> list[float]:
    """Seconds of the critics' share of a joint IB step: both terms on a leaf ``l``
    ``(batch, dim)`` standing for the unit's output, backward to it, the critics' Adam."""
    obj = make_objective(s, dim, prior)
    opt = adam(obj.critic_parameters(), lr=s.lr_critic)
    l = torch.randn(s.batch_size, dim, generator=g, requires_grad=True)

    def run(tick) -> None:
        for _ in range(steps + 1):
            z = l + obj.sample_noise(l, g)
            lagrangian, _, _ = obj.layer_objective(l, y[:len(l)], z)
            opt.zero_grad(set_to_none=True)
            l.grad = None
            (-lagrangian).backward()
            opt.step()
            tick()
    return _timed_steps(run, steps)


def _stats(prefix: str, gaps: list[float]) -> dict:
    return {f"{prefix}_median_s": statistics.median(gaps), f"{prefix}_min_s": min(gaps)}


def measure(arch: str, unit: str | None, steps: int, seed: int = 0,
            critic_update: str = "auto", y_critic: str = "concat",
            flush_denormal: bool = False) -> tuple[list[dict], dict]:
    """One row per conv unit and one for the CE step; see the module docstring."""
    torch.set_flush_denormal(flush_denormal)
    cfg = TrainConfig(dataset="cifar10", arch="conv", batch_size=128, seed=seed,
                      critic_update=critic_update, y_critic=y_critic)
    cfg = resolve_beta(cfg, N_CIFAR)
    bs, n = cfg.batch_size, cfg.batch_size * (steps + 1)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, 32, 32), torch.randint(0, 10, (n,), generator=g)
    prior = torch.full((10,), 0.1)
    # the run's own settings; each timed stage runs steps + 1 steps on its n rows
    s = cfg = dataclasses.replace(cfg, epochs_per_layer=1, min_steps_per_layer=0, evals_per_layer=1)
    net = _build(arch, unit)
    rows, h = [], x
    n_conv = sum(isinstance(m, Unit) for m in net.layers)  # the FC layers are not timed
    for i in range(1, n_conv + 1):
        layer, dim = net.layers[i - 1], net.feature_dims[i - 1]
        obj = make_objective(s, dim, prior)
        unit_t = _unit_only(_build(arch, unit).layers[i - 1], h, bs, steps)
        critic_t = _critics_only(dim, y, prior, s, g, steps)
        ib_t = _timed_steps(lambda tick: train_layer(layer, i, h, y, prior, s, g,
                                                     progress=tick), steps)
        net.freeze(i)
        h_in, h = h, forward_cached(layer, h)
        rows.append({"arch": arch, "unit_kind": unit or "default", "unit": i,
                     "shape": "->".join("x".join(map(str, t.shape[1:])) for t in (h_in, h)),
                     "feature_dim": dim, "unit_params": count_parameters(layer),
                     "label_critic_params": count_parameters(obj.i_y.critic),
                     "aa_critic_params": count_parameters(obj.i_x.critic),  # 0: the q-free channel
                     **_stats("ib_step", ib_t), **_stats("unit_only", unit_t),
                     **_stats("critics_only", critic_t),
                     "cache_gb_50k": dim * 4 * N_CIFAR / 1e9})
    ce_net = _build(arch, unit)
    ce_t = _timed_steps(lambda tick: train_cross_entropy(
        ce_net, x, y, steps=steps + 1, batch_size=bs, lr=cfg.lr_layer, g=g, on_step=tick), steps)
    info = {"arch": arch, "unit_kind": unit or "default", **_stats("ce_step", ce_t),
            "net_params": count_parameters(ce_net), "threads": torch.get_num_threads(),
            "critic_update": resolve_critic_update(cfg), "y_critic": y_critic,
            "critic_hidden": s.critic_hidden, "batch_size": bs, "steps_timed": steps,
            "loadavg_1min": os.getloadavg()[0], "flush_denormal": flush_denormal}
    for r in rows:
        r["ib_over_ce"] = r["ib_step_median_s"] / info["ce_step_median_s"]
        r["ce_step_median_s"] = info["ce_step_median_s"]
    return rows, info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="vgg", choices=("vgg", "resnet"))
    p.add_argument("--unit", default=None, help="vgg: block|conv; resnet: stage|block")
    p.add_argument("--steps", type=int, default=5, help="timed steps per measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--critic-update", default="auto", choices=("auto", "joint", "alternating"))
    p.add_argument("--y-critic", default="concat", choices=("concat", "heads"))
    p.add_argument("--flush-denormal", action="store_true",
                   help="torch.set_flush_denormal(True) first (see the module docstring)")
    p.add_argument("--out", default=None, help="CSV path (one row per unit)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows, info = measure(a.arch, a.unit, a.steps, critic_update=a.critic_update,
                         y_critic=a.y_critic, flush_denormal=a.flush_denormal)
    print(" ".join(f"{k}={v}" for k, v in info.items() if not k.startswith("ce_step")))
    print("seconds per step: median (min) over the timed steps")
    print(f"{'unit':>4} {'shape':>20} {'dim':>6} {'unit par':>8} {'label cr':>8} {'AA cr':>8} "
          f"{'IB step':>13} {'unit only':>13} {'critics only':>13} {'IB/CE':>5} {'cache GB':>8}")
    for r in rows:
        t = {k: f"{r[k + '_median_s']:.3f} ({r[k + '_min_s']:.3f})"
             for k in ("ib_step", "unit_only", "critics_only")}
        print(f"{r['unit']:>4} {r['shape']:>20} {r['feature_dim']:>6} {r['unit_params']:>8} "
              f"{r['label_critic_params']:>8} {r['aa_critic_params']:>8} {t['ib_step']:>13} "
              f"{t['unit_only']:>13} {t['critics_only']:>13} {r['ib_over_ce']:>5.2f} "
              f"{r['cache_gb_50k']:>8.2f}")
    print(f"CE step of the whole net ({info['net_params']} parameters): "
          f"{info['ce_step_median_s']:.3f} ({info['ce_step_min_s']:.3f}) s; all IB unit steps "
          f"together: {sum(r['ib_step_median_s'] for r in rows):.3f} s")
    if a.out:
        with open(Path(a.out), "w", newline="") as f:
            extra = {k: info[k] for k in ("ce_step_min_s", "net_params", "critic_update",
                                          "y_critic", "threads", "flush_denormal",
                                          "loadavg_1min")}
            w = csv.DictWriter(f, list(rows[0]) + list(extra))
            w.writeheader()
            w.writerows({**r, **extra} for r in rows)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
