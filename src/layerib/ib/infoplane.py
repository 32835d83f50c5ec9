"""Information-plane recording during training: every layer's (I(X; L_i + eps), I(Y; L_i)).

:class:`InfoPlaneRecorder` measures, for every layer L_i of a net, the pair
(I(X; L_i + eps), I(Y; L_i)) at given training steps, with the estimators the
layer-wise trainer reports (:mod:`layerib.ib.objective`), and writes one metrics
record per layer and evaluation. The layer-wise trainer writes the same pair for the
layer being trained (``stage: "layer"`` records); the recorder covers end-to-end CE
training (``layerib train --method ce``) and a user's own training loop
(:meth:`InfoPlaneRecorder.for_model`, layers named as in ``model.named_modules()``).

* I(X; L_i + eps): the InfoNCE form of the AA-MINE Gaussian critic (its z-only terms
  cancel, so it needs no training; :func:`~layerib.ib.objective.aa_estimator`).
  Held-out average over test batches of size B; capped at ln B.
* I(Y; L_i): the label critic (:func:`~layerib.ib.objective.label_estimator`), one per
  layer, trained for ``infoplane_critic_steps`` steps on training-set features before
  every evaluation and kept between evaluations (it follows the moving features, as
  the layer-wise stage critic does); held-out average.

Records (``stage: "infoplane"``): ``layer``, ``step``, ``epoch``, ``test_i_x_nats``,
``test_i_x_stderr``, ``test_i_y_nats``, ``test_i_y_stderr``, ``test_output_rms``,
``noise_var``, ``eval_batch_size``, ``critic_steps`` (and ``name`` for named layers).
The recorder draws its batches, noise and critic initialisation from its own seeded
generators, so the training it watches is unchanged by watching.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Callable, Sequence

import torch

from layerib.config import TrainConfig, config_from_dict
from layerib.ib.layerwise import output_rms
from layerib.ib.objective import aa_estimator, label_estimator, trainer_settings
from layerib.mi.channel import GaussianChannel
from layerib.mi.protocol import heldout_estimate
from layerib.mi.rng import keeps_global_rng
from layerib.models.taps import LayerTaps
from layerib.utils.memory import outputs_in_chunks
from layerib.utils.optim import adam

Features = Callable[[torch.Tensor], list[torch.Tensor]]


def eval_steps(total_steps: int, n_evals: int) -> list[int]:
    """Steps at which to evaluate: 0 and ``n_evals`` evenly spaced steps up to ``total_steps``.

    ``[round(k * total / n) for k in 0..n]`` without repeats, so
    ``min(n_evals, total_steps) + 1`` steps; ``[]`` when ``n_evals`` is 0.
    """
    if n_evals <= 0:
        return []
    return sorted({round(k * total_steps / n_evals) for k in range(n_evals + 1)})


class _JsonLines:
    """A fresh ``metrics.jsonl``: one JSON object per line, non-finite floats as null."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.write_text("")

    def write(self, record: dict) -> None:
        clean = {k: None if isinstance(v, float) and not math.isfinite(v) else v
                 for k, v in record.items()}
        with open(self.path, "a") as f:
            f.write(json.dumps(clean) + "\n")


def _eval_mode(module: torch.nn.Module) -> Callable[[bool], None]:
    """``prepare(True)`` puts ``module`` in eval mode, ``prepare(False)`` restores its mode."""
    mode: list[bool] = []

    def prepare(start: bool) -> None:
        if start:
            mode[:] = [module.training]
            module.eval()
        else:
            module.train(mode[0])
    return prepare


