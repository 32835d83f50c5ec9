"""IB vs CE: time per training epoch of each layer-wise IB stage against end-to-end CE, one process.

Prints a table and writes a CSV: seconds per epoch of each layer-wise IB stage
(the layer and its two critics, one epoch of the training subset, on the cached output
of the frozen layers before it) and of end-to-end CE training of the whole net, at the
same batch size, on the same data, their ratios, and the peak resident set size. Wall
seconds and process CPU seconds are both recorded; the ratios use CPU seconds (robust to
other jobs on shared cores). A script, not a test:

    LAYERIB_DATA_ROOT=../shared/data python benchmarks/bench_train_speed.py [--fraction 0.1]
    OMP_NUM_THREADS=1 LAYERIB_DATA_ROOT=../shared/data python benchmarks/bench_train_speed.py \
        --arch vgg --n-train 2000 --out vgg.csv       # CIFAR-10; also --arch resnet

``--arch mlp`` (default) is the MNIST MLP (``--fraction`` of MNIST); ``vgg`` and ``resnet``
are the CIFAR-10 nets of :mod:`layerib.models` at their defaults (six-conv VGG in three
block units and a linear head; three residual stages, pooling and a linear head) on a
stratified ``--n-train`` subset. ``--no-flush-denormal`` times without
``torch.set_flush_denormal(True)`` (``flush_denormal``, on by default in training).
``--augment crop_flip`` times the augmented path of a real run: each IB stage recomputes
the frozen prefix on each augmented batch (:class:`~layerib.ib.prefix.RecomputedPrefix`,
``frozen_cache="auto"``) instead of reading a cache, and CE augments its batches too.
``--y-pool K`` times the label critic on ``K x K``-pooled conv maps (``TrainConfig.y_pool``).
``--arch airbench`` is the airbench-style net (:mod:`layerib.models.airbench`).
``--device cuda`` times on the GPU (wall seconds, synchronised; the ratios then use wall
seconds, since the process's CPU time does not count the GPU's work). ``--compile`` also
times the CE epoch of the ``torch.compile``'d net (after an untimed compiling step).

Two ratios are printed: one IB layer stage (mean over layers) / CE, the like-for-like
"epoch of training" of each method, and all IB stages together / CE (layer-wise
training runs one stage per layer, so a full IB pass over the data costs the sum); the
largest single stage / CE is in the CSV (``ratio_max_stage``).
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

from layerib.config import PRECISIONS, TrainConfig, resolve_beta, resolve_critic_update
from layerib.data.augment import AUGMENTATIONS
from layerib.ib.endtoend import train_cross_entropy
from layerib.ib.layerwise import forward_cached, train_layer
from layerib.ib.prefix import RecomputedPrefix
from layerib.runs.folder import atomic_write
from layerib.runs.training import build_net, load_data
from layerib.utils.precision import prepare_net


N_TRAIN = {"mnist": 60000, "cifar10": 50000}
ARCH_DATA = {"mlp": "mnist", "vgg": "cifar10", "resnet": "cifar10", "airbench": "cifar10"}
ARCH_SIZES = {"mlp": ((32, 64), (512, 512, 10)), "vgg": ((64, 64, 128, 128, 256, 256), (10,)),
              "resnet": ((64, 128, 256), (10,)), "airbench": ((64, 256, 256), (10,))}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _clocks(device: torch.device) -> tuple[float, float]:
    """``(wall, CPU)`` seconds now, after the GPU's queued work (on a GPU)."""
    _sync(device)
    return time.perf_counter(), time.process_time()


