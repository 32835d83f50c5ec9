"""One training run in a run folder: the glue around a trainer (:mod:`layerib.ib.trainers`).

:func:`run_training` is what ``layerib train`` calls: it loads a registered data set
(:mod:`layerib.data`), builds the net the config names (:mod:`layerib.models.registry`)
and hands both to :func:`train_net`, which :func:`layerib.train_layerwise` calls too
with a user's own net and data when it writes a run folder. The run folder is made of
the trainer's callbacks: ``metrics.jsonl`` (:class:`~layerib.runs.folder.MetricsLog`),
``checkpoint.pt`` at regular steps and at every stage's end and resume
(:class:`~layerib.runs.checkpoint.Checkpointer`; removed when the run ends), progress bars
(:class:`ProgressBars`); ``config.json`` is written first, ``model.pt`` and
``result.json`` (atomically) last, so a folder with ``result.json`` holds a finished run.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import torch

from layerib.config import TrainConfig
from layerib.data.dataset import Uint8Images, take_rows
from layerib.data.mnist import ImageDataset
from layerib.data.streamed import stream_rows
from layerib.ib.cache import CACHE_FOLDER
from layerib.ib.callbacks import Callback
from layerib.ib.stage import StageSpec
from layerib.ib.trainers import (REPORT, make_trainer, resolve_device, resolve_settings,
                                 split_validation)
from layerib.models.layered import LayeredNet
from layerib.models.registry import build_model
from layerib.runs.checkpoint import CHECKPOINT, Checkpointer, atomic_torch_save, find_resume_state
from layerib.runs.folder import (MetricsLog, atomic_write_json, check_run_dir, prepare_run_dir,
                                 versions)
from layerib.utils.progress import progress_bar

__all__ = ["run_training", "train_net", "load_data", "build_net", "ProgressBars",
           "resolve_device", "split_validation"]

log = logging.getLogger(__name__)


def load_data(cfg: TrainConfig, uint8: bool = False) -> tuple[ImageDataset, ImageDataset]:
    """``(train subset, full test set)`` of ``cfg.dataset``, as in-memory tensors.

    With ``uint8``, CIFAR-10's images stay uint8 in memory and are standardised per batch
    (:class:`~layerib.data.dataset.Uint8Images`: the same values, a quarter of the memory);
    other sets are float32 tensors either way.
    """
    from layerib.data.registry import load_dataset
    from layerib.data.subsets import stratified_subset
    kw = dict(data_root=cfg.data_root, download=cfg.download, cifar_source=cfg.cifar_source)
    if uint8 and cfg.dataset == "cifar10":
        train, test = (_cifar10_uint8(cfg, split) for split in ("train", "test"))
    else:
        train, test = (load_dataset(cfg.dataset, split, **kw) for split in ("train", "test"))
    idx = stratified_subset(train.labels, cfg.train_fraction, cfg.seed)
    if len(idx) < len(train.labels):  # else all rows in order: no copy
        train = ImageDataset(take_rows(train.images, idx), train.labels[idx], train.num_classes,
                             train.source)
    return train, test


def _cifar10_uint8(cfg: TrainConfig, split: str) -> ImageDataset:
    from layerib.data.cifar10 import load_cifar10, normalize_cifar10
    d = load_cifar10(cfg.data_root, split, source=cfg.cifar_source, download=cfg.download)
    log.info("dataset cifar10 %s: %d items, uint8, standardised per batch, from %s", split,
             len(d.labels), d.source)
    return ImageDataset(Uint8Images(d.images, normalize_cifar10), d.labels, len(d.classes),
                        d.source, d.classes)


def build_net(cfg: TrainConfig, input_shape: tuple[int, ...]) -> LayeredNet:
    """The net ``cfg`` names (``model`` if set, else ``arch``), for inputs of ``input_shape``.

    Raises:
        ConfigError: see :func:`~layerib.models.registry.build_model`; ``model="object"``
            (a net passed from Python, which only :func:`layerib.train_layerwise` can train).
    """
    from layerib.config import OBJECT_MODEL
    from layerib.errors import ConfigError
    if cfg.model == OBJECT_MODEL:
        raise ConfigError("model 'object' stands for a net passed from Python; give --model "
                          "PACKAGE.MODULE:FACTORY or --arch, or use layerib.train_layerwise")
    return build_model(cfg.arch, tuple(input_shape), channels=cfg.channels, widths=cfg.widths,
                       params=cfg.arch_params, model=cfg.model)


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
        The result dictionary also written to ``out/result.json`` (see :func:`train_net`).

    Raises:
        LayerIBError: bad data, a run folder that cannot be used (a finished
            run, or another config's run, without ``force``; ``resume`` without
            a checkpoint), or a non-finite loss or parameter
            (:class:`NumericalError`; the last good checkpoint is kept).
    """
    resolve_device(cfg.device)
    check_run_dir(Path(out), force=force)
    train, test = load_data(cfg, uint8=True)  # data errors surface before anything is written
    if cfg.workers:  # read per batch through a DataLoader (layerib.data.streamed)
        train, test = stream_rows(train, cfg.workers), stream_rows(test, cfg.workers)
    torch.manual_seed(cfg.seed)  # the net's initialisation
    net = build_net(cfg, tuple(train.images.shape[1:]))
    result, _ = train_net(cfg, net, train, test, out, force=force, progress=progress, argv=argv,
                          resume=resume)
    return result


