"""Fig. 3 of Elad et al. 2019: t-SNE of layer-1 representations at beta = 1e2 and 1e-3.

The paper trains the first layer of its MNIST net with the IB objective
(Eq. 2) at two trade-offs and shows that the large beta gives a clustered,
"quantised" representation. :func:`run` does the same: layer 1 of the MNIST
MLP is trained once per beta with the same seed and every other setting
equal (:func:`layerib.ib.layerwise.train_layer`, the stage of layer-wise
training), then on a seeded subset of the test set it

* embeds the representation with t-SNE (:mod:`layerib.analysis.tsne`);
* measures how quantised it is (:mod:`layerib.analysis.clustering`: fraction
  of distinct points at scale-free tolerances, median nearest-neighbour
  distance, a k-NN entropy, silhouette by class) and its MI: the held-out
  estimates of the stage, the Monte-Carlo I(X; L_1 + eps), and the accuracy of
  a linear read-out on the layer.

It writes ``config.json``, ``metrics.jsonl`` (the stage records, with
``beta``), ``fig3_tsne.npz`` (embeddings and labels), ``fig3.json`` (all
numbers, the paper's claim, and the verdict) and, from those stored files
only, ``fig3.png`` (:func:`render`).

The noise variance is pinned in the presets, not taken from the training
default: at sigma^2 = 100 the beta = 1e-3 layer sits at about 3 nats, below
the ln B = 6.2 ceiling of the held-out estimate (B = 512), where the Monte-Carlo
value agrees; at sigma^2 = 10 it sits at the ceiling (6.1 nats held-out, 7.3
Monte-Carlo), and at 10 and at 1 beta = 1e2 wipes out I(Y; L) instead of
quantising (our measurements on MNIST 1%, 600 steps per beta).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from layerib.config import TrainConfig
from layerib.errors import RunDirError
from layerib.experiments.presets import choose, with_train
from layerib.utils.progress import progress_bar

#: What the paper shows (Fig. 3 and Sec. 4); no numbers are given.
PAPER = {
    "artefact": "Fig. 3",
    "betas": [1e2, 1e-3],
    "claim": "Increasing beta leads to a sort of discretization of the latent representation: "
             "the t-SNE embedding of layer 1 is clustered ('quantised') at beta = 1e2 and "
             "spread out at beta = 1e-3.",
    "numbers": None,
}


@dataclass(frozen=True)
class Fig3Preset:
    """Settings of one Fig. 3 reproduction."""

    train: TrainConfig                      # layer-1 stage settings (widths: whole MLP; layer 1 trained)
    betas: tuple[float, ...] = (1e2, 1e-3)  # the paper's two panels, large beta first
    n_embed: int = 2000                     # test points embedded and measured (seeded subset)
    perplexity: float = 30.0                # t-SNE perplexity (capped at (n_embed - 1) / 3)
    tsne_iters: int = 1000                  # t-SNE optimisation steps (scikit-learn's default)


PRESETS = {
    # the full MNIST training set (the paper's "MNIST net"); noise variance pinned at 100
    # (see module doc); 1170 layer steps per beta, about 4 CPU-minutes in all
    "default": Fig3Preset(TrainConfig(train_fraction=1.0, noise_var=100.0, widths=(512, 512, 10),
                                      evals_per_layer=10)),
    # MNIST 1% (Table 1's first row): 600 steps per beta, about 2 CPU-minutes
    "mnist1": Fig3Preset(TrainConfig(train_fraction=0.01, noise_var=100.0, widths=(512, 512, 10),
                                     evals_per_layer=10)),
    # seconds on a tiny data set: a smoke test of the whole pipeline, not a result
    "quick": Fig3Preset(TrainConfig(noise_var=100.0, widths=(32, 16, 10), batch_size=64,
                                    epochs_per_layer=1, min_steps_per_layer=40, critic_hidden=16,
                                    mi_eval_batch_size=50, evals_per_layer=2, readout_epochs=1),
                        n_embed=150, perplexity=10.0, tsne_iters=250),
}


def resolve_preset(preset: str, **overrides) -> Fig3Preset:
    """The named preset with ``TrainConfig`` fields in ``overrides`` replaced (None: keep).

    Raises:
        ConfigError: an unknown preset name.
    """
    return with_train(choose(PRESETS, preset, "fig3"), overrides)


def _train_first_layer(cfg: TrainConfig, beta: float, train, test, metrics, progress):
    from layerib.ib.layerwise import stage_steps, train_layer
    from layerib.models.mlp import mlp

    torch.manual_seed(cfg.seed)  # same initial layer for every beta
    g = torch.Generator(device=train.images.device).manual_seed(cfg.seed)
    net = mlp(tuple(train.images.shape[1:]), cfg.widths)
    layer = net.layers[0]
    prior = torch.bincount(train.labels, minlength=train.num_classes).float() / len(train.labels)
    stage_cfg = dataclasses.replace(cfg, method="ib", beta=beta)
    steps, _ = stage_steps(stage_cfg, len(train.labels))
    records = []

    def on_eval(rec):
        records.append(rec)
        metrics.write(rec)

    with progress_bar(total=steps, desc=f"layer 1, beta={beta:g}", enabled=progress) as bar:
        train_layer(layer, 1, train.images, train.labels, prior, stage_cfg, g,
                    heldout=(test.images, test.labels), on_eval=on_eval, progress=bar.update)
    return layer, records, steps


def _readout_accuracy(cfg, f_train, y_train, f_test, y_test, num_classes) -> float:
    from layerib.ib.endtoend import accuracy, fit_readout, steps_for
    steps, _ = steps_for(len(y_train), cfg.batch_size, cfg.readout_epochs, cfg.min_steps_per_layer)
    g = torch.Generator().manual_seed(cfg.seed)
    head = fit_readout(f_train, y_train, num_classes, steps=steps, batch_size=cfg.batch_size,
                       lr=cfg.lr_readout, g=g)
    return accuracy(head, f_test, y_test)


def _measure(cfg, p: Fig3Preset, beta, layer, records, steps, train, test, sub) -> tuple[dict, np.ndarray]:
    from layerib.analysis.clustering import clustering_report
    from layerib.analysis.tsne import tsne_embedding
    from layerib.ib.layerwise import forward_cached
    from layerib.mi.ground_truth import mixture_mi

    f_train = forward_cached(layer, train.images).flatten(1)
    f_test = forward_cached(layer, test.images).flatten(1)
    acc = _readout_accuracy(cfg, f_train, train.labels, f_test, test.labels, train.num_classes)
    fs, ys = f_test[sub], test.labels[sub]
    emb = tsne_embedding(fs.cpu().numpy(), perplexity=p.perplexity, seed=cfg.seed,
                         max_iter=p.tsne_iters)
    mc = mixture_mi(fs.double().cpu(), cfg.noise_var, n_samples=2048,
                    generator=torch.Generator().manual_seed(cfg.seed))
    last = records[-1] if records else {}
    entry = {
        "beta": beta, "noise_var": cfg.noise_var, "steps": steps,
        "test_i_x_nats": last.get("test_i_x_nats"), "test_i_y_nats": last.get("test_i_y_nats"),
        "eval_batch_size": last.get("eval_batch_size"),
        "ln_eval_batch": math.log(last["eval_batch_size"]) if last.get("eval_batch_size") else None,
        "i_x_monte_carlo_nats": mc.value, "i_x_monte_carlo_stderr": mc.stderr,
        "readout_test_accuracy": acc,
        "feature_rms": float(fs.pow(2).sum(1).mean().sqrt()),
        "clustering": clustering_report(fs.cpu().numpy(), ys.cpu().numpy(), emb),
    }
    return entry, emb


def compare(large: dict, small: dict) -> dict:
    """Is the large-beta representation more quantised than the small-beta one?

    Three scale-free quantisation measures, each True when it says "more
    quantised at large beta": fewer distinct points at tolerance 0.05, a
    smaller median nearest-neighbour distance, a lower k-NN entropy per active
    unit. ``more_quantised_at_large_beta`` is True when all three agree. The
    silhouette by class (class separation, not quantisation) is compared too
    but not part of the verdict.
    """
    cl, cs = large["clustering"], small["clustering"]
    checks = {
        "fewer_distinct_points_at_0.05": cl["distinct_fraction"]["0.05"] < cs["distinct_fraction"]["0.05"],
        "smaller_median_nn_distance": cl["median_nn_distance"] < cs["median_nn_distance"],
        "lower_knn_entropy_per_dim": cl["knn_entropy_per_dim_nats"] < cs["knn_entropy_per_dim_nats"],
    }
    sl, ss = cl.get("silhouette_by_class"), cs.get("silhouette_by_class")
    return {**checks, "more_quantised_at_large_beta": all(checks.values()),
            "higher_silhouette_by_class": None if sl is None or ss is None else sl > ss}


def run(out: str | Path, *, preset: str = "default", data_root: str | None = None,
        download: bool | None = None, device: str | None = None, seed: int | None = None,
        force: bool = False, progress: bool = False, argv: list[str] | None = None) -> dict:
    """Reproduce Fig. 3 into the folder ``out``; returns what ``fig3.json`` holds.

    Raises:
        LayerIBError: unknown preset, bad data, ``out`` holding a finished
            reproduction (without ``force``), or a non-finite loss.
    """
    from layerib.runs.folder import MetricsLog, atomic_write_json, prepare_run_dir, versions
    from layerib.runs.training import load_data, resolve_device

    t0 = time.perf_counter()
    p = resolve_preset(preset, data_root=data_root, download=download, device=device, seed=seed)
    cfg = p.train
    out = Path(out)
    if (out / "fig3.json").exists() and not force:
        raise RunDirError(f"{out} already holds a fig3 reproduction; choose another --out or "
                          "pass --force to overwrite")
    dev = resolve_device(cfg.device)
    train, test = load_data(cfg)
    train = dataclasses.replace(train, images=train.images.to(dev), labels=train.labels.to(dev))
    test = dataclasses.replace(test, images=test.images.to(dev), labels=test.labels.to(dev))
    out = prepare_run_dir(out, force=force)
    for name in ("fig3.json", "fig3.png", "fig3_tsne.npz", "metrics.jsonl"):
        (out / name).unlink(missing_ok=True)
    settings = {"betas": list(p.betas), "n_embed": p.n_embed, "perplexity": p.perplexity,
                "tsne_iters": p.tsne_iters}
    atomic_write_json(out / "config.json", {
        "experiment": "fig3", "preset": preset, "config": cfg.to_dict(), **settings,
        "argv": argv or sys.argv, "versions": versions(), "data_source": train.source})
    metrics = MetricsLog(out / "metrics.jsonl")
    n_embed = min(p.n_embed, len(test.labels))
    sub = torch.randperm(len(test.labels), generator=torch.Generator().manual_seed(cfg.seed))[:n_embed]
    sub = sub.to(dev)
    entries, embeddings = [], {}
    for k, beta in enumerate(p.betas):
        layer, records, steps = _train_first_layer(cfg, beta, train, test, metrics, progress)
        entry, emb = _measure(cfg, p, beta, layer, records, steps, train, test, sub)
        entries.append(entry)
        embeddings[f"embedding_{k}"] = emb
    np.savez_compressed(out / "fig3_tsne.npz", labels=test.labels[sub].cpu().numpy(),
                        betas=np.asarray(p.betas, dtype=float), **embeddings)
    large = max(entries, key=lambda e: e["beta"])
    small = min(entries, key=lambda e: e["beta"])
    result = {
        "experiment": "fig3", "preset": preset, "paper": PAPER, "panels": entries,
        "comparison": compare(large, small), "settings": {**settings, "n_embed": n_embed,
                                                         "config": cfg.to_dict()},
        "n_train": len(train.labels), "n_test": len(test.labels), "data_source": train.source,
        "figure": "fig3.png", "embeddings": "fig3_tsne.npz",
        "wall_seconds": time.perf_counter() - t0,
    }
    result["summary"] = summary_lines(result)
    atomic_write_json(out / "fig3.json", result)
    render(out)
    return result


def summary_lines(res: dict) -> list[str]:
    """One line per beta and the verdict, for the terminal."""
    lines = []
    for e in res["panels"]:
        c = e["clustering"]
        lines.append(f"beta={e['beta']:g}: I(X;L+eps)={e['i_x_monte_carlo_nats']:.3f} nats "
                     f"(Monte-Carlo, noise var {e['noise_var']:g}), I(Y;L)={e['test_i_y_nats']:.3f}"
                     f" nats, distinct@0.05 {100 * c['distinct_fraction']['0.05']:.1f}%, median NN "
                     f"{c['median_nn_distance']:.3g}, k-NN entropy/unit "
                     f"{c['knn_entropy_per_dim_nats']:.2f}, read-out {100 * e['readout_test_accuracy']:.1f}%")
    verdict = res["comparison"]["more_quantised_at_large_beta"]
    lines.append(f"more quantised at the large beta (all three measures): {'yes' if verdict else 'no'}")
    return lines


def _note(e: dict) -> str:
    c = e["clustering"]
    return (f"I(X;L+ε)={e['i_x_monte_carlo_nats']:.3f} nats (σ²={e['noise_var']:g}), "
            f"I(Y;L)={e['test_i_y_nats']:.2f} nats\n"
            f"distinct at 0.05: {100 * c['distinct_fraction']['0.05']:.1f}%, "
            f"read-out acc. {100 * e['readout_test_accuracy']:.1f}%")


def render(out: str | Path) -> Path:
    """Draw ``fig3.png`` from the stored ``fig3.json`` and ``fig3_tsne.npz`` of ``out``.

    Raises:
        RunDirError: the folder does not hold a finished fig3 reproduction.
    """
    from layerib.analysis.runs import read_json
    from layerib.plotting.fig3 import plot_tsne_panels

    out = Path(out)
    res = read_json(out / "fig3.json")
    if res is None or not (out / "fig3_tsne.npz").exists():
        raise RunDirError(f"{out} holds no finished fig3 reproduction (fig3.json, fig3_tsne.npz)")
    with np.load(out / "fig3_tsne.npz") as z:
        panels = [{"beta": e["beta"], "embedding": z[f"embedding_{k}"], "labels": z["labels"],
                   "note": _note(e)} for k, e in enumerate(res["panels"])]
    n = res["settings"]["n_embed"]
    fig = plot_tsne_panels(panels, title=f"t-SNE of layer-1 representations ({n} MNIST test "
                                         f"images; {res['n_train']} training images)")
    fig.savefig(out / "fig3.png", dpi=110)
    return out / "fig3.png"
