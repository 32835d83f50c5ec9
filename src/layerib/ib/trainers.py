"""The trainers: layer-wise IB (Elad et al. 2019, Sec. 4) and end-to-end cross-entropy.

:class:`LayerwiseTrainer` (methods ``ib`` and ``iy``) trains every unit of a
:class:`~layerib.models.layered.LayeredNet` in turn on the frozen units' output, then
freezes it, and fits a linear read-out on the last unit's output; :class:`EndToEndCE`
trains the same net end to end with cross-entropy (Table 1's baseline). Both take the
settings resolved once (:func:`resolve_settings`: device, beta, critic update) and the
data, run every stage through :mod:`layerib.ib.stage`, tell their callbacks
(:mod:`layerib.ib.callbacks`) about every step, record and stage end, and return a
:class:`FitResult` with every layer's held-out MI (:func:`~layerib.ib.report.layer_mi_report`).

With a validation split (``val_fraction``) every stage early-stops on it; with
``val_refit`` it first *searches* its best step on a copy of the net trained on the fit
rows, then restarts from its initial weights and *refits* on all rows for as many epochs.
A trainer resumes from the state its callbacks were given (``fit(resume=...)``) exactly:
a resumed run ends bit-identical to an uninterrupted one on CPU.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from layerib.config import TrainConfig, resolve_beta, resolve_critic_update
from layerib.data.augment import AUGMENTATIONS
from layerib.data.checks import warn_if_constant
from layerib.data.dataset import Uint8Images, cat_rows, take_rows
from layerib.data.mnist import ImageDataset
from layerib.data.subsets import stratified_subset
from layerib.errors import ConfigError
from layerib.ib.budget import machine, plan_steps, probe_seconds_per_step, stage_share, stage_weights
from layerib.ib.cache import FrozenCache
from layerib.ib.callbacks import Callback, CallbackList, Hooks
from layerib.ib.endtoend import CEOptions, accuracy, ce_stage, stage_limit, steps_for
from layerib.ib.infoplane import InfoPlaneRecorder, eval_steps
from layerib.ib.layerwise import forward_cached, layer_stage, stage_steps
from layerib.ib.prefix import RecomputedPrefix
from layerib.ib.report import layer_mi_report
from layerib.ib.stage import StageSpec, with_phase
from layerib.models.layered import LayeredNet
from layerib.utils.precision import prepare_net
from layerib.utils.rng import rng_state, set_rng_state

#: the name of the stage that announces the final MI report (``on_stage_start``; no steps)
REPORT = "report"


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda when available else cpu.

    Raises:
        ConfigError: ``cuda`` asked for without a GPU.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError("--device cuda asked for, but torch sees no GPU; use --device cpu or auto")
    return torch.device(name)


@dataclass(frozen=True)
class RunSettings:
    """A run's settings, resolved once (:func:`resolve_settings`).

    Attributes:
        cfg: the :class:`~layerib.config.TrainConfig` with ``beta`` filled in.
        device: where the run trains.
        critic_update: ``"joint"`` or ``"alternating"`` (None for ``ce``).
        beta_auto: whether beta was the automatic 600 / N.
    """

    cfg: TrainConfig
    device: torch.device
    critic_update: str | None
    beta_auto: bool


def resolve_settings(cfg: TrainConfig, n_train: int) -> RunSettings:
    """Device, beta (:func:`~layerib.config.auto_beta` of ``n_train``, every training row
    given, the validation split included) and the critic update, once for a run.

    Raises:
        ConfigError: see :func:`resolve_device`.

    Example:
        >>> s = resolve_settings(TrainConfig(), 60000)
        >>> s.cfg.beta, s.critic_update, s.beta_auto
        (0.01, 'joint', True)
    """
    device = resolve_device(cfg.device)
    beta_auto = cfg.beta is None
    cfg = resolve_beta(cfg, n_train)
    update = resolve_critic_update(cfg) if cfg.method != "ce" else None
    return RunSettings(cfg, device, update, beta_auto)


def split_validation(train: ImageDataset, fraction: float, seed: int
                     ) -> tuple[ImageDataset, ImageDataset | None]:
    """``(fit, val)``: a stratified, seeded ``fraction`` of ``train`` held out for early
    stopping (``val`` None when ``fraction`` is 0). Never touches the test set.

    Raises:
        ConfigError: a side would hold fewer than 2 rows.
    """
    if fraction <= 0:
        return train, None
    val_idx = stratified_subset(train.labels, fraction, seed + 1_000_003)
    keep = torch.ones(len(train.labels), dtype=torch.bool)
    keep[val_idx] = False
    if len(val_idx) < 2 or int(keep.sum()) < 2:
        raise ConfigError(f"--val-fraction {fraction} of {len(train.labels)} training images "
                          "leaves fewer than 2 on a side; change it or set it to 0")

    def part(m):
        return ImageDataset(take_rows(train.images, m), train.labels[m], train.num_classes,
                            train.source)
    return part(keep), part(val_idx)


def refit_steps(best_step: int, n_fit: int, n_all: int) -> int:
    """Steps of a stage's refit on all ``n_all`` rows, given its best validation step
    ``best_step`` on ``n_fit`` rows: the same number of epochs.

    Example:
        >>> refit_steps(48, 240, 300)
        60
    """
    return max(1, round(best_step * n_all / n_fit))


@torch.inference_mode()
def all_features(net: LayeredNet, x, cache: FrozenCache | None = None) -> list:
    """Every layer's (flattened) output on ``x``, layer by layer in chunks, each stored by
    ``cache`` (in memory when None): tensors ``(N, d_i)`` or :class:`~layerib.ib.cache.DiskRows`."""
    cache = cache if cache is not None else FrozenCache("memory")
    net.eval()
    feats, h = [], x
    for layer in net.layers:
        h = cache.forward(layer, h)
        feats.append(h.flatten(1))
    return feats


def layer_shapes(net: LayeredNet, x: torch.Tensor) -> list[tuple[int, ...]]:
    """One row's unflattened output shape of each layer of ``net`` (from a forward of the
    rows ``x``, at least one; no gradients, eval mode)."""
    net.eval()
    shapes, h = [], x
    with torch.no_grad():
        for layer in net.layers:
            h = layer(h)
            shapes.append(tuple(h.shape[1:]))
    return shapes


@dataclass
class FitResult:
    """What :meth:`LayerwiseTrainer.fit` and :meth:`EndToEndCE.fit` return.

    Attributes:
        result: the result dictionary (``result.json`` but ``versions``): ``test_accuracy``,
            ``train_accuracy`` (fractions, through the read-out), ``majority_accuracy``, the
            settings, ``wall_seconds``, ``n_train`` / ``n_val`` (rows fitted / held out),
            ``layers`` (per layer held-out ``i_y_nats``, ``i_x_nats``, the Monte-Carlo truth,
            ``output_rms``: :func:`~layerib.ib.report.layer_mi_report`) and, with
            ``val_refit``, ``refit`` (per stage its best step, refit steps and rows).
        readout: the fitted linear read-out (``nn.Identity`` for CE: the net's last layer
            gives the logits).
        net: the trained net.
    """

    result: dict
    readout: nn.Module
    net: LayeredNet = field(repr=False, default=None)


class _Trainer:
    """What both trainers share: the data on the device, resume, stage ends, the report."""

    def __init__(self, net: LayeredNet, settings: RunSettings):
        self.net, self.settings, self.cfg = net, settings, settings.cfg
        self.done, self.local, self.head_state = 0, None, None
        # val_refit: stage -> its best step and refit steps; the search net (and its saved state)
        self.refits, self.search_net, self.search_state = {}, None, None
        self.elapsed0, self.t0, self.g = 0.0, time.perf_counter(), None
        self.plans = {}  # budget_minutes: stage -> its plan (share, seconds per step, steps)
        self.probed = {}  # budget_split "steps": layer stage -> seconds per step, probed up front

    def elapsed(self) -> float:
        """Wall seconds of the run so far, over all its attempts."""
        return self.elapsed0 + time.perf_counter() - self.t0

    def local_for(self, stage_index: int) -> dict | None:
        """The saved mid-stage state of stage ``stage_index`` (0-based) to resume, or None."""
        return self.local if self.done == stage_index else None

    def state(self, local: dict | None) -> dict:
        """The trainer's resumable state (a checkpoint's core), ``local`` the current stage's."""
        return {"done": self.done, "local": local, "net": self.net.state_dict(),
                "head": self.head_state, "refits": self.refits, "rng": rng_state(self.g),
                "search_net": None if self.search_net is None else self.search_net.state_dict(),
                "elapsed": self.elapsed(), "plans": self.plans, "probed": self.probed}

    def _load(self, state: dict, callbacks: CallbackList) -> None:
        self.done, self.local, self.head_state = state["done"], state["local"], state["head"]
        self.refits, self.search_state = state.get("refits", {}), state.get("search_net")
        self.elapsed0, self.plans = state["elapsed"], state.get("plans", {})
        self.probed = state.get("probed", {})
        self.net.load_state_dict(state["net"])
        callbacks.load_state_dict(state)
        set_rng_state(self.g, state["rng"])

    def _planned(self, unit: str, steps: int, probe) -> int:
        """Stage ``unit``'s steps: ``steps`` without a budget; with ``budget_minutes`` its
        plan (:mod:`layerib.ib.budget`), made once before its first step -- its share of the
        time left, over the seconds per step that ``probe(spec, callbacks)`` (the stage on a
        copy, :func:`~layerib.ib.budget.probe_seconds_per_step`) measures -- and kept in the
        trainer's state, so a resumed stage keeps its plan. With ``budget_split="steps"``
        the layer stages were probed up front (:meth:`LayerwiseTrainer._probe_layers`): their
        seconds per step weight the shares and stand for the stage's own probe."""
        if self.cfg.budget_minutes is None:
            return steps
        if unit not in self.plans:
            weights = stage_weights(len(self.net), self.cfg.method, self.probed or None,
                                    self.cfg.budget_last_layer_weight)
            total = 60.0 * self.cfg.budget_minutes
            share = stage_share(unit, weights, total - self.elapsed(), total)
            per_step = self.probed[unit] if unit in self.probed else \
                probe_seconds_per_step(probe, unit, self.settings.device)
            self.plans[unit] = {"share_seconds": share, "seconds_per_step": per_step,
                                "steps": plan_steps(share, per_step)}
        return self.plans[unit]["steps"]

    def _probe_generator(self) -> torch.Generator:
        """A timing probe's own generator (the run's is never drawn from by a probe)."""
        return torch.Generator(device=self.settings.device).manual_seed(self.cfg.seed + 1)

    def _stage_done(self, callbacks: CallbackList, name: str, steps: int) -> None:
        self.done += 1
        self.local = None
        callbacks.on_stage_end(name, steps)

    def _search_then_refit(self, callbacks: CallbackList, index: int, unit: str,
                           module: nn.Module, search, fit, n_fit: int, n_all: int) -> None:
        """Stage ``index`` (``unit``) with ``val_refit``: search for its best step, then refit.

        ``search(resume, extra)`` trains ``module`` on the fit rows with early stopping on
        the validation rows and returns its best step s*; then ``module`` goes back to its
        initial weights and ``fit(steps, resume, extra)`` trains it on all ``n_all`` rows
        for :func:`refit_steps` ``(s*)`` steps without stopping. ``extra()`` is saved with
        the stage's state: the phase, the initial weights and (refit) s*, so both phases
        resume. Writes ``{"stage": "refit", "phase": "refit", ...}``.
        """
        local = self.local_for(index)
        init = local["init"] if local is not None else copy.deepcopy(module.state_dict())
        found = ({"best_step": local["best_step"]}
                 if local is not None and local["phase"] == "refit" else {})
        if not found:
            found["best_step"] = search(local, lambda: {"phase": "search", "init": init})
            local = None
            module.load_state_dict(init)
        best, steps = found["best_step"], refit_steps(found["best_step"], n_fit, n_all)
        fit(steps, local, lambda: {"phase": "refit", "init": init, "best_step": best})
        self.refits[unit] = {"best_step": best, "refit_steps": steps, "rows": n_all}
        callbacks.on_eval(with_phase({"stage": "refit", "unit": unit, "best_step": best,
                                      "refit_steps": steps, "rows": n_all}, "refit"))

    def fit(self, train: ImageDataset, test: ImageDataset, *,
            callbacks: Sequence[Callback] = (), resume: dict | None = None,
            cache_dir: str | Path | None = None, progress: bool = False,
            t0: float | None = None) -> FitResult:
        """Train the net on ``train``, fit the read-out, report every layer's MI on ``test``.

        Args:
            train, test: in-memory (or streamed) data sets; ``test`` gives the accuracy
                and the held-out MI. A ``val_fraction`` of ``train`` is held out.
            callbacks: told of every stage start, step, record and stage end, in order
                (a checkpoint callback goes last).
            resume: a state that ``on_step``'s ``state()`` returned (a checkpoint):
                the run continues from it, bit-identically.
            cache_dir: where frozen outputs may go on disk (``frozen_cache``); None: memory.
            progress: a progress bar over the final MI report's layers.
            t0: ``time.perf_counter()`` at the run's start (default: now).

        Returns:
            A :class:`FitResult`.

        Raises:
            LayerIBError: bad data or settings; a non-finite loss or parameter
                (:class:`~layerib.errors.NumericalError`).
        """
        cfg, device = self.cfg, self.settings.device
        self.t0 = time.perf_counter() if t0 is None else t0
        imgs = getattr(train.images, "raw", train.images)  # a Dataset read per batch: not checked
        if isinstance(imgs, torch.Tensor):
            warn_if_constant(imgs, "training set")
        train, val = split_validation(train, cfg.val_fraction, cfg.seed)
        self.g = torch.Generator(device=device).manual_seed(cfg.seed)
        torch.manual_seed(cfg.seed)
        x, y = train.images.to(device), train.labels.to(device)
        x_test, y_test = test.images.to(device), test.labels.to(device)
        val = None if val is None else (val.images.to(device), val.labels.to(device))
        self.net = prepare_net(self.net.to(device), cfg.precision)
        prior = torch.bincount(y, minlength=train.num_classes).float() / len(y)
        cbs = CallbackList(callbacks, self.state)
        if resume is not None:
            self._load(resume, cbs)
        # the frozen outputs: in memory or in files under cache_dir, deleted when the run ends
        # (with val_refit the search and refit keep their outputs in memory)
        cache = FrozenCache(cfg.frozen_cache, cfg.cache_budget_mb, cache_dir)
        flush = cfg.flush_denormal and device.type == "cpu" and torch.set_flush_denormal(True)
        try:
            head, feats, feats_test = self._train(x, y, (x_test, y_test), prior, val, cache, cbs,
                                                  train.num_classes)
            cbs.on_stage_start(StageSpec(REPORT, 0), 0)
            acc = {"test_accuracy": accuracy(head, feats_test[-1], y_test),
                   "train_accuracy": accuracy(head, feats[-1], y)}
            cbs.on_eval({"stage": "final", **acc})
            t_report, c_report = time.perf_counter(), time.process_time()
            layers = layer_mi_report(feats, y, feats_test, y_test, prior, cfg, seed=cfg.seed,
                                     progress=progress, shapes=layer_shapes(self.net, x_test[:2]))
            self.report_time = (time.perf_counter() - t_report, time.process_time() - c_report)
        finally:
            cache.close()
            if flush:
                torch.set_flush_denormal(False)
        return FitResult(self._result(acc, y, y_test, val, train.source, layers), head, self.net)

    def _result(self, acc: dict, y, y_test, val, source: str, layers: list) -> dict:
        """The result dictionary (see :class:`FitResult`)."""
        cfg = self.cfg
        result = {
            **acc,
            # the test accuracy of always answering the most frequent training class
            "majority_accuracy": float((y_test == int(torch.bincount(y).argmax())).double().mean()),
            "method": cfg.method,
            "dataset": cfg.dataset, "train_fraction": cfg.train_fraction, "n_train": len(y),
            "n_val": 0 if val is None else len(val[1]),
            "n_test": len(y_test), "beta": cfg.effective_beta, "beta_auto": self.settings.beta_auto,
            "critic_update": self.settings.critic_update,
            "noise_var": cfg.noise_var,
            "seed": cfg.seed, "wall_seconds": self.elapsed(), "device": str(self.settings.device),
            # the final MI report's share: its wall and process CPU seconds
            "report_seconds": self.report_time[0], "report_cpu_seconds": self.report_time[1],
            "data_source": source, "config": cfg.to_dict(), "layers": layers,
            "units": self.net.unit_descriptions,  # where the layer-wise units fell
            "machine": machine(self.settings.device),  # CPU or GPU model and threads
        }
        if self.refits:
            result["refit"] = self.refits
        if cfg.budget_minutes is not None:  # the plan of every stage
            result["budget"] = {"minutes": cfg.budget_minutes, "stages": self.plans}
            if cfg.method != "ce":
                result["budget"]["split"] = cfg.budget_split
                result["budget"]["last_layer_weight"] = cfg.budget_last_layer_weight
            if self.probed:
                result["budget"]["probed_seconds_per_step"] = self.probed
        return result

    def _train(self, x, y, test, prior, val, cache, cbs, num_classes):
        """Train the stages; return ``(read-out, training features, test features)`` per layer."""
        raise NotImplementedError