def train_net(cfg: TrainConfig, net: LayeredNet, train: ImageDataset, test: ImageDataset,
              out: str | Path, *, force: bool = False, progress: bool = False,
              argv: list[str] | None = None, resume: bool = False, t0: float | None = None,
              callbacks: Sequence[Callback] = ()) -> tuple[dict, torch.nn.Module]:
    """Train ``net`` by ``cfg.method`` (:func:`~layerib.ib.trainers.make_trainer`) in the run
    folder ``out``: ``config.json``, then the trainer with the folder's callbacks (progress
    bars, ``metrics.jsonl``, ``callbacks``, checkpoints last), then ``model.pt`` and
    ``result.json``. A checkpoint in ``out`` of the same config is resumed.

    Returns:
        ``(result, readout)``: the result dictionary of
        :class:`~layerib.ib.trainers.FitResult` with ``versions``, and the read-out
        (identity for CE).

    Raises:
        LayerIBError: see :func:`run_training`.
    """
    t0 = time.perf_counter() if t0 is None else t0
    settings = resolve_settings(cfg, len(train))  # beta: 600 / every training image given
    cfg = settings.cfg
    folder = Path(out)
    state = find_resume_state(folder, cfg.to_dict(), force=force, resume=resume)
    folder = prepare_run_dir(folder, force=force)
    metrics = MetricsLog(folder / "metrics.jsonl")
    if state is None:
        atomic_write_json(folder / "config.json", {
            "config": cfg.to_dict(), "argv": argv or sys.argv, "versions": versions(),
            "data_source": train.source, "input_shape": list(train.images.shape[1:])})
        metrics.truncate(0)  # records of an attempt killed before its first checkpoint
    else:
        log.warning("resuming %s from its checkpoint: %d stage(s) done, step %s of the next",
                    folder, state["done"], state["local"]["loop"]["step"] if state["local"] else 0)
    bars = [ProgressBars(len(net), cfg.method)] if progress else []
    fitted = make_trainer(net, settings).fit(
        train, test, callbacks=[*bars, metrics, *callbacks,
                                Checkpointer(folder, cfg.to_dict(), cfg.checkpoint_every)],
        resume=state, cache_dir=folder / CACHE_FOLDER, progress=progress, t0=t0)
    result = {**fitted.result, "versions": versions()}
    head_state = fitted.readout.state_dict() or None  # None: CE, whose last layer is the head
    atomic_torch_save({"format": 2, "config": cfg.to_dict(), "net": fitted.net.state_dict(),
                       "head": head_state, "input_shape": list(train.images.shape[1:]),
                       "num_classes": train.num_classes}, folder / "model.pt")
    atomic_write_json(folder / "result.json", result)
    (folder / CHECKPOINT).unlink(missing_ok=True)  # finished: model.pt and result.json hold it all
    return result, fitted.readout


class ProgressBars(Callback):
    """A progress bar per stage (a trainer's callback): ``layer i/K (METHOD)``,
    ``read-out``, ``cross-entropy``; a search counts against its budget, then the bar
    restarts for the refit against the refit's steps."""

    def __init__(self, n_layers: int, method: str):
        self.n_layers, self.method, self.bar, self.tick = n_layers, method, None, None

    def _desc(self, unit: str) -> str:
        if unit.startswith("layer"):
            return f"layer {unit[len('layer'):]}/{self.n_layers} ({self.method})"
        return {"readout": "read-out", "ce": "cross-entropy"}.get(unit, unit)

    def _close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        self.bar = self.tick = None

    def on_stage_start(self, spec: StageSpec, step: int) -> None:
        if spec.name == REPORT:
            self._close()
            return
        desc = self._desc(spec.unit) + {"search": " search", "refit": " refit"}.get(spec.phase, "")
        if spec.phase == "refit" and self.bar is not None:  # the search's bar, counted again
            self.bar.reset(total=spec.steps)
            self.bar.set_description(desc)
        else:
            self._close()
            self.bar = _bar(True, spec.steps, desc)
            if step:
                self.bar.update(step)
        self.tick = _ticker(self.bar)

    def on_step(self, spec: StageSpec, step: int, state) -> None:
        if self.tick is not None:
            self.tick(1)

    def on_stage_end(self, name: str, steps: int, state) -> None:
        self._close()


def _bar(progress: bool, total: int, desc: str):
    """A stage's bar: live only on a terminal (:func:`layerib.utils.progress.progress_bar`)."""
    return progress_bar(total=total, desc=desc, enabled=progress, leave=False, dynamic_ncols=True)


def _ticker(bar):
    """``bar.update``, or None without a bar; a stage that runs past its budget
    (``budget_extend``) grows the bar's total with it instead of overflowing it."""
    if bar is None:
        return None

    def tick(n: int = 1) -> None:
        if bar.total is not None and bar.n + n > bar.total:
            bar.total = bar.n + n
        bar.update(n)
    return tick