def measure(fraction: float, widths: tuple[int, ...] | None = None, epochs: int = 1,
            min_steps: int = 20, seed: int = 0, y_critic: str = "concat",
            critic_update: str = "auto", arch: str = "mlp", n_train: int | None = None,
            flush_denormal: bool = True, augment: str = "none", y_pool: int = 0,
            precision: str = "float32", device: str = "cpu", compile_ce: bool = False,
            channels: tuple[int, ...] | None = None, compile_backend: str = "inductor") -> dict:
    """Seconds per epoch of each IB layer stage and of CE on ``arch`` (see the module docstring).

    Each method runs ``max(epochs, ceil(min_steps / steps_per_epoch))`` epochs (so
    tiny subsets are not timed on 2 steps) after one untimed warm-up step.
    ``n_train`` (vgg, resnet) sets the subset size instead of ``fraction``. ``augment``:
    a name of :data:`layerib.data.augment.AUGMENTATIONS` (IB recomputes the prefix per
    augmented batch); ``y_pool``, ``precision``: those of ``TrainConfig``; ``device``: where
    it runs (``cuda``: the ratios in wall seconds); ``compile_ce``: also a CE epoch of the
    ``torch.compile``'d net (``ce_compiled_wall_seconds_per_epoch``, ``compile_seconds``);
    ``channels``: the conv widths instead of the arch's default (small smoke runs);
    ``compile_backend``: ``torch.compile``'s backend (``aot_eager`` traces without generating
    code: a quick check that the net compiles, not a speed figure).

    Returns:
        ``{"n_train", "steps_per_epoch", "ib_layer_seconds_per_epoch": [...] (CPU s),
        "ib_seconds_per_epoch" (mean over layers), "ib_all_stages_seconds_per_epoch",
        "ce_seconds_per_epoch", "ratio_stage", "ratio_all", "ratio_max_stage", the same
        in wall seconds (``*_wall``), "peak_rss_mib", "threads"}``.
    """
    dataset = ARCH_DATA[arch]
    default_channels, default_widths = ARCH_SIZES[arch]
    channels = channels or default_channels
    widths = widths or default_widths
    if n_train is not None:
        fraction = n_train / N_TRAIN[dataset]
    cfg = TrainConfig(dataset=dataset, arch=arch, train_fraction=fraction, widths=widths,
                      channels=channels, seed=seed, y_critic=y_critic, critic_update=critic_update,
                      augment=augment, y_pool=y_pool, precision=precision)
    transform = AUGMENTATIONS[augment]
    dev = torch.device(device)
    train, _ = load_data(cfg, uint8=True)
    cfg = resolve_beta(cfg, len(train))
    x, y = train.images.to(dev), train.labels.to(dev)
    prior = torch.bincount(y, minlength=train.num_classes).float() / len(y)
    per_epoch = len(y) // cfg.batch_size
    n_epochs = max(epochs, math.ceil(min_steps / max(per_epoch, 1)))
    s = dataclasses.replace(cfg, epochs_per_layer=n_epochs, min_steps_per_layer=0, evals_per_layer=1)
    g = torch.Generator(device=dev).manual_seed(seed)
    torch.manual_seed(seed)
    build = lambda: prepare_net(build_net(cfg, tuple(x.shape[1:])).to(dev), precision)
    torch.set_flush_denormal(flush_denormal)
    net = build()
    bs = cfg.batch_size  # warm-up: one step on one batch
    train_layer(build().layers[0], 1, x[:bs], y[:bs], prior,
                dataclasses.replace(s, epochs_per_layer=1), g)
    ib, ib_wall, h = [], [], x
    for i, layer in enumerate(net.layers, start=1):
        t, c = _clocks(dev)
        rows = h if transform is None else RecomputedPrefix(  # as _train_layerwise does
            x, net.prefix(i - 1) if i > 1 else torch.nn.Sequential(), transform, g, precision)
        train_layer(layer, i, rows, y, prior, s, g)
        t1, c1 = _clocks(dev)
        ib.append((c1 - c) / n_epochs)
        ib_wall.append((t1 - t) / n_epochs)
        net.freeze(i)
        if transform is None:
            h = forward_cached(layer, h)
    ce_net = build()
    ce_steps = dict(batch_size=cfg.batch_size, lr=cfg.lr_layer, g=g, transform=transform,
                    precision=precision)
    t, c = _clocks(dev)
    train_cross_entropy(ce_net, x, y, steps=n_epochs * per_epoch, **ce_steps)
    t1, c1 = _clocks(dev)
    ce, ce_wall = (c1 - c) / n_epochs, (t1 - t) / n_epochs
    compiled = {}
    if compile_ce:  # one step compiles (untimed beside the epoch), then the same epochs
        fast = torch.compile(build(), backend=compile_backend)
        t, _ = _clocks(dev)
        train_cross_entropy(fast, x, y, steps=1, **ce_steps)
        t1, _ = _clocks(dev)
        train_cross_entropy(fast, x, y, steps=n_epochs * per_epoch, **ce_steps)
        t2, _ = _clocks(dev)
        compiled = {"compile_seconds": t1 - t,
                    "ce_compiled_wall_seconds_per_epoch": (t2 - t1) / n_epochs,
                    "compile_speedup": ce_wall / ((t2 - t1) / n_epochs)}
    torch.set_flush_denormal(False)
    if dev.type == "cuda":  # the process's CPU time does not count the GPU's work
        ib, ce = ib_wall, ce_wall
    mean_ib = sum(ib) / len(ib)
    return {"arch": arch, "dataset": dataset, "n_train": len(y), "y_critic": y_critic,
            "critic_update": resolve_critic_update(cfg), "widths": "-".join(map(str, widths)),
            "channels": "-".join(map(str, channels)) if arch != "mlp" else "",
            "batch_size": cfg.batch_size, "flush_denormal": flush_denormal,
            "augment": augment, "y_pool": y_pool, "precision": precision,
            "steps_per_epoch": per_epoch, "epochs_timed": n_epochs,
            "ib_layer_seconds_per_epoch": ib, "ib_seconds_per_epoch": mean_ib,
            "ib_all_stages_seconds_per_epoch": sum(ib), "ce_seconds_per_epoch": ce,
            "ratio_stage": mean_ib / ce, "ratio_all": sum(ib) / ce, "ratio_max_stage": max(ib) / ce,
            "ib_layer_wall_seconds_per_epoch": ib_wall, "ce_wall_seconds_per_epoch": ce_wall,
            "ratio_max_stage_wall": max(ib_wall) / ce_wall,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "threads": torch.get_num_threads(), "device": str(dev),
            "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "",
            "peak_gpu_mib": (torch.cuda.max_memory_allocated(dev) / 2**20
                             if dev.type == "cuda" else 0.0),
            **({"compile_backend": compile_backend, **compiled} if compiled else {})}


