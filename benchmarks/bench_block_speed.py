"""Cost of layer-wise IB steps on the VGG / ResNet units against one end-to-end CE step.

For each unit of the net: the flattened size its critics see, their parameter
counts, the seconds of one layer-wise IB step (:func:`layerib.ib.layerwise.train_layer`
with the :class:`StageSettings` that ``runs.training._layer_settings`` builds from the
default CIFAR-10 :class:`TrainConfig`, batch 128), the seconds of the unit's own
forward + backward + Adam step with a dummy loss (so ``ib - unit`` is what the
critics add), and the float32 size of the unit's cached output on 50000 images.
Then one CE step of the whole net (:func:`layerib.ib.endtoend.train_cross_entropy`).
Random images (the speed does not depend on them); each timing is the mean of
``--steps`` steps after one untimed one. A benchmark, not a test:

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/bench_block_speed.py \\
        --arch vgg --unit block --steps 3 --out vgg_block.csv

Close other jobs first; on two shared cores use one thread (the default).
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import torch

from layerib.config import TrainConfig, resolve_beta, resolve_critic_update
from layerib.ib.endtoend import train_cross_entropy
from layerib.ib.layerwise import forward_cached, train_layer
from layerib.ib.objective import IBObjective
from layerib.models.conv import count_parameters
from layerib.models.resnet import resnet
from layerib.models.vgg import Unit, vgg
from layerib.runs.training import _layer_settings  # the run's own settings builder
from layerib.utils.optim import adam

N_CIFAR = 50000


def _build(arch: str, unit: str | None, input_shape=(3, 32, 32)):
    if arch == "vgg":
        return vgg(input_shape, unit=unit or "block")
    return resnet(input_shape, unit=unit or "stage")


def _timed_steps(run, steps: int) -> float:
    """Mean seconds per step over ``steps`` steps after one untimed: ``run(tick)`` calls
    ``tick()`` after each of its ``steps + 1`` steps."""
    stamps = [time.perf_counter()]
    run(lambda *_: stamps.append(time.perf_counter()))
    gaps = [b - a for a, b in zip(stamps[:-1], stamps[1:])][1:]
    return sum(gaps) / len(gaps)


def _unit_only(layer, h, bs: int, steps: int) -> float:
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


def measure(arch: str, unit: str | None, steps: int, seed: int = 0,
            critic_update: str = "auto", y_critic: str = "concat") -> tuple[list[dict], dict]:
    """One row per conv unit and one for the CE step; see the module docstring."""
    cfg = TrainConfig(dataset="cifar10", arch="conv", batch_size=128, seed=seed,
                      critic_update=critic_update, y_critic=y_critic)
    cfg = resolve_beta(cfg, N_CIFAR)
    bs, n = cfg.batch_size, cfg.batch_size * (steps + 1)
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(n, 3, 32, 32), torch.randint(0, 10, (n,), generator=g)
    prior = torch.full((10,), 0.1)
    s = _layer_settings(cfg, N_CIFAR)
    s.steps, s.evals_per_layer = steps + 1, 1
    net = _build(arch, unit)
    rows, h = [], x
    n_conv = sum(isinstance(m, Unit) for m in net.layers)  # the FC layers are not timed
    for i in range(1, n_conv + 1):
        layer, dim = net.layers[i - 1], net.feature_dims[i - 1]
        obj = IBObjective(dim, prior, s.beta, s.noise_var, s.critic_hidden, s.ema_rate,
                          s.x_critic, s.x_marginal, s.x_bound, s.y_bound, s.y_critic)
        unit_s = _unit_only(_build(arch, unit).layers[i - 1], h, bs, steps)
        ib_s = _timed_steps(lambda tick: train_layer(layer, i, h, y, prior, dim, s, g,
                                                     progress=tick), steps)
        net.freeze(i)
        h_in, h = h, forward_cached(layer, h)
        rows.append({"arch": arch, "unit_kind": unit or "default", "unit": i,
                     "shape": "->".join("x".join(map(str, t.shape[1:])) for t in (h_in, h)),
                     "feature_dim": dim, "unit_params": count_parameters(layer),
                     "label_critic_params": count_parameters(obj.i_y.critic),
                     "aa_critic_params": count_parameters(obj.i_x.critic),
                     "ib_step_s": ib_s, "unit_only_step_s": unit_s,
                     "cache_gb_50k": dim * 4 * N_CIFAR / 1e9})
    ce_net = _build(arch, unit)
    ce_s = _timed_steps(lambda tick: train_cross_entropy(
        ce_net, x, y, steps=steps + 1, batch_size=bs, lr=cfg.lr_layer, g=g, on_step=tick), steps)
    info = {"arch": arch, "unit_kind": unit or "default", "ce_step_s": ce_s,
            "net_params": count_parameters(ce_net), "threads": torch.get_num_threads(),
            "critic_update": resolve_critic_update(cfg), "y_critic": y_critic,
            "critic_hidden": s.critic_hidden, "batch_size": bs, "steps_timed": steps}
    for r in rows:
        r["ib_over_ce"] = r["ib_step_s"] / ce_s
        r["ce_step_s"] = ce_s
    return rows, info


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="vgg", choices=("vgg", "resnet"))
    p.add_argument("--unit", default=None, help="vgg: block|conv; resnet: stage|block")
    p.add_argument("--steps", type=int, default=3, help="timed steps per measurement")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--critic-update", default="auto", choices=("auto", "joint", "alternating"))
    p.add_argument("--y-critic", default="concat", choices=("concat", "heads"))
    p.add_argument("--out", default=None, help="CSV path (one row per unit)")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    rows, info = measure(a.arch, a.unit, a.steps, critic_update=a.critic_update,
                         y_critic=a.y_critic)
    print(" ".join(f"{k}={v}" for k, v in info.items() if k != "ce_step_s"))
    print(f"{'unit':>4} {'shape':>22} {'dim':>6} {'unit par':>9} {'label cr':>9} "
          f"{'AA cr':>9} {'IB step s':>9} {'unit s':>7} {'IB/CE':>6} {'cache GB':>8}")
    for r in rows:
        print(f"{r['unit']:>4} {r['shape']:>22} {r['feature_dim']:>6} {r['unit_params']:>9} "
              f"{r['label_critic_params']:>9} {r['aa_critic_params']:>9} {r['ib_step_s']:>9.3f} "
              f"{r['unit_only_step_s']:>7.3f} {r['ib_over_ce']:>6.2f} {r['cache_gb_50k']:>8.2f}")
    print(f"CE step of the whole net ({info['net_params']} parameters): {info['ce_step_s']:.3f} s; "
          f"all IB unit steps together: {sum(r['ib_step_s'] for r in rows):.3f} s")
    if a.out:
        with open(Path(a.out), "w", newline="") as f:
            w = csv.DictWriter(f, list(rows[0]) + ["critic_update", "y_critic", "threads"])
            w.writeheader()
            w.writerows({**r, "critic_update": info["critic_update"], "y_critic": info["y_critic"],
                         "threads": info["threads"]} for r in rows)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