class LayerwiseTrainer(_Trainer):
    """Layer-wise training (methods ``ib`` and ``iy``; Elad et al. 2019, Sec. 4, Eq. 2).

    Each unit i of the net is trained on the frozen units' output to maximise
    I(Y; L_i) - beta I(X; L_i + eps) (beta 0 for ``iy``), then frozen; a linear read-out
    (CE) is fitted on the last unit's output. Stages ``layer1 .. layerK, readout``.

    Args:
        net: the net, one unit per layer-wise stage (initialised; trained in place).
        settings: :func:`resolve_settings` of the run's config.

    Example:
        >>> from layerib.models.mlp import mlp
        >>> x, y = torch.randn(96, 6), torch.arange(96) % 3
        >>> data = ImageDataset(x, y, 3, "toy")
        >>> cfg = TrainConfig(method="ib", widths=(8, 3), batch_size=32, min_steps_per_layer=3,
        ...                   epochs_per_layer=1, readout_epochs=1, critic_hidden=8,
        ...                   val_fraction=0, mi_restarts=1, mi_baseline=False,
        ...                   mi_max_steps=20, mi_eval_batch_size=16)
        >>> torch.manual_seed(0) and None
        >>> fitted = LayerwiseTrainer(mlp((6,), (8, 3)), resolve_settings(cfg, 96)).fit(data, data)
        >>> sorted(fitted.result)[:3], len(fitted.result["layers"])
        (['beta', 'beta_auto', 'config'], 2)
    """

    def __init__(self, net: LayeredNet, settings: RunSettings):
        if settings.cfg.method not in ("ib", "iy"):
            raise ConfigError(f"LayerwiseTrainer trains methods ib and iy, not "
                              f"{settings.cfg.method!r}; use EndToEndCE for ce")
        super().__init__(net, settings)

    def _train(self, x, y, test, prior, val, cache, cbs, num_classes):
        cfg = self.cfg
        search = None  # val_refit: the search net's last features on the fit and validation rows
        if cfg.val_refit and val is not None:
            if not isinstance(x, (torch.Tensor, Uint8Images)):
                raise ConfigError("val_refit holds the training rows in memory and does not "
                                  "stream them yet; pass val_refit=False with stream=True "
                                  "(or val_fraction=0)")
            feats, feats_test, feats_val, search = self._layers_refit(x, y, test, prior, val, cbs)
        else:
            feats, feats_test, feats_val = self._layers(x, y, test, prior, val, cache, cbs)
        head = self._readout(feats[-1], y, num_classes, cbs, len(feats),
                             None if val is None else (feats_val[-1], val[1]), search)
        return head, feats, feats_test

    def _recompute(self) -> bool:
        transform = AUGMENTATIONS[self.cfg.augment]
        return self.cfg.frozen_cache == "recompute" or (self.cfg.frozen_cache == "auto"
                                                        and transform is not None)

    def _prefix_rows(self, net: LayeredNet, x, i: int,
                     g: torch.Generator | None = None) -> RecomputedPrefix:
        prefix = net.prefix(i - 1) if i > 1 else nn.Sequential()
        return RecomputedPrefix(x, prefix, AUGMENTATIONS[self.cfg.augment],
                                self.g if g is None else g, self.cfg.precision)

    def _layers(self, x, y, test, prior, val, cache, cbs):
        """Train every unit in turn. Its input is the frozen prefix's output, cached once
        (``cache``: in memory or on disk), or recomputed per batch (``frozen_cache``; on
        augmented inputs with ``augment``); returns every layer's (flattened) features on
        the training, test and validation sets."""
        cfg, net = self.cfg, self.net
        steps, _ = stage_steps(cfg, len(x))
        recompute = self._recompute()
        (h, h_test), y_test = (x, test[0]), test[1]
        h_val = None if val is None else val[0]
        feats, feats_test, feats_val = [], [], []
        if cfg.budget_minutes is not None and cfg.budget_split == "steps" and not self.probed:
            self._probe_layers(x, y, prior, recompute)
        for i, layer in enumerate(net.layers, start=1):
            if self.done < i:  # else trained before an interruption; its weights are loaded
                probe = self._stage_probe(  # budget_minutes: timing
                    i, layer, lambda g, i=i, h=h: h if not recompute else self._prefix_rows(net, x, i, g),
                    y, prior)
                n_steps = self._planned(f"layer{i}", steps, probe)
                spec = StageSpec(f"layer{i}", n_steps, stage_limit(n_steps, cfg.budget_extend,
                                                                   val is not None),
                                 resume=self.local_for(i - 1))
                layer_stage(layer, i, h if not recompute else self._prefix_rows(net, x, i), y,
                            prior, cfg, self.g, spec, cbs, heldout=(h_test, y_test),
                            val=None if val is None else (h_val, val[1]),
                            critic_update=self.settings.critic_update)
                net.freeze(i)  # before the checkpoint: a resumed run re-freezes it below
                self._stage_done(cbs, f"layer{i}", n_steps)
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
            feats = all_features(net, x, cache)
        return feats, feats_test, feats_val

    def _stage_probe(self, i: int, layer: nn.Module, rows, y, prior):
        """The timing probe of layer stage ``i`` (:func:`~layerib.ib.budget.probe_seconds_per_step`):
        its stage on a copy of ``layer`` with the probe's own generator ``g``, on ``rows(g)``."""
        def probe(spec, probe_cbs):
            g = self._probe_generator()
            layer_stage(copy.deepcopy(layer), i, rows(g), y, prior, self.cfg, g, spec, probe_cbs,
                        critic_update=self.settings.critic_update)
        return probe

    def _probe_layers(self, x, y, prior, recompute: bool) -> None:
        """``budget_split="steps"``: time every layer stage before the first
        (:func:`~layerib.ib.budget.probe_seconds_per_step`, each on a copy of its unit with a
        generator of its own) into :attr:`probed`. A later stage's rows are its untrained
        prefix's outputs -- recomputed per batch as in training, or, where training reads a
        cache, computed once on ``2 x batch_size`` rows -- the same shapes and cost per step
        as its training, whatever the weights."""
        cfg, net = self.cfg, self.net
        for i, layer in enumerate(net.layers, start=1):
            def rows(g, i=i):
                rows = self._prefix_rows(net, x, i, g)
                return rows if recompute else x if i == 1 else rows[:min(len(x), 2 * cfg.batch_size)]
            probe = self._stage_probe(i, layer, rows, y, prior)
            self.probed[f"layer{i}"] = probe_seconds_per_step(probe, f"layer{i}",
                                                              self.settings.device)

    def _layers_refit(self, x, y, test, prior, val, cbs):
        """``val_refit``: :meth:`_layers` twice over, stage by stage.

        A copy of the net from the same initial weights (the *search* net) is trained as
        without refit: on the fit rows, each stage early-stopped on the validation rows,
        whose features come from its own frozen layers (which never saw them). That gives
        each stage its best step s*; the net's own stage then trains on all rows, fit and
        validation, for :func:`refit_steps` of it (:meth:`_search_then_refit`). Returns the
        net's features on the fit, test and validation rows, and the search net's last
        ones on the fit and validation rows (the read-out's search).
        """
        cfg, net = self.cfg, self.net
        steps, _ = stage_steps(cfg, len(x))
        recompute = self._recompute()
        n, (x_test, y_test) = len(x), test
        x_all, y_all = cat_rows(x, val[0]), torch.cat([y, val[1]])  # uint8 images stay uint8
        prior_all = torch.bincount(y_all, minlength=len(prior)).float() / len(y_all)
        search_net = copy.deepcopy(net)
        if self.search_state is not None:
            search_net.load_state_dict(self.search_state)
        self.search_net = search_net
        # cached features: hs of the search net, h of the net, on all rows (the first n: fit rows)
        hs, h, h_test = x_all, x_all, x_test
        hs_val, h_val = val[0], val[0]
        feats, feats_test, feats_val = [], [], []
        for i, (layer, twin) in enumerate(zip(net.layers, search_net.layers), start=1):
            if self.done < i:  # else trained before an interruption; its weights are loaded
                def search(resume, extra):
                    rows = hs[:n] if not recompute else self._prefix_rows(search_net, x, i)
                    spec = StageSpec(f"layer{i}", steps, stage_limit(steps, cfg.budget_extend, True),
                                     phase="search", resume=resume, extra=extra)
                    return layer_stage(twin, i, rows, y, prior, cfg, self.g, spec, cbs,
                                       val=(hs_val, val[1]),
                                       critic_update=self.settings.critic_update)[1]

                def fit(n_steps, resume, extra):
                    rows = h if not recompute else self._prefix_rows(net, x_all, i)
                    spec = StageSpec(f"layer{i}", n_steps, phase="refit", resume=resume,
                                     extra=extra)
                    layer_stage(layer, i, rows, y_all, prior_all, cfg, self.g, spec, cbs,
                                heldout=(h_test, y_test),
                                lr_horizon=refit_steps(steps, n, len(y_all)),
                                critic_update=self.settings.critic_update)
                self._search_then_refit(cbs, i - 1, f"layer{i}", layer, search, fit, n, len(y_all))
                search_net.freeze(i)
                net.freeze(i)  # before the checkpoint: a resumed run re-freezes it below
                self._stage_done(cbs, f"layer{i}", steps)
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
            feats = all_features(net, x)
        search_fit = all_features(search_net, x)[-1] if recompute else hs[:n].flatten(1)
        return feats, feats_test, feats_val, (search_fit, hs_val.flatten(1))

    def _readout(self, features, y, num_classes, cbs, stage, val=None, search=None):
        """The read-out, stage number ``stage`` (after the K layer stages, 0 .. K-1). With
        ``val_refit``, ``search`` is the search net's ``(fit, validation)`` features: the
        read-out's best step is searched on them, then it is refitted on ``features`` + ``val``."""
        cfg = self.cfg
        if self.done > stage:  # fitted before an interruption
            head = nn.Linear(features.shape[1], num_classes).to(features.device)
            head.load_state_dict(self.head_state)
            return head.eval()
        steps, _ = steps_for(len(y), cfg.batch_size, cfg.readout_epochs, cfg.min_steps_per_layer)
        opts = CEOptions(cfg.batch_size, cfg.lr_readout, val_checks=cfg.val_checks,
                         patience=cfg.patience)
        head = nn.Linear(features.shape[1], num_classes).to(features.device)
        if search is not None:
            f_all, y_all = torch.cat([features, val[0]]), torch.cat([y, val[1]])

            def find(resume, extra):
                spec = StageSpec("readout", steps, stage_limit(steps, cfg.budget_extend, True),
                                 phase="search", resume=resume, extra=extra)
                best = ce_stage(head.train(), search[0], y, self.g, opts, spec, cbs,
                                val=(search[1], val[1]), what="read-out")
                head.eval()
                return best

            def fit(n_steps, resume, extra):
                spec = StageSpec("readout", n_steps, phase="refit", resume=resume, extra=extra)
                ce_stage(head.train(), f_all, y_all, self.g, opts, spec, cbs, what="read-out")
                head.eval()
            self._search_then_refit(cbs, stage, "readout", head, find, fit, len(y), len(y_all))
        else:
            def probe(spec, probe_cbs):  # budget_minutes: a fresh read-out's steps, timed
                twin = nn.Linear(features.shape[1], num_classes).to(features.device)
                ce_stage(twin.train(), features, y, self._probe_generator(), opts, spec,
                         probe_cbs, what="read-out")
            steps = self._planned("readout", steps, probe)
            spec = StageSpec("readout", steps, stage_limit(steps, cfg.budget_extend, val is not None),
                             resume=self.local_for(stage))
            ce_stage(head.train(), features, y, self.g, opts, spec, cbs, val=val, what="read-out")
            head.eval()
        self.head_state = head.state_dict()
        self._stage_done(cbs, "readout", steps)
        return head