def write_csv(path: str, rows: list[dict]) -> None:
    """``rows`` (dicts with the first row's keys) as a CSV, atomically."""
    def write(f) -> None:
        w = csv.DictWriter(f, list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    atomic_write(Path(path), write)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--arch", default="mlp", choices=tuple(ARCH_DATA),
                   help="mlp (MNIST) or vgg / resnet / airbench (CIFAR-10)")
    p.add_argument("--fraction", type=float, default=0.1, help="training-set fraction (mlp)")
    p.add_argument("--n-train", type=int, default=None,
                   help="training images (a stratified subset; vgg / resnet default 2000)")
    p.add_argument("--epochs", type=int, default=1, help="epochs timed per method")
    p.add_argument("--min-steps", type=int, default=20, help="at least this many steps timed")
    p.add_argument("--y-critic", default="concat", choices=("concat", "heads"),
                   help="I(Y;L) critic of the IB stages")
    p.add_argument("--critic-update", default="auto", choices=("auto", "joint", "alternating"),
                   help="how the IB stages update critic and layer (see layerib.ib.layerwise)")
    p.add_argument("--no-flush-denormal", action="store_true",
                   help="keep float32 denormals (torch.set_flush_denormal off)")
    p.add_argument("--augment", default="none", choices=tuple(AUGMENTATIONS),
                   help="augment the batches (IB: the frozen prefix recomputed per batch)")
    p.add_argument("--y-pool", type=int, default=0,
                   help="label critic on K x K-pooled conv maps (0: flattened)")
    p.add_argument("--precision", default="float32", choices=PRECISIONS,
                   help="training passes in float32 or under bfloat16 autocast")
    p.add_argument("--channels", default=None,
                   help="conv widths, comma-separated, instead of the arch's default")
    p.add_argument("--device", default="cpu", help="cpu or cuda (cuda: wall-second ratios)")
    p.add_argument("--compile", action="store_true",
                   help="also time a CE epoch of the torch.compile'd net")
    p.add_argument("--compile-backend", default="inductor",
                   help="torch.compile's backend (aot_eager: trace only, a quick check)")
    p.add_argument("--out", default="bench_train_speed.csv")
    a = p.parse_args()
    n_train = a.n_train if a.n_train is not None or a.arch == "mlp" else 2000
    r = measure(a.fraction, epochs=a.epochs, min_steps=a.min_steps, y_critic=a.y_critic,
                critic_update=a.critic_update, arch=a.arch, n_train=n_train,
                flush_denormal=not a.no_flush_denormal, augment=a.augment, y_pool=a.y_pool,
                precision=a.precision, device=a.device, compile_ce=a.compile,
                channels=tuple(int(c) for c in a.channels.split(",")) if a.channels else None,
                compile_backend=a.compile_backend)
    print(f"{a.arch} on {r['dataset']}, {r['n_train']} images, I(Y;L) critic {r['y_critic']}, "
          f"{r['critic_update']} updates, batch {r['batch_size']}, {r['threads']} threads, "
          f"flush_denormal {r['flush_denormal']}, augment {r['augment']}, y_pool {r['y_pool']}, "
          f"precision {r['precision']}, device {r['device']} {r['gpu']}, "
          f"{r['epochs_timed']} epochs timed "
          f"({r['steps_per_epoch']} steps each), peak RSS {r['peak_rss_mib']:.0f} MiB")
    for i, (t, w) in enumerate(zip(r["ib_layer_seconds_per_epoch"],
                                   r["ib_layer_wall_seconds_per_epoch"]), start=1):
        print(f"{'ib layer ' + str(i):>22}: {t:7.2f} CPU s/epoch ({w:7.2f} wall)")
    print(f"{'ib, mean over layers':>22}: {r['ib_seconds_per_epoch']:7.2f} CPU s/epoch")
    print(f"{'ce (whole net)':>22}: {r['ce_seconds_per_epoch']:7.2f} CPU s/epoch "
          f"({r['ce_wall_seconds_per_epoch']:7.2f} wall)")
    print(f"ratio IB (one layer stage, mean) / CE: {r['ratio_stage']:.2f}; largest stage / CE: "
          f"{r['ratio_max_stage']:.2f} (wall {r['ratio_max_stage_wall']:.2f}); "
          f"IB all {len(r['ib_layer_seconds_per_epoch'])} stages / CE: {r['ratio_all']:.2f}")
    if "compile_seconds" in r:
        print(f"torch.compile: {r['compile_seconds']:.1f} s to compile, CE "
              f"{r['ce_compiled_wall_seconds_per_epoch']:.2f} wall s/epoch "
              f"({r['compile_speedup']:.2f}x the eager epoch)")
    row = {k: v for k, v in r.items() if not isinstance(v, list)}
    for i, (t, w) in enumerate(zip(r["ib_layer_seconds_per_epoch"],
                                   r["ib_layer_wall_seconds_per_epoch"]), start=1):
        row[f"ib_layer{i}_seconds_per_epoch"] = t
        row[f"ib_layer{i}_wall_seconds_per_epoch"] = w
    write_csv(a.out, [row])
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
