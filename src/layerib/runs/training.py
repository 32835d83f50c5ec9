"""One training run, end to end: data, net, method, read-out, MI report, run folder.

:func:`run_training` is what ``layerib train`` calls: it loads a registered data set
(:mod:`layerib.data`), builds the net the config names (:mod:`layerib.models.registry`)
and hands both to :func:`train_net`, which :func:`layerib.train_layerwise` calls too
with a user's own net and data. With a run folder it writes ``config.json`` first,
``metrics.jsonl`` as it goes, ``checkpoint.pt`` at regular steps and at every stage's
end (:mod:`layerib.runs.checkpoint`; removed when the run ends), and ``model.pt`` and
``result.json`` (atomically) last, so a folder with ``result.json`` holds a finished run.
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch
from tqdm.auto import tqdm

from layerib.config import TrainConfig, resolve_beta, resolve_critic_update
from layerib.data.augment import AUGMENTATIONS
from layerib.data.dataset import Uint8Images, cat_rows, take_rows
from layerib.data.mnist import ImageDataset
from layerib.errors import ConfigError
from layerib.ib.endtoend import accuracy, fit_readout, stage_limit, steps_for, train_cross_entropy
from layerib.ib.infoplane import InfoPlaneRecorder, eval_steps
from layerib.ib.cache import CACHE_FOLDER, FrozenCache
from layerib.ib.layerwise import forward_cached, stage_steps, train_layer
from layerib.ib.prefix import RecomputedPrefix
from layerib.ib.report import layer_mi_report
from layerib.models.layered import LayeredNet
from layerib.models.registry import build_model
from layerib.runs.checkpoint import (CHECKPOINT, FORMAT, atomic_torch_save, check_finite_state,
                                     find_resume_state, kill_point)
from layerib.runs.folder import (MemoryLog, MetricsLog, atomic_write_json, check_run_dir,
                                 prepare_run_dir, versions)
from layerib.utils.precision import prepare_net
from layerib.utils.rng import rng_state, set_rng_state

log = logging.getLogger(__name__)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without a GPU is a ConfigError."""
    from layerib.errors import ConfigError
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no GPU; use --device cpu or auto")
    return torch.device(name)


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
        from layerib.data.streamed import stream_rows
        train, test = stream_rows(train, cfg.workers), stream_rows(test, cfg.workers)
    torch.manual_seed(cfg.seed)  # the net's initialisation
    net = build_net(cfg, tuple(train.images.shape[1:]))
    result, _ = train_net(cfg, net, train, test, out, force=force, progress=progress, argv=argv,
                          resume=resume)
    return result


