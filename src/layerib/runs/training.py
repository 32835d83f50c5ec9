"""One training run, end to end: data, net, method, read-out, MI report, run folder.

:func:`run_training` is what ``layerib train`` calls. It writes
``config.json`` first, ``metrics.jsonl`` as it goes, ``checkpoint.pt`` at
regular steps and at every stage's end (:mod:`layerib.runs.checkpoint`; removed
when the run ends), and ``model.pt`` and ``result.json`` (atomically) last, so
a folder with ``result.json`` holds a finished run.
"""

from __future__ import annotations

import logging
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from layerib.runs.checkpoint import (CHECKPOINT, FORMAT, atomic_torch_save, check_finite_state,
                                find_resume_state, kill_point, rng_state, set_rng_state)
from layerib.config import TrainConfig, resolve_beta, resolve_critic_update
from layerib.data.cifar10 import load_cifar10, normalize_cifar10
from layerib.data.mnist import ImageDataset, load_mnist
from layerib.data.subsets import stratified_subset
from layerib.ib.endtoend import accuracy, fit_readout, steps_for, train_cross_entropy
from layerib.ib.infoplane import InfoPlaneRecorder, eval_steps
from layerib.ib.layerwise import StageSettings, forward_cached, train_layer
from layerib.ib.report import layer_mi_report
from layerib.models.conv import build_net
from layerib.runs.folder import (MetricsLog, atomic_write_json, check_run_dir, prepare_run_dir,
                             versions)

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU is a ConfigError."""
    from layerib.errors import ConfigError
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no GPU; use --device cpu or auto")
    return torch.device(name)


def load_data(cfg: TrainConfig) -> tuple[ImageDataset, ImageDataset]:
    """``(train subset, full test set)`` of ``cfg.dataset``, as in-memory tensors."""
    if cfg.dataset == "cifar10":
        train, test = (_cifar10(cfg, split) for split in ("train", "test"))
    else:
        train = load_mnist(cfg.data_root, "train", cfg.download)
        test = load_mnist(cfg.data_root, "test", cfg.download)
    idx = stratified_subset(train.labels, cfg.train_fraction, cfg.seed)
    train = ImageDataset(train.images[idx], train.labels[idx], train.num_classes, train.source)
    return train, test


def _cifar10(cfg: TrainConfig, split: str) -> ImageDataset:
    """One CIFAR-10 split from the copy ``cfg.cifar_source`` selects, standardised."""
    d = load_cifar10(cfg.data_root, split, source=cfg.cifar_source, download=cfg.download)
    return ImageDataset(normalize_cifar10(d.images), d.labels, len(d.classes), d.source)


def crop_flip(x: torch.Tensor, g: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random ``pad``-pixel-padded crop and horizontal flip of each image of ``x`` (B, C, H, W).

    The standard CIFAR-10 augmentation (He et al. 2016, Sec. 4.2), zero padding
    (the mean after standardisation); offsets and flips come from ``g``.
    """
    b, _, h, w = x.shape
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (b, 1), generator=g, device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (b, 1), generator=g, device=x.device)
    rows = (dy + torch.arange(h, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = dx + torch.arange(w, device=x.device)                       # (B, W)
    flip = torch.rand(b, generator=g, device=x.device) < 0.5
    cols = torch.where(flip[:, None], cols.flip(1), cols)[:, None, None, :]  # (B, 1, 1, W)
    bi = torch.arange(b, device=x.device)[:, None, None, None]
    ci = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
    return xp[bi, ci, rows, cols]


def _layer_settings(cfg: TrainConfig, n: int) -> StageSettings:
    steps, per_epoch = steps_for(n, cfg.batch_size, cfg.epochs_per_layer, cfg.min_steps_per_layer)
    return StageSettings(
        beta=cfg.effective_beta, noise_var=cfg.noise_var, batch_size=cfg.batch_size, steps=steps,
        steps_per_epoch=per_epoch, lr_layer=cfg.lr_layer, lr_critic=cfg.lr_critic,
        critic_steps=cfg.critic_steps, critic_update=resolve_critic_update(cfg), critic_hidden=cfg.critic_hidden, ema_rate=cfg.ema_rate,
        x_critic=cfg.x_critic, x_marginal=cfg.x_marginal, x_bound=cfg.x_bound,
        y_bound=cfg.y_bound, y_critic=cfg.y_critic,
        weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip, evals_per_layer=cfg.evals_per_layer,
        eval_batch_size=cfg.mi_eval_batch_size)


def run_training(cfg: TrainConfig, out: str | Path, *, force: bool = False,
                 progress: bool = False, argv: list[str] | None = None,
                 resume: bool = False) -> dict:
    """Train one net as ``cfg`` says and write its run folder ``out``.

    A run saves ``out/checkpoint.pt`` every ``cfg.checkpoint_every`` steps of a
    stage and at the end of every stage (:mod:`layerib.runs.checkpoint`). Calling
    this again with the same config and ``out`` (``resume=True`` or not)
    continues from that checkpoint and gives the same result as a run that
    was never interrupted (bit-identical on CPU).

    Returns:
        The result dictionary also written to ``out/result.json``: test
        accuracy (fraction), the settings, wall time and one entry per layer
        with held-out ``i_y_nats`` and ``i_x_nats`` (see :func:`layer_mi_report`).

    Raises:
        LayerIBError: bad data, a run folder that cannot be used (a finished
            run, or another config's run, without ``force``; ``resume`` without
            a checkpoint), or a non-finite loss or parameter
            (:class:`NumericalError`; the last good checkpoint is kept).
    """
    device = resolve_device(cfg.device)
    t0 = time.perf_counter()
    check_run_dir(Path(out), force=force)
    train, test = load_data(cfg)  # data errors surface before anything is written
    beta_auto = cfg.beta is None
    cfg = resolve_beta(cfg, len(train))
    state = find_resume_state(Path(out), cfg.to_dict(), force=force, resume=resume)
    out = prepare_run_dir(Path(out), force=force)
    metrics = MetricsLog(out / "metrics.jsonl")
    if state is None:
        atomic_write_json(out / "config.json", {"config": cfg.to_dict(), "argv": argv or sys.argv,
                                                "versions": versions(), "data_source": train.source})
        metrics.truncate(0)  # records of an attempt killed before its first checkpoint
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    x, y = train.images.to(device), train.labels.to(device)
    x_test, y_test = test.images.to(device), test.labels.to(device)
    net = build_net(cfg, tuple(train.images.shape[1:])).to(device)
    prior = torch.bincount(y, minlength=train.num_classes).float() / len(y)
    ck = _Checkpointer(out, cfg, net, g, metrics, state, t0)

    if cfg.method == "ce":
        head = _train_ce(cfg, net, x, y, g, metrics, progress, ck,
                         infoplane=(x_test, y_test, prior))
        feats, feats_test = _all_features(net, x), _all_features(net, x_test)
    else:
        feats, feats_test = _train_layerwise(cfg, net, x, y, x_test, y_test, prior, g,
                                             metrics, progress, ck)
        head = _fit_head(cfg, feats[-1], y, train.num_classes, g, metrics, progress, ck,
                         stage=len(feats))
    kill_point("report")
    test_acc = accuracy(head, feats_test[-1], y_test)
    train_acc = accuracy(head, feats[-1], y)
    metrics.write({"stage": "final", "test_accuracy": test_acc, "train_accuracy": train_acc})
    layers = layer_mi_report(feats, y, feats_test, y_test, prior, cfg, seed=cfg.seed)
    result = {
        "test_accuracy": test_acc, "train_accuracy": train_acc, "method": cfg.method,
        "dataset": cfg.dataset, "train_fraction": cfg.train_fraction, "n_train": len(y),
        "n_test": len(y_test), "beta": cfg.effective_beta, "beta_auto": beta_auto,
        "critic_update": resolve_critic_update(cfg) if cfg.method != "ce" else None,
        "noise_var": cfg.noise_var,
        "seed": cfg.seed, "wall_seconds": ck.elapsed(), "device": str(device),
        "data_source": train.source, "config": cfg.to_dict(), "layers": layers,
        "versions": versions(),
    }
    atomic_torch_save({"config": cfg.to_dict(), "net": net.state_dict(), "head": head.state_dict()
                       if hasattr(head, "state_dict") else None}, out / "model.pt")
    atomic_write_json(out / "result.json", result)
    (out / CHECKPOINT).unlink(missing_ok=True)  # finished: model.pt and result.json hold it all
    return result


class _Checkpointer:
    """Where a run is (stages done) and the saving of ``checkpoint.pt`` (see :mod:`layerib.runs.checkpoint`).

    Stages are numbered 0, 1, ...: ``layer1 .. layerK, readout`` for layer-wise
    methods, ``ce`` for cross-entropy. ``done`` counts the finished ones;
    ``local_for(k)`` is the saved mid-stage state of stage ``k`` (or None).
    """

    def __init__(self, out: Path, cfg: TrainConfig, net, g, metrics: MetricsLog,
                 state: dict | None, t0: float):
        self.out, self.cfg, self.net, self.g, self.metrics = out, cfg, net, g, metrics
        self.every = cfg.checkpoint_every
        self.done, self.local, self.head, self.elapsed0 = 0, None, None, 0.0
        if state is not None:
            self.done, self.local, self.head = state["done"], state["local"], state["head"]
            self.elapsed0 = state["elapsed"]
            net.load_state_dict(state["net"])
            metrics.truncate(state["metrics_bytes"])  # drop records written after it
            set_rng_state(g, state["rng"])
            log.warning("resuming %s from its checkpoint: %d stage(s) done, step %s of the next",
                        out, self.done, self.local["step"] if self.local else 0)
        self.t0 = t0

    def elapsed(self) -> float:
        """Wall seconds of the run so far, over all its attempts."""
        return self.elapsed0 + time.perf_counter() - self.t0

    def local_for(self, stage_index: int) -> dict | None:
        return self.local if self.done == stage_index else None

    def save(self, stage: str, step: int, local: dict | None) -> None:
        state = {"format": FORMAT, "config": self.cfg.to_dict(), "done": self.done,
                 "stage": stage, "step": step, "local": local, "net": self.net.state_dict(),
                 "head": self.head, "rng": rng_state(self.g),
                 "metrics_bytes": self.metrics.size(), "elapsed": self.elapsed(),
                 "versions": versions()}
        check_finite_state(state, stage, step)  # never overwrite a good checkpoint with NaN
        atomic_torch_save(state, self.out / CHECKPOINT)

    def hook(self, stage: str, steps: int, extra=None):
        """The loops' ``on_checkpoint``: save every ``checkpoint_every`` steps of the stage's
        ``steps`` but the last (:meth:`stage_done` saves that one); a test kill point."""
        def on_checkpoint(step: int, state_fn) -> None:
            if self.every and step % self.every == 0 and step < steps:
                local = state_fn()
                if extra is not None:
                    local.update(extra())
                self.save(stage, step, local)
            kill_point(f"{stage}:{step}")
        return on_checkpoint

    def stage_done(self, stage: str, step: int) -> None:
        """Stage finished: count it and save a checkpoint at the boundary."""
        self.done += 1
        self.local = None
        self.save(stage, step, None)
        kill_point(f"after:{stage}")


def _bar(progress: bool, total: int, desc: str):
    return tqdm(total=total, desc=desc, leave=False, dynamic_ncols=True) if progress else nullcontext()


def _train_layerwise(cfg, net, x, y, x_test, y_test, prior, g, metrics, progress, ck):
    h, h_test = x, x_test
    feats, feats_test = [], []
    s = _layer_settings(cfg, len(x))
    for i, layer in enumerate(net.layers, start=1):
        if ck.done < i:  # else trained before an interruption; its weights are loaded
            local = ck.local_for(i - 1)
            with _bar(progress, s.steps, f"layer {i}/{len(net)} ({cfg.method})") as bar:
                if bar is not None and local is not None:
                    bar.update(local["step"])
                train_layer(layer, i, h, y, prior, net.feature_dims[i - 1], s, g,
                            heldout=(h_test, y_test), on_eval=metrics.write,
                            progress=bar.update if bar is not None else None,
                            resume=local, on_checkpoint=ck.hook(f"layer{i}", s.steps))
            net.freeze(i)  # before the checkpoint: a resumed run re-freezes it below
            ck.stage_done(f"layer{i}", s.steps)
        net.freeze(i)
        h, h_test = forward_cached(layer, h), forward_cached(layer, h_test)
        feats.append(h.flatten(1))
        feats_test.append(h_test.flatten(1))
    return feats, feats_test


def _fit_head(cfg, features, y, num_classes, g, metrics, progress, ck, stage):
    """The read-out, stage number ``stage`` (it comes after the K layer stages, 0 .. K-1)."""
    if ck.done > stage:  # fitted before an interruption
        head = torch.nn.Linear(features.shape[1], num_classes).to(features.device)
        head.load_state_dict(ck.head)
        return head.eval()
    steps, _ = steps_for(len(y), cfg.batch_size, cfg.readout_epochs, cfg.min_steps_per_layer)
    with _bar(progress, steps, "read-out") as bar:
        head = fit_readout(features, y, num_classes, steps=steps, batch_size=cfg.batch_size,
                           lr=cfg.lr_readout, g=g, progress=bar.update if bar is not None else None,
                           on_epoch=lambda e, st, loss: metrics.write(
                               {"stage": "readout", "epoch": e, "step": st, "train_ce": loss}),
                           resume=ck.local_for(stage), on_checkpoint=ck.hook("readout", steps))
    ck.head = head.state_dict()
    ck.stage_done("readout", steps)
    return head


def _infoplane_recorder(cfg, net, x, y, heldout, steps, per_epoch, write):
    """Every layer's held-out (I(X;L+eps), I(Y;L)) during CE training (None when off)."""
    if not cfg.infoplane_evals:
        return None
    x_test, y_test, prior = heldout
    return InfoPlaneRecorder(
        net, x, y, x_test, y_test, prior, write, steps=eval_steps(steps, cfg.infoplane_evals),
        noise_var=cfg.noise_var, steps_per_epoch=per_epoch, batch_size=cfg.batch_size,
        eval_batch_size=cfg.mi_eval_batch_size, critic_steps=cfg.infoplane_critic_steps,
        hidden=cfg.critic_hidden, lr=cfg.lr_critic, ema_rate=cfg.ema_rate, y_bound=cfg.y_bound,
        y_critic=cfg.y_critic,
        seed=cfg.seed)


def _train_ce(cfg, net, x, y, g, metrics, progress, ck, infoplane=None):
    if ck.done >= 1:  # trained before an interruption; the net's weights are loaded
        net.eval()
        return lambda f: f
    steps, per_epoch = steps_for(len(y), cfg.batch_size, cfg.ce_epochs,
                                 cfg.min_steps_per_layer * len(net))
    recorder = (_infoplane_recorder(cfg, net, x, y, infoplane, steps, per_epoch, metrics.write)
                if infoplane is not None else None)
    local = ck.local_for(0)
    if recorder is not None:
        if local is None:
            recorder(0)
        else:
            recorder.load_state_dict(local["recorder"])
    extra = (lambda: {"recorder": recorder.state_dict()}) if recorder is not None else None
    with _bar(progress, steps, "cross-entropy") as bar:
        train_cross_entropy(net, x, y, steps=steps, batch_size=cfg.batch_size, lr=cfg.lr_layer,
                            g=g, weight_decay=cfg.weight_decay, grad_clip=cfg.grad_clip,
                            transform=crop_flip if cfg.augment == "crop_flip" else None,
                            progress=bar.update if bar is not None else None, on_step=recorder,
                            on_epoch=lambda e, st, loss: metrics.write(
                                {"stage": "ce", "epoch": e, "step": st, "train_ce": loss}),
                            resume=local, on_checkpoint=ck.hook("ce", steps, extra))
    ck.stage_done("ce", steps)
    return lambda f: f  # the net's last layer is the CE head: logits are its output


@torch.inference_mode()
def _all_features(net, x, chunk: int = 4096) -> list[torch.Tensor]:
    net.eval()
    parts = [net.features(x[s:s + chunk]) for s in range(0, len(x), chunk)]
    return [torch.cat([p[k] for p in parts]).flatten(1) for k in range(len(net))]
