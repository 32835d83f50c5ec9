"""``layerib.train_layerwise``: layer-wise IB (or a baseline) on your own net and data.

A thin shell: the trainers of :mod:`layerib.ib.trainers` train; a run folder (``out``)
is written by the glue of :mod:`layerib.runs.training`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from layerib.api.data import as_image_dataset
from layerib.api.result import LayerMI, layer_mi_from_report
from layerib.config import IN_MEMORY, OBJECT_MODEL, TrainConfig, config_from_dict
from layerib.errors import ConfigError
from layerib.ib.callbacks import Callback, Records
from layerib.ib.trainers import make_trainer, resolve_device, resolve_settings
from layerib.models.layered import LayeredNet
from layerib.models.registry import as_layered
from layerib.runs.checkpoint import atomic_torch_save
from layerib.runs.folder import atomic_write_json, check_run_dir, versions
from layerib.runs.training import ProgressBars, train_net

#: in-memory data up to this size (bytes) is saved in the run folder (``data.pt``) so that
#: ``layerib estimate --run`` can read it back; larger sets are not (a warning says so)
MAX_SAVED_DATA = 256 * 2**20


@dataclass
class TrainResult:
    """What :func:`train_layerwise` returns (MI in nats; accuracies are fractions).

    Attributes:
        test_accuracy: accuracy on ``test`` through the fitted linear read-out (the net's
            own logits for ``method="ce"``); None when no test set was given.
        train_accuracy: the same on the training data.
        layers: one :class:`LayerMI` per layer-wise unit (held-out I(Y; L_i), I(X; L_i + eps)
            by AA-MINE with its Monte-Carlo truth, output RMS, flags).
        net: the trained net (:class:`~layerib.models.layered.LayeredNet` over your layers,
            which were trained in place); readout: the read-out (``nn.Identity`` for CE).
        settings: the resolved :class:`~layerib.config.TrainConfig` (beta filled in).
        records: every metrics record (those of ``metrics.jsonl``).
        out: the run folder, or None.
        result: the full result dictionary (``result.json``).
    """

    test_accuracy: float | None
    train_accuracy: float
    layers: list[LayerMI]
    net: LayeredNet
    readout: nn.Module
    settings: TrainConfig
    records: list[dict] = field(default_factory=list)
    out: Path | None = None
    result: dict = field(default_factory=dict)

    @torch.no_grad()
    def predict(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits ``(N, num_classes)`` of inputs ``x`` ``(N, ...)`` through net and read-out."""
        self.net.eval()
        dev = next(self.net.parameters()).device
        return self.readout(self.net(torch.as_tensor(x, dtype=torch.float32).to(dev)).flatten(1))