def train_net(cfg: TrainConfig, net: LayeredNet, train: ImageDataset, test: ImageDataset,
              out: str | Path | None, *, force: bool = False, progress: bool = False,
              argv: list[str] | None = None, resume: bool = False,
              t0: float | None = None) -> tuple[dict, torch.nn.Module]:
    """Train ``net`` on ``train`` by ``cfg.method``, fit the read-out, report every layer's MI.

    Args:
        cfg: the settings (``beta`` None: :func:`~layerib.config.auto_beta` of ``len(train)``,
            every training image given, the validation split included).
        net: the net, one layer-wise unit per layer (initialised; trained in place).
        train, test: in-memory data sets; ``test`` gives the accuracy and the held-out MI.
        out: the run folder (checkpoints, resume, ``metrics.jsonl``, ``model.pt``,
            ``result.json``), or None to write nothing (records are kept in memory).

    Returns:
        ``(result, head)``: the read-out (a module; identity for CE) and the result dictionary:
        ``test_accuracy`` and ``train_accuracy`` (fractions, through
        the read-out), ``majority_accuracy`` (the test accuracy of always answering the most
        frequent training class; ``layerib train`` warns when the net is not above it), the settings, wall time, ``records`` (every metrics record, in memory
        only when ``out`` is None) and per layer held-out ``i_y_nats``, ``i_x_nats``, the
        Monte-Carlo truth ``i_x_monte_carlo_nats``, ``output_rms`` (see :func:`layer_mi_report`);
        ``n_train`` / ``n_val`` the rows fitted / held out for early stopping and, with
        ``val_refit``, ``refit``: per stage its best step, refit steps and rows.

    Raises:
        LayerIBError: see :func:`run_training`.
    """
    from layerib.data.checks import warn_if_constant
    device = resolve_device(cfg.device)
    t0 = time.perf_counter() if t0 is None else t0
    imgs = getattr(train.images, "raw", train.images)  # a Dataset read per batch: not checked
    if isinstance(imgs, torch.Tensor):
        warn_if_constant(imgs, "training set")
    n_given = len(train)  # the automatic beta is 600 / the training images given, whatever is held out
    train, val = split_validation(train, cfg.val_fraction, cfg.seed)
    beta_auto = cfg.beta is None
    cfg = resolve_beta(cfg, n_given)
    folder = None if out is None else Path(out)
    state = None
    if folder is not None:
        state = find_resume_state(folder, cfg.to_dict(), force=force, resume=resume)
        folder = prepare_run_dir(folder, force=force)
    metrics = MemoryLog() if folder is None else MetricsLog(folder / "metrics.jsonl")
    if folder is not None and state is None:
        atomic_write_json(folder / "config.json", {
            "config": cfg.to_dict(), "argv": argv or sys.argv, "versions": versions(),
            "data_source": train.source, "input_shape": list(train.images.shape[1:])})
        metrics.truncate(0)  # records of an attempt killed before its first checkpoint
    g = torch.Generator(device=device).manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    x, y = train.images.to(device), train.labels.to(device)
    x_test, y_test = test.images.to(device), test.labels.to(device)
    val = None if val is None else (val.images.to(device), val.labels.to(device))
    net = prepare_net(net.to(device), cfg.precision)
    prior = torch.bincount(y, minlength=train.num_classes).float() / len(y)
    ck = _Checkpointer(folder, cfg, net, g, metrics, state, t0)

    # the frozen outputs: in memory or in files under the run folder, deleted when the run ends
    # (with val_refit the search and refit keep their outputs in memory)
    cache = FrozenCache(cfg.frozen_cache, cfg.cache_budget_mb,
                        None if folder is None else folder / CACHE_FOLDER)
    flush = cfg.flush_denormal and device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        if cfg.method == "ce":
            head = _train_ce(cfg, net, x, y, g, metrics, progress, ck,
                             infoplane=(x_test, y_test, prior), val=val)
            feats, feats_test = _all_features(net, x, cache), _all_features(net, x_test, cache)
        else:
            search = None  # val_refit: the search net's last features on the fit and validation rows
            if cfg.val_refit and val is not None:
                if not isinstance(x, (torch.Tensor, Uint8Images)):
                    raise ConfigError("val_refit holds the training rows in memory and does not "
                                      "stream them yet; pass val_refit=False with stream=True "
                                      "(or val_fraction=0)")
                feats, feats_test, feats_val, search = _train_layerwise_refit(
                    cfg, net, x, y, x_test, y_test, prior, g, metrics, progress, ck, val)
            else:
                feats, feats_test, feats_val = _train_layerwise(cfg, net, x, y, x_test, y_test,
                                                                prior, g, metrics, progress, ck,
                                                                val, cache)
            head = _fit_head(cfg, feats[-1], y, train.num_classes, g, metrics, progress, ck,
                             stage=len(feats),
                             val=None if val is None else (feats_val[-1], val[1]), search=search)
        kill_point("report")
        test_acc = accuracy(head, feats_test[-1], y_test)
        train_acc = accuracy(head, feats[-1], y)
        metrics.write({"stage": "final", "test_accuracy": test_acc, "train_accuracy": train_acc})
        layers = layer_mi_report(feats, y, feats_test, y_test, prior, cfg, seed=cfg.seed,
                                 progress=progress)
    finally:
        cache.close()
        if flush:
            torch.set_flush_denormal(False)
    result = {
        "test_accuracy": test_acc, "train_accuracy": train_acc,
        # the test accuracy of always answering the most frequent training class
        "majority_accuracy": float((y_test == int(torch.bincount(y).argmax())).double().mean()),
        "method": cfg.method,
        "dataset": cfg.dataset, "train_fraction": cfg.train_fraction, "n_train": len(y),
        "n_val": 0 if val is None else len(val[1]),
        "n_test": len(y_test), "beta": cfg.effective_beta, "beta_auto": beta_auto,
        "critic_update": resolve_critic_update(cfg) if cfg.method != "ce" else None,
        "noise_var": cfg.noise_var,
        "seed": cfg.seed, "wall_seconds": ck.elapsed(), "device": str(device),
        "data_source": train.source, "config": cfg.to_dict(), "layers": layers,
        "versions": versions(),
    }
    if ck.refits:
        result["refit"] = ck.refits
    head_state = head.state_dict() or None  # None: CE, whose last layer is the head
    if folder is not None:
        atomic_torch_save({"format": 2, "config": cfg.to_dict(), "net": net.state_dict(),
                           "head": head_state, "input_shape": list(train.images.shape[1:]),
                           "num_classes": train.num_classes}, folder / "model.pt")
        atomic_write_json(folder / "result.json", result)
        (folder / CHECKPOINT).unlink(missing_ok=True)  # finished: model.pt and result.json hold it all
    else:
        result["records"] = metrics.records
    return result, head


