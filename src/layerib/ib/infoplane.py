"""Information-plane recording during end-to-end training.

:class:`InfoPlaneRecorder` measures, for every layer L_i of a net, the pair
(I(X; L_i + eps), I(Y; L_i)) at regular training steps, with the estimators the
layer-wise trainer reports (:mod:`layerib.ib.objective`), and writes one
metrics record per layer and evaluation. Layer-wise training already writes
the same pair for the layer being trained (``stage: "layer"`` records of
:func:`layerib.ib.layerwise.train_layer`); this covers end-to-end CE training.

* I(X; L_i + eps): the InfoNCE form of the AA-MINE Gaussian-noise critic
  (:func:`~layerib.ib.objective.aa_estimator` with ``bound="infonce"``); its
  learnt z-only terms cancel, so it needs no training. Held-out average over
  test batches of size B; capped at ln B.
* I(Y; L_i): the label critic (:func:`~layerib.ib.objective.label_estimator`),
  one per layer, trained for ``critic_steps`` steps on training-set features
  before every evaluation and kept between evaluations (it follows the
  moving features, as the layer-wise stage critic does); held-out average.

Records (``stage: "infoplane"``): ``layer``, ``step``, ``epoch``,
``test_i_x_nats``, ``test_i_x_stderr``, ``test_i_y_nats``, ``test_i_y_stderr``,
``noise_var``, ``eval_batch_size``, ``critic_steps``. The recorder draws its
batches, noise and critic initialisation from its own seeded generators, so
the training it watches is unchanged by watching.
"""

from __future__ import annotations

from typing import Callable

import torch

from layerib.utils.optim import adam
from layerib.ib.objective import aa_estimator, label_estimator
from layerib.mi.protocol import heldout_estimate


def eval_steps(total_steps: int, n_evals: int) -> list[int]:
    """Steps at which to evaluate: 0 and ``n_evals`` evenly spaced steps up to ``total_steps``.

    ``[round(k * total / n) for k in 0..n]`` without repeats, so
    ``min(n_evals, total_steps) + 1`` steps; ``[]`` when ``n_evals`` is 0.
    """
    if n_evals <= 0:
        return []
    return sorted({round(k * total_steps / n_evals) for k in range(n_evals + 1)})


class InfoPlaneRecorder:
    """Records every layer's (I(X; L_i + eps), I(Y; L_i)) at given steps.

    Call it with the number of steps done (it is an ``on_step`` callback);
    it evaluates when that number is in ``steps``.

    Args:
        net: a :class:`~layerib.models.layered.LayeredNet` (``features(x)``).
        x, y: training inputs ``(N, ...)`` and int64 labels ``(N,)`` (label-critic training).
        x_test, y_test: held-out inputs and labels (the reported averages).
        prior: ``(num_classes,)`` training class frequencies.
        write: called with each record (e.g. ``MetricsLog.write``).
        steps: the steps to evaluate at (see :func:`eval_steps`).
        noise_var: sigma^2 of the measuring noise.
        steps_per_epoch: to report ``epoch`` beside ``step``.
        batch_size: label-critic training batch size; eval_batch_size: held-out B.
        critic_steps: label-critic steps before each evaluation.
        hidden, lr, ema_rate, y_bound, y_critic: label-critic settings (as in :class:`TrainConfig`).
        seed: seeds the recorder's batches, noise and critic initialisation.
    """

    def __init__(self, net, x: torch.Tensor, y: torch.Tensor, x_test: torch.Tensor,
                 y_test: torch.Tensor, prior: torch.Tensor, write: Callable[[dict], None], *,
                 steps: list[int], noise_var: float, steps_per_epoch: int, batch_size: int,
                 eval_batch_size: int, critic_steps: int, hidden: int, lr: float,
                 ema_rate: float, y_bound: str, seed: int = 0,
                 y_critic: str = "concat"):
        self.net, self.x, self.y, self.x_test, self.y_test = net, x, y, x_test, y_test
        self.write, self.steps = write, set(steps)
        self.noise_var, self.steps_per_epoch = noise_var, steps_per_epoch
        self.batch_size = min(batch_size, len(x))
        self.eval_batch_size = min(eval_batch_size, len(x_test) // 2)
        self.critic_steps, self.seed = critic_steps, seed
        self.g = torch.Generator(device=x.device).manual_seed(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            dims = net.feature_dims
            self.i_y = [label_estimator(d, prior, hidden, ema_rate, y_bound, y_critic).to(x.device) for d in dims]
            self.i_x = [aa_estimator(d, noise_var, hidden, ema_rate, "gaussian", "all",
                                     "infonce").to(x.device) for d in dims]
        # one optimiser over the independent critics: Adam is per-parameter, so this
        # equals one optimiser per critic at a third of the per-step overhead
        self.opt = adam([p for e in self.i_y for p in e.parameters()], lr=lr)
        self.n_records = 0

    def state_dict(self) -> dict:
        """The recorder's state (critics, optimiser, generator), for checkpoints."""
        return {"i_y": [e.state_dict() for e in self.i_y], "i_x": [e.state_dict() for e in self.i_x],
                "opt": self.opt.state_dict(),
                "g": self.g.get_state(), "n_records": self.n_records}

    def load_state_dict(self, state: dict) -> None:
        """Restore what :meth:`state_dict` returned."""
        for e, sd in zip(self.i_y + self.i_x, state["i_y"] + state["i_x"]):
            e.load_state_dict(sd)  # i_x: the Gaussian critic's start point, set from the first batch
        self.opt.load_state_dict(state["opt"])
        self.g.set_state(state["g"])
        self.n_records = state["n_records"]

    def __call__(self, step: int) -> None:
        if step in self.steps:
            self.record(step)

    def _features(self, x: torch.Tensor, chunk: int = 4096) -> list[torch.Tensor]:
        parts = [self.net.features(x[s:s + chunk]) for s in range(0, len(x), chunk)]
        return [torch.cat([p[k] for p in parts]).flatten(1) for k in range(len(self.net))]

    def _train_label_critics(self) -> None:
        for _ in range(self.critic_steps):
            idx = torch.randint(len(self.x), (self.batch_size,), generator=self.g,
                                device=self.x.device)
            with torch.no_grad():
                feats = self._features(self.x[idx])
            loss = -sum(est.objective(f, self.y[idx])[0] for est, f in zip(self.i_y, feats))
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()

    def record(self, step: int) -> list[dict]:
        """Evaluate every layer now; write and return one record per layer."""
        was_training = self.net.training
        self.net.eval()
        self._train_label_critics()
        with torch.no_grad():
            feats = self._features(self.x_test)
        self.net.train(was_training)
        recs, bs = [], self.eval_batch_size
        for i, (f, est_y, est_x) in enumerate(zip(feats, self.i_y, self.i_x), start=1):
            seed = self.seed + 1000 * step + i
            ry = heldout_estimate(est_y, f, self.y_test, bs, seed=seed)
            rx = heldout_estimate(est_x, f, f, bs, noise_var=self.noise_var, seed=seed)
            rec = {"stage": "infoplane", "layer": i, "step": step,
                   "epoch": step / max(self.steps_per_epoch, 1),
                   "test_i_x_nats": rx.value, "test_i_x_stderr": rx.stderr,
                   "test_i_y_nats": ry.value, "test_i_y_stderr": ry.stderr,
                   "noise_var": self.noise_var, "eval_batch_size": bs,
                   "critic_steps": self.critic_steps}
            self.write(rec)
            recs.append(rec)
        self.n_records += len(recs)
        return recs