class InfoPlaneRecorder:
    """Records every layer's (I(X; L_i + eps), I(Y; L_i)) when asked (:meth:`record`).

    As an ``on_step`` callback (``recorder(step)``) it evaluates when ``step`` is in ``steps``.

    Args:
        features: ``x (B, ...) -> [L_1 (B, d_1), ...]``, every layer's flattened output
            (computed under ``no_grad``; the caller sets the net's mode).
        train: ``(x (N, ...), y (N,) int64)`` training data (label-critic training).
        test: ``(x_test, y_test)`` held-out data (the reported averages).
        write: called with each record (e.g. ``MetricsLog.write``).
        settings: :class:`~layerib.config.TrainConfig` whose ``noise_var``, ``batch_size``,
            ``mi_eval_batch_size``, ``infoplane_critic_steps``, ``critic_hidden``,
            ``lr_critic``, ``ema_rate``, ``y_bound``, ``y_critic`` and ``seed`` it uses.
        steps: steps at which ``recorder(step)`` evaluates (see :func:`eval_steps`).
        steps_per_epoch: to report ``epoch`` beside ``step``.
        prior: ``(num_classes,)`` class frequencies (default: those of ``train``'s labels).
        names: layer names for the records (default: 1-based indices only).
        prepare: called around feature passes as ``prepare(True)`` / ``prepare(False)``
            (e.g. to put a net in eval mode and back).
    """

    def __init__(self, features: Features, train: tuple[torch.Tensor, torch.Tensor],
                 test: tuple[torch.Tensor, torch.Tensor], write: Callable[[dict], None],
                 settings: TrainConfig = TrainConfig(), *, steps: Sequence[int] = (),
                 steps_per_epoch: int = 1, prior: torch.Tensor | None = None,
                 names: Sequence[str] | None = None,
                 prepare: Callable[[bool], None] | None = None):
        (self.x, self.y), (self.x_test, self.y_test) = train, test
        self.features, self.write, self.steps, self.s = features, write, set(steps), settings
        self.names, self.prepare = list(names) if names else None, prepare
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = min(settings.batch_size, len(self.x))
        self.eval_batch_size = min(settings.mi_eval_batch_size, len(self.x_test) // 2)
        self.g = torch.Generator(device=self.x.device).manual_seed(settings.seed)
        if prior is None:
            prior = torch.bincount(self.y, minlength=int(self.y.max()) + 1).float() / len(self.y)
        dims = [f.shape[1] for f in self._features(self.x[:2])]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(settings.seed)
            s = settings
            est = trainer_settings(s.critic_hidden, s.ema_rate)  # label critics read L as it is
            self.i_y = [label_estimator(d, prior.to(self.x.device), est, s.y_bound,
                                        s.y_critic).to(self.x.device) for d in dims]
            self.i_x = [aa_estimator(d, GaussianChannel(s.noise_var), est, "gaussian", "all",
                                     "infonce").to(self.x.device) for d in dims]
        # one optimiser over the independent critics: Adam is per-parameter, so this
        # equals one optimiser per critic at a third of the per-step overhead
        self.opt = adam([p for e in self.i_y for p in e.parameters()], lr=settings.lr_critic)
        self.n_records = 0

    @classmethod
    def for_net(cls, net, train, test, prior, write, settings: TrainConfig, **kw) -> "InfoPlaneRecorder":
        """A recorder of every layer of a :class:`~layerib.models.layered.LayeredNet`."""
        def features(x: torch.Tensor) -> list[torch.Tensor]:
            return [f.flatten(1) for f in net.features(x)]

        return cls(features, train, test, write, settings, prior=prior, prepare=_eval_mode(net), **kw)

    @classmethod
    def for_model(cls, model: torch.nn.Module, layers: Sequence[str], train, test, *,
                  out: str | Path | None = None, write: Callable[[dict], None] | None = None,
                  **settings) -> "InfoPlaneRecorder":
        """A recorder for any ``nn.Module`` whose layers are named as in ``model.named_modules()``.

        Call :meth:`record` from your own training loop. With ``out`` it writes
        ``out/config.json`` now and appends ``stage: "infoplane"`` records to a fresh
        ``out/metrics.jsonl``, which ``layerib report out`` plots (with ``write`` too,
        ``write`` gets the records instead).

        Args:
            train, test: ``(x, y)`` tensors (labels int64) on the model's device.
            settings: :class:`~layerib.config.TrainConfig` keys (``noise_var``, ...).

        Raises:
            ConfigError: an unknown layer name or setting.
        """
        cfg = config_from_dict(dict(settings))
        taps = LayerTaps(model, layers)
        if out is not None:
            folder = Path(out)
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "config.json").write_text(json.dumps(
                {"config": {**cfg.to_dict(), "method": "own training loop"},
                 "recorder": {"layers": list(layers)}}, indent=2) + "\n")
            lines = _JsonLines(folder / "metrics.jsonl")
            write = lines.write if write is None else write
        elif write is None:
            raise TypeError("for_model needs out= (a folder) or write= (a callable)")
        return cls(taps, train, test, write, cfg, names=layers, prepare=_eval_mode(model))

    def state_dict(self) -> dict:
        """The recorder's state (critics, optimiser, generator), for checkpoints."""
        return {"i_y": [e.state_dict() for e in self.i_y], "i_x": [e.state_dict() for e in self.i_x],
                "opt": self.opt.state_dict(), "g": self.g.get_state(), "n_records": self.n_records}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        for e, sd in zip(self.i_y + self.i_x, state["i_y"] + state["i_x"]):
            e.load_state_dict(sd)
        self.opt.load_state_dict(state["opt"])
        self.g.set_state(state["g"])
        self.n_records = state["n_records"]

    def __call__(self, step: int) -> None:
        if step in self.steps:
            self.record(step)

    def _features(self, x: torch.Tensor, chunk: int | None = None) -> list[torch.Tensor]:
        """Every layer's flattened output on ``x`` (N, ...) in eval mode,
        :func:`~layerib.utils.memory.outputs_in_chunks` of ``chunk`` rows (default 256)."""
        if self.prepare:
            self.prepare(True)
        try:
            with torch.no_grad():
                return outputs_in_chunks(self.features, x, chunk)
        finally:
            if self.prepare:
                self.prepare(False)

    def _train_label_critics(self) -> None:
        for _ in range(self.s.infoplane_critic_steps):
            idx = torch.randint(len(self.x), (self.batch_size,), generator=self.g,
                                device=self.x.device)
            feats = self._features(self.x[idx])
            loss = -sum(est.objective(f, self.y[idx])[0] for est, f in zip(self.i_y, feats))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    @keeps_global_rng
    def record(self, step: int) -> list[dict]:
        """Evaluate every layer now; write and return one record per layer (nats)."""
        self._train_label_critics()
        feats = self._features(self.x_test)
        recs, bs = [], self.eval_batch_size
        for i, (est_y, est_x) in enumerate(zip(self.i_y, self.i_x), start=1):
            f = feats[i - 1]
            feats[i - 1] = None  # freed once measured
            seed = self.s.seed + 1000 * step + i
            ry = heldout_estimate(est_y, f, self.y_test, bs, seed=seed)
            rx = heldout_estimate(est_x, f, f, bs, noise_var=self.s.noise_var, seed=seed)
            rec = {"stage": "infoplane", "layer": i, "step": step,
                   "epoch": step / max(self.steps_per_epoch, 1),
                   "test_i_x_nats": rx.value, "test_i_x_stderr": rx.stderr,
                   "test_i_y_nats": ry.value, "test_i_y_stderr": ry.stderr,
                   "test_output_rms": output_rms(f), "noise_var": self.s.noise_var,
                   "eval_batch_size": bs, "ln_eval_batch": rx.ln_batch,
                   "critic_steps": self.s.infoplane_critic_steps}
            if self.names:
                rec["name"] = self.names[i - 1]
            self.write(rec)
            recs.append(rec)
        self.n_records += len(recs)
        return recs