def train_layerwise(layers: nn.Module | Sequence[nn.Module], train: Any, test: Any = None, *,
                    method: str = "ib", out: str | Path | None = None, force: bool = False,
                    progress: bool = False, stream: bool = False, workers: int = 0,
                    callbacks: Sequence[Callback] = (), **settings) -> TrainResult:
    """Train ``layers`` layer by layer with the IB objective (Elad et al. 2019, Eq. 2), or a baseline.

    Each element of ``layers`` is one layer-wise unit: trained on the cached output of the
    frozen units before it to maximise ``I(Y; L_i) - beta I(X; L_i + eps)``, then frozen;
    then a linear read-out is fitted on the last unit's output with cross-entropy. The
    defaults are those of ``layerib train`` (InfoNCE bounds on both terms, the Gaussian
    AA-MINE critic, the joint critic/layer update, noise variance 100, beta = 600 / N;
    every stage early-stopped on a 20 % validation split of ``train``, then refitted on
    all of it for its best step count: ``val_fraction=0.2``, ``val_refit=True``; the final
    MI report by :func:`layerib.estimate_mi`'s protocol); mind that ``noise_var`` is in
    squared units of your layers' outputs.

    Args:
        layers: an ``nn.Sequential`` or a list of ``nn.Module`` s (output sizes are inferred
            from one batch; conv feature maps are flattened for the critics). The last unit
            should be linear with one output per class (the read-out then adds no capacity).
        train, test: ``(x (N, ...), y (N,))`` tensors or numpy arrays (integer labels
            0..C-1), or ``torch.utils.data.Dataset`` s yielding ``(x, int label)``. Inputs are
            used as given (standardise them yourself). Without ``test`` the held-out MI
            estimates use the training data (``result["in_sample"]`` is True) and
            ``test_accuracy`` is None.
        method: ``"ib"``, ``"iy"`` (beta = 0) or ``"ce"`` (end-to-end cross-entropy on the
            same net).
        out: a run folder (checkpoints and resume, ``config.json``, ``metrics.jsonl``,
            ``result.json``, ``model.pt`` and ``net.pt``), which ``layerib report`` and
            ``layerib estimate --run`` read; calling again with the same arguments resumes a
            stopped run. None writes nothing.
        force: overwrite a finished run (or another config's) in ``out``.
        progress: show progress bars.
        stream: read ``train`` and ``test`` given as ``Dataset`` s batch by batch (through a
            ``DataLoader`` over each batch's indices; pinned memory on CUDA) instead of into
            memory; the batches are the same, so is the result (bit-identical on CPU). The
            frozen layers' outputs then follow ``frozen_cache`` / ``cache_budget_mb`` (in
            memory up to the budget, then on disk). ``data.pt`` is not written. Not yet with
            ``val_refit`` (a one-line ConfigError: pass ``val_refit=False``).
        workers: loader processes sharing each batch when streaming (0: this process).
        callbacks: your own :class:`~layerib.ib.callbacks.Callback` s, told of every stage
            start, step, record (``on_eval``: what ``metrics.jsonl`` holds) and stage end,
            e.g. :class:`~layerib.ib.callbacks.TensorBoardCallback`.
        **settings: any ``layerib train`` setting by its config name (``beta``,
            ``noise_var``, ``batch_size``, ``min_steps_per_layer``, ``seed``, ``device``, ...).

    Returns:
        A :class:`TrainResult`.

    Raises:
        ConfigError: an unknown setting or bad value, data of the wrong type or shape,
            layers that do not compose.
        NumericalError: a non-finite loss or parameter (the last good checkpoint is kept).
        RunDirError: ``out`` cannot be used.
    """
    t0 = time.perf_counter()
    for key in ("dataset", "model", "arch", "widths", "channels", "train_fraction"):
        if key in settings:
            raise ConfigError(f"setting {key!r} describes the CLI's built-in data or nets; "
                              "train_layerwise takes your layers and data directly")
    cfg = config_from_dict({**settings, "method": method, "dataset": IN_MEMORY,
                            "model": OBJECT_MODEL})
    resolve_device(cfg.device)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ConfigError(f"workers must be an integer >= 0, got {workers!r}")
    callbacks = list(callbacks)
    if not all(isinstance(cb, Callback) for cb in callbacks):
        raise ConfigError("callbacks must be layerib.ib.callbacks.Callback instances "
                          "(subclass Callback and override on_step, on_eval, ...)")
    tr, te = as_image_dataset(train, test, stream=stream, workers=workers)
    net = as_layered(layers, tr.images[:2])
    test_set = te if te is not None else tr
    if out is None:  # no run folder: the trainer alone, its records kept in memory
        records = Records()
        bars = [ProgressBars(len(net), cfg.method)] if progress else []
        fitted = make_trainer(net, resolve_settings(cfg, len(tr))).fit(
            tr, test_set, callbacks=[*bars, records, *callbacks], progress=progress, t0=t0)
        result, head = {**fitted.result, "versions": versions()}, fitted.readout
        result["records"] = records.records
    else:
        check_run_dir(Path(out), force=force)
        result, head = train_net(cfg, net, tr, test_set, out, force=force, progress=progress,
                                 t0=t0, callbacks=callbacks)
    result["in_sample"] = te is None
    if out is not None:
        _save_python_objects(Path(out), net, tr, te)
        atomic_write_json(Path(out) / "result.json", result)
    return TrainResult(
        test_accuracy=result["test_accuracy"] if te is not None else None,
        train_accuracy=result["train_accuracy"],
        layers=[layer_mi_from_report(r) for r in result["layers"]], net=net, readout=head,
        settings=config_from_dict(result["config"]), records=result.pop("records", []),
        out=Path(out) if out is not None else None, result=result)


def _save_python_objects(out: Path, net: LayeredNet, train, test) -> None:
    """``net.pt`` (the whole net, pickled: your classes must be importable to load it) and,
    when small enough, ``data.pt`` (the tensors), so ``layerib estimate --run`` can rebuild."""
    atomic_torch_save(net.cpu(), out / "net.pt")
    sets = {"train": train, "test": test if test is not None else train}
    if not all(isinstance(d.images, torch.Tensor) for d in sets.values()):
        warnings.warn(f"streamed data are not saved in {out}; `layerib estimate --run` on this "
                      "folder needs them back", stacklevel=3)
        return
    size = sum(d.images.numel() * 4 for d in sets.values())
    if size <= MAX_SAVED_DATA:
        atomic_torch_save({k: {"x": d.images, "y": d.labels, "num_classes": d.num_classes}
                           for k, d in sets.items()}, out / "data.pt")
    else:
        warnings.warn(f"the data ({size / 2**20:.0f} MiB) is not saved in {out}; "
                      "`layerib estimate --run` on this folder needs it back", stacklevel=3)