class _Checkpointer:
    """Where a run is (stages done) and the saving of ``checkpoint.pt`` (see :mod:`layerib.runs.checkpoint`).

    Stages are numbered 0, 1, ...: ``layer1 .. layerK, readout`` for layer-wise
    methods, ``ce`` for cross-entropy. ``done`` counts the finished ones;
    ``local_for(k)`` is the saved mid-stage state of stage ``k`` (or None). With no
    run folder (``out`` None) nothing is saved.
    """

    def __init__(self, out: Path | None, cfg: TrainConfig, net, g, metrics,
                 state: dict | None, t0: float):
        self.out, self.cfg, self.net, self.g, self.metrics = out, cfg, net, g, metrics
        self.every = cfg.checkpoint_every if out is not None else 0
        self.done, self.local, self.head, self.elapsed0 = 0, None, None, 0.0
        # val_refit: stage -> its best step and refit steps; the search net (and its saved state)
        self.refits, self.search_net, self.search_state = {}, None, None
        if state is not None:
            self.done, self.local, self.head = state["done"], state["local"], state["head"]
            self.refits, self.search_state = state.get("refits", {}), state.get("search_net")
            self.elapsed0 = state["elapsed"]
            net.load_state_dict(state["net"])
            metrics.truncate(state["metrics_bytes"])  # drop records written after it
            set_rng_state(g, state["rng"])
            log.warning("resuming %s from its checkpoint: %d stage(s) done, step %s of the next",
                        out, self.done, self.local["loop"]["step"] if self.local else 0)
        self.t0 = t0

    def elapsed(self) -> float:
        """Wall seconds of the run so far, over all its attempts."""
        return self.elapsed0 + time.perf_counter() - self.t0

    def local_for(self, stage_index: int) -> dict | None:
        return self.local if self.done == stage_index else None

    def save(self, stage: str, step: int, local: dict | None) -> None:
        if self.out is None:
            return
        state = {"format": FORMAT, "config": self.cfg.to_dict(), "done": self.done,
                 "stage": stage, "step": step, "local": local, "net": self.net.state_dict(),
                 "head": self.head, "refits": self.refits, "rng": rng_state(self.g),
                 "search_net": None if self.search_net is None else self.search_net.state_dict(),
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


def split_validation(train: ImageDataset, fraction: float, seed: int
                     ) -> tuple[ImageDataset, ImageDataset | None]:
    """``(fit, val)``: a stratified, seeded ``fraction`` of ``train`` held out for early
    stopping (``val`` None when ``fraction`` is 0). Never touches the test set."""
    if fraction <= 0:
        return train, None
    from layerib.data.subsets import stratified_subset
    from layerib.errors import ConfigError
    val_idx = stratified_subset(train.labels, fraction, seed + 1_000_003)
    keep = torch.ones(len(train.labels), dtype=torch.bool)
    keep[val_idx] = False
    if len(val_idx) < 2 or int(keep.sum()) < 2:
        raise ConfigError(f"--val-fraction {fraction} of {len(train.labels)} training images "
                          "leaves fewer than 2 on a side; change it or set it to 0")
    part = lambda m: ImageDataset(take_rows(train.images, m), train.labels[m], train.num_classes,
                                  train.source)
    return part(keep), part(val_idx)


def _train_layerwise(cfg, net, x, y, x_test, y_test, prior, g, metrics, progress, ck, val=None,
                     cache=None):
    """Train every unit in turn. Its input is the frozen prefix's output, cached once
    (``cache``, a :class:`~layerib.ib.cache.FrozenCache`: in memory or on disk), or
    recomputed per batch (``frozen_cache``; on augmented inputs with ``augment``);
    returns every layer's (flattened) features on the training, test and validation sets."""
    cache = cache if cache is not None else FrozenCache(cfg.frozen_cache, cfg.cache_budget_mb)
    steps, _ = stage_steps(cfg, len(x))
    transform = AUGMENTATIONS[cfg.augment]
    recompute = cfg.frozen_cache == "recompute" or (cfg.frozen_cache == "auto" and transform is not None)
    h, h_test = x, x_test
    h_val = None if val is None else val[0]
    feats, feats_test, feats_val = [], [], []
    for i, layer in enumerate(net.layers, start=1):
        if ck.done < i:  # else trained before an interruption; its weights are loaded
            local = ck.local_for(i - 1)
            stage_input = h if not recompute else RecomputedPrefix(
                x, net.prefix(i - 1) if i > 1 else torch.nn.Sequential(), transform, g,
                cfg.precision)
            with _bar(progress, steps, f"layer {i}/{len(net)} ({cfg.method})") as bar:
                if bar is not None and local is not None:
                    bar.update(local["loop"]["step"])
                train_layer(layer, i, stage_input, y, prior, cfg, g, heldout=(h_test, y_test),
                            val=None if val is None else (h_val, val[1]),
                            on_eval=metrics.write, progress=_ticker(bar), resume=local,
                            on_checkpoint=ck.hook(f"layer{i}", stage_limit(
                                steps, cfg.budget_extend, val is not None)))
            net.freeze(i)  # before the checkpoint: a resumed run re-freezes it below
            ck.stage_done(f"layer{i}", steps)
        net.freeze(i)
        h_test = cache.forward(layer, h_test)
        feats_test.append(h_test.flatten(1))
        if not recompute:
            h = cache.forward(layer, h)
            feats.append(h.flatten(1))
        if h_val is not None:
            h_val = cache.forward(layer, h_val)
            feats_val.append(h_val.flatten(1))
    if recompute:  # the training features of every layer, once, for the read-out and report
        feats = _all_features(net, x, cache)
    return feats, feats_test, feats_val


def _train_layerwise_refit(cfg, net, x, y, x_test, y_test, prior, g, metrics, progress, ck, val):
    """``val_refit``: :func:`_train_layerwise` twice over, stage by stage.

    A copy of the net from the same initial weights (the *search* net, ``ck.search_net``)
    is trained as without refit: on the fit rows, each stage early-stopped on the
    validation rows, whose features come from its own frozen layers (which never saw
    them). That gives each stage its best step s*; the net's own stage then trains on all
    rows, fit and validation, for :func:`refit_steps` of it (:func:`_search_then_refit`).
    Returns the net's features on the fit, test and validation rows, and the search net's
    last ones on the fit and validation rows (the read-out's search).
    """
    steps, _ = stage_steps(cfg, len(x))
    transform = AUGMENTATIONS[cfg.augment]
    recompute = cfg.frozen_cache == "recompute" or (cfg.frozen_cache == "auto" and transform is not None)
    n = len(x)
    x_all, y_all = cat_rows(x, val[0]), torch.cat([y, val[1]])  # uint8 images stay uint8
    prior_all = torch.bincount(y_all, minlength=len(prior)).float() / len(y_all)
    search_net = copy.deepcopy(net)
    if ck.search_state is not None:
        search_net.load_state_dict(ck.search_state)
    ck.search_net = search_net
    # cached features: hs of the search net, h of the net, on all rows (the first n: fit rows)
    hs, h, h_test = x_all, x_all, x_test
    hs_val, h_val = val[0], val[0]
    feats, feats_test, feats_val = [], [], []

    def prefix(model, i):
        return model.prefix(i - 1) if i > 1 else torch.nn.Sequential()
    for i, (layer, twin) in enumerate(zip(net.layers, search_net.layers), start=1):
        if ck.done < i:  # else trained before an interruption; its weights are loaded
            with _bar(progress, steps, f"layer {i}/{len(net)} ({cfg.method})") as bar:
                tick = _ticker(bar)

                def search(resume, hook, on_best):
                    rows = hs[:n] if not recompute else RecomputedPrefix(x, prefix(search_net, i),
                                                                         transform, g, cfg.precision)
                    train_layer(twin, i, rows, y, prior, cfg, g, val=(hs_val, val[1]),
                                on_eval=_validation_only(metrics), progress=tick, resume=resume,
                                on_checkpoint=hook, on_best=on_best)

                def fit(n_steps, resume, hook):
                    rows = h if not recompute else RecomputedPrefix(x_all, prefix(net, i),
                                                                    transform, g, cfg.precision)
                    train_layer(layer, i, rows, y_all, prior_all, cfg, g,
                                heldout=(h_test, y_test), on_eval=metrics.write, progress=tick,
                                resume=resume, on_checkpoint=hook(), steps=n_steps,
                                lr_horizon=refit_steps(steps, n, len(y_all)))
                _search_then_refit(ck, i - 1, f"layer{i}", layer,
                                   stage_limit(steps, cfg.budget_extend, True), search, fit, n,
                                   len(y_all), bar)
            search_net.freeze(i)
            net.freeze(i)  # before the checkpoint: a resumed run re-freezes it below
            ck.stage_done(f"layer{i}", steps)
        search_net.freeze(i)
        net.freeze(i)
        h_test = forward_cached(layer, h_test)
        feats_test.append(h_test.flatten(1))
        if recompute:
            hs_val, h_val = forward_cached(twin, hs_val), forward_cached(layer, h_val)
        else:
            hs, h = forward_cached(twin, hs), forward_cached(layer, h)
            hs_val, h_val = hs[n:], h[n:]
            feats.append(h[:n].flatten(1))
        feats_val.append(h_val.flatten(1))
    if recompute:  # the training features of every layer, once, for the read-out and report
        feats = _all_features(net, x)
    search_fit = _all_features(search_net, x)[-1] if recompute else hs[:n].flatten(1)
    return feats, feats_test, feats_val, (search_fit, hs_val.flatten(1))


def _validation_only(metrics):
    """``on_eval`` of a refit's search: its validation records (the refit writes the stage's)."""
    return lambda rec: metrics.write(rec) if rec["stage"] == "validation" else None


def refit_steps(best_step: int, n_fit: int, n_all: int) -> int:
    """Steps of a stage's refit on all ``n_all`` rows, given its best validation step
    ``best_step`` on ``n_fit`` rows: the same number of epochs."""
    return max(1, round(best_step * n_all / n_fit))


def _search_then_refit(ck, index, name, module, search_steps, search, fit, n_fit, n_all, bar=None):
    """Stage ``index`` (``name``) with ``val_refit``: search for its best step, then refit.

    ``search(resume, on_checkpoint, on_best)`` trains ``module`` on the fit rows with early
    stopping on the validation rows and calls ``on_best(s*)``; then ``module`` goes back to
    its initial weights and ``fit(steps, resume, hook)`` trains it on all ``n_all`` rows for
    :func:`refit_steps` ``(s*)`` steps without stopping (``hook(extra=None)`` gives its
    ``on_checkpoint``). A checkpoint of either phase holds ``phase``, the initial weights
    and (refit) ``best_step``: both phases resume; the refit's kill points are
    ``NAME.refit:STEP``. Records ``{"stage": "refit", ...}`` and ``ck.refits[name]``.
    ``search_steps``: the search's step limit (checkpoints are saved below it). ``bar`` (a
    tqdm bar or None) counts the search, then is reset to count the refit against its own
    steps.
    """
    local = ck.local_for(index)
    desc = bar.desc if bar is not None else ""
    init = local["init"] if local is not None else copy.deepcopy(module.state_dict())
    found = {"best_step": local["best_step"]} if local is not None and local["phase"] == "refit" else {}
    if not found:
        if bar is not None:
            bar.set_description(f"{desc} search")
        search(local, ck.hook(name, search_steps, lambda: {"phase": "search", "init": init}),
               lambda step: found.update(best_step=step))
        local = None
        module.load_state_dict(init)
    best, steps = found["best_step"], refit_steps(found["best_step"], n_fit, n_all)

    def hook(extra=None):
        return ck.hook(f"{name}.refit", steps, lambda: {"phase": "refit", "init": init,
                                                         "best_step": best,
                                                         **(extra() if extra else {})})
    if bar is not None:
        bar.reset(total=steps)
        bar.set_description(f"{desc} refit")
    fit(steps, local, hook)
    ck.refits[name] = {"best_step": best, "refit_steps": steps, "rows": n_all}
    ck.metrics.write({"stage": "refit", "unit": name, "best_step": best, "refit_steps": steps,
                      "rows": n_all})


def _fit_head(cfg, features, y, num_classes, g, metrics, progress, ck, stage, val=None,
              search=None):
    """The read-out, stage number ``stage`` (it comes after the K layer stages, 0 .. K-1).
    With ``val_refit``, ``search`` is the search net's ``(fit, validation)`` features: the
    read-out's best step is searched on them, then it is refitted on ``features`` + ``val``."""
    if ck.done > stage:  # fitted before an interruption
        head = torch.nn.Linear(features.shape[1], num_classes).to(features.device)
        head.load_state_dict(ck.head)
        return head.eval()
    steps, _ = steps_for(len(y), cfg.batch_size, cfg.readout_epochs, cfg.min_steps_per_layer)
    with _bar(progress, steps, "read-out") as bar:
        kw = dict(batch_size=cfg.batch_size, lr=cfg.lr_readout, g=g,
                  progress=_ticker(bar),
                  on_epoch=lambda e, st, loss: metrics.write(
                      {"stage": "readout", "epoch": e, "step": st, "train_ce": loss}))
        if search is not None:
            head = torch.nn.Linear(features.shape[1], num_classes).to(features.device)
            f_all, y_all = torch.cat([features, val[0]]), torch.cat([y, val[1]])

            def find(resume, hook, on_best):
                fit_readout(search[0], y, num_classes, head, steps=steps, resume=resume,
                            on_checkpoint=hook, val=(search[1], val[1]), val_checks=cfg.val_checks,
                            patience=cfg.patience, on_val=metrics.write, on_best=on_best,
                            budget_extend=cfg.budget_extend, **kw)

            def fit(n_steps, resume, hook):
                fit_readout(f_all, y_all, num_classes, head, steps=n_steps, resume=resume,
                            on_checkpoint=hook(), **kw)
            _search_then_refit(ck, stage, "readout", head,
                               stage_limit(steps, cfg.budget_extend, True), find, fit, len(y),
                               len(y_all), bar)
        else:
            head = fit_readout(features, y, num_classes, steps=steps, resume=ck.local_for(stage),
                               on_checkpoint=ck.hook("readout", stage_limit(
                                   steps, cfg.budget_extend, val is not None)), val=val,
                               val_checks=cfg.val_checks, patience=cfg.patience,
                               on_val=metrics.write, budget_extend=cfg.budget_extend, **kw)
    ck.head = head.state_dict()
    ck.stage_done("readout", steps)
    return head


def _train_ce(cfg, net, x, y, g, metrics, progress, ck, infoplane=None, val=None):
    if ck.done >= 1:  # trained before an interruption; the net's weights are loaded
        net.eval()
        return torch.nn.Identity()
    steps, per_epoch = steps_for(len(y), cfg.batch_size, cfg.ce_epochs,
                                 cfg.min_steps_per_layer * len(net))

    def recorder_for(x, y, steps, per_epoch, local):
        """The information-plane recorder of a CE run of ``steps`` steps on ``(x, y)`` (or None)."""
        if infoplane is None or not cfg.infoplane_evals:
            return None
        x_test, y_test, prior = infoplane
        recorder = InfoPlaneRecorder.for_net(net, (x, y), (x_test, y_test), prior, metrics.write,
                                             cfg, steps=eval_steps(steps, cfg.infoplane_evals),
                                             steps_per_epoch=per_epoch)
        if local is None:
            recorder(0)
        else:
            recorder.load_state_dict(local["recorder"])
        return recorder

    with _bar(progress, steps, "cross-entropy") as bar:
        kw = dict(batch_size=cfg.batch_size, lr=cfg.lr_layer, g=g, weight_decay=cfg.weight_decay,
                  grad_clip=cfg.grad_clip, transform=AUGMENTATIONS[cfg.augment],
                  progress=_ticker(bar), lr_schedule=cfg.lr_schedule, precision=cfg.precision,
                  on_epoch=lambda e, st, loss: metrics.write(
                      {"stage": "ce", "epoch": e, "step": st, "train_ce": loss}))
        if cfg.val_refit and val is not None:  # the recorder follows the refit (the final net)
            x_all, y_all = cat_rows(x, val[0]), torch.cat([y, val[1]])

            def search(resume, hook, on_best):
                train_cross_entropy(net, x, y, steps=steps, resume=resume, on_checkpoint=hook,
                                    val=val, val_checks=cfg.val_checks, patience=cfg.patience,
                                    on_val=metrics.write, on_best=on_best,
                                    budget_extend=cfg.budget_extend, **kw)

            def fit(n_steps, resume, hook):
                per = steps_for(len(y_all), cfg.batch_size, 1, 0)[1]
                recorder = recorder_for(x_all, y_all, n_steps, per, resume)
                extra = (lambda: {"recorder": recorder.state_dict()}) if recorder is not None else None
                train_cross_entropy(net, x_all, y_all, steps=n_steps, resume=resume,
                                    on_step=recorder, on_checkpoint=hook(extra),
                                    lr_horizon=refit_steps(steps, len(y), len(y_all)), **kw)
            _search_then_refit(ck, 0, "ce", net, stage_limit(steps, cfg.budget_extend, True),
                               search, fit, len(y), len(y_all), bar)
        else:
            local = ck.local_for(0)
            recorder = recorder_for(x, y, steps, per_epoch, local)
            extra = (lambda: {"recorder": recorder.state_dict()}) if recorder is not None else None
            train_cross_entropy(net, x, y, steps=steps, on_step=recorder, resume=local,
                                on_checkpoint=ck.hook("ce", stage_limit(
                                    steps, cfg.budget_extend, val is not None), extra), val=val,
                                val_checks=cfg.val_checks, patience=cfg.patience,
                                on_val=metrics.write, budget_extend=cfg.budget_extend, **kw)
    ck.stage_done("ce", steps)
    return torch.nn.Identity()  # the net's last layer is the CE head: logits are its output


@torch.inference_mode()
def _all_features(net, x, cache: FrozenCache | None = None) -> list:
    """Every layer's (flattened) output on ``x``, layer by layer in chunks, each stored by
    ``cache`` (in memory when None): tensors or :class:`~layerib.ib.cache.DiskRows`."""
    cache = cache if cache is not None else FrozenCache("memory")
    net.eval()
    feats, h = [], x
    for layer in net.layers:
        h = cache.forward(layer, h)
        feats.append(h.flatten(1))
    return feats