class EndToEndCE(_Trainer):
    """End-to-end cross-entropy on the same net (method ``ce``; Elad et al. 2019, Table 1).

    The net's last layer is the CE head (its logits are the output); one stage ``ce``.
    With ``infoplane_evals``, an :class:`~layerib.ib.infoplane.InfoPlaneRecorder` writes
    every layer's (I(X; L_i + eps), I(Y; L_i)) during training (``stage: "infoplane"``
    records, following the refit with ``val_refit``).

    Args:
        net: the net (initialised; trained in place).
        settings: :func:`resolve_settings` of the run's config.

    Example:
        >>> from layerib.models.mlp import mlp
        >>> x, y = torch.randn(96, 6), torch.arange(96) % 3
        >>> data = ImageDataset(x, y, 3, "toy")
        >>> cfg = TrainConfig(method="ce", widths=(8, 3), batch_size=32, min_steps_per_layer=2,
        ...                   ce_epochs=1, critic_hidden=8, val_fraction=0, infoplane_evals=0,
        ...                   mi_restarts=1, mi_baseline=False, mi_max_steps=20,
        ...                   mi_eval_batch_size=16)
        >>> torch.manual_seed(0) and None
        >>> fitted = EndToEndCE(mlp((6,), (8, 3)), resolve_settings(cfg, 96)).fit(data, data)
        >>> type(fitted.readout).__name__, 0 <= fitted.result["test_accuracy"] <= 1
        ('Identity', True)
    """

    def __init__(self, net: LayeredNet, settings: RunSettings):
        if settings.cfg.method != "ce":
            raise ConfigError(f"EndToEndCE trains method ce, not {settings.cfg.method!r}; "
                              "use LayerwiseTrainer for ib and iy")
        super().__init__(net, settings)

    def _train(self, x, y, test, prior, val, cache, cbs, num_classes):
        head = self._ce(x, y, test, prior, val, cbs)
        return head, all_features(self.net, x, cache), all_features(self.net, test[0], cache)

    def _recorder(self, x, y, test, prior, steps: int, per_epoch: int, local, write):
        """The information-plane recorder of a CE run of ``steps`` steps on ``(x, y)`` (or None)."""
        if not self.cfg.infoplane_evals:
            return None
        recorder = InfoPlaneRecorder.for_net(self.net, (x, y), test, prior, write, self.cfg,
                                             steps=eval_steps(steps, self.cfg.infoplane_evals),
                                             steps_per_epoch=per_epoch)
        if local is None:
            recorder(0)
        else:
            recorder.load_state_dict(local["recorder"])
        return recorder

    def _ce(self, x, y, test, prior, val, cbs):
        cfg, net = self.cfg, self.net
        if self.done >= 1:  # trained before an interruption; the net's weights are loaded
            net.eval()
            return nn.Identity()
        steps, per_epoch = steps_for(len(y), cfg.batch_size, cfg.ce_epochs,
                                     cfg.min_steps_per_layer * len(net))
        opts = CEOptions(cfg.batch_size, cfg.lr_layer, cfg.weight_decay, cfg.grad_clip,
                         AUGMENTATIONS[cfg.augment], cfg.lr_schedule, cfg.precision,
                         cfg.val_checks, cfg.patience, cfg.ce_optimizer, cfg.label_smoothing)

        def run(spec: StageSpec, xs, ys, per, **kw) -> int | None:
            """CE over ``(xs, ys)`` with the recorder (a fit or refit) as a stage hook."""
            write = lambda rec: cbs.on_eval(with_phase(rec, spec.phase))  # noqa: E731
            recorder = (None if spec.phase == "search" else
                        self._recorder(xs, ys, test, prior, spec.steps, per, spec.resume, write))
            stage_cbs = cbs
            if recorder is not None:
                saved = spec.extra
                spec.extra = lambda: {**(saved() if saved else {}),
                                      "recorder": recorder.state_dict()}
                stage_cbs = cbs.with_first(Hooks(on_step=recorder))
            net.train()
            best = ce_stage(net, xs, ys, self.g, opts, spec, stage_cbs, what="cross-entropy",
                            **kw)
            net.eval()
            return best

        if cfg.val_refit and val is not None:  # the recorder follows the refit (the final net)
            x_all, y_all = cat_rows(x, val[0]), torch.cat([y, val[1]])

            def search(resume, extra):
                return run(StageSpec("ce", steps, stage_limit(steps, cfg.budget_extend, True),
                                     phase="search", resume=resume, extra=extra),
                           x, y, per_epoch, val=val)

            def fit(n_steps, resume, extra):
                per = steps_for(len(y_all), cfg.batch_size, 1, 0)[1]
                run(StageSpec("ce", n_steps, phase="refit", resume=resume, extra=extra),
                    x_all, y_all, per, lr_horizon=refit_steps(steps, len(y), len(y_all)))
            self._search_then_refit(cbs, 0, "ce", net, search, fit, len(y), len(y_all))
        else:
            def probe(spec, probe_cbs):  # budget_minutes: CE steps on a copy of the net, timed
                ce_stage(copy.deepcopy(net).train(), x, y, self._probe_generator(), opts, spec,
                         probe_cbs, what="cross-entropy")
            steps = self._planned("ce", steps, probe)
            run(StageSpec("ce", steps, stage_limit(steps, cfg.budget_extend, val is not None),
                          resume=self.local_for(0)), x, y, per_epoch, val=val)
        self._stage_done(cbs, "ce", steps)
        return nn.Identity()  # the net's last layer is the CE head: logits are its output


def make_trainer(net: LayeredNet, settings: RunSettings) -> LayerwiseTrainer | EndToEndCE:
    """The trainer of ``settings.cfg.method``: :class:`EndToEndCE` for ``ce``, else
    :class:`LayerwiseTrainer`.

    Example:
        >>> from layerib.models.mlp import mlp
        >>> s = resolve_settings(TrainConfig(method="ce"), 100)
        >>> type(make_trainer(mlp((4,), (3, 2)), s)).__name__
        'EndToEndCE'
    """
    return (EndToEndCE if settings.cfg.method == "ce" else LayerwiseTrainer)(net, settings)
