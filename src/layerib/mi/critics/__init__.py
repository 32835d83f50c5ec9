"""Critics ``T(u, v) -> R``, one module per family, and their registry :data:`CRITICS`.

Every critic offers ``scores(u, v)`` on aligned pairs, shape ``(batch,)``, and
``pair_scores(u, v)`` on all pairs, shape ``(batch_u, batch_v)`` with entry
``[k, j] = T(u_k, v_j)``; label critics also ``class_scores(l)``, ``(batch, num_classes)``.

Families:

* :mod:`~layerib.mi.critics.mlp`: :class:`ConcatCritic` (MINE's), :class:`SeparableCritic`.
* :mod:`~layerib.mi.critics.labels`: :class:`LabelCritic`, :class:`LabelHeadsCritic`, the
  views they read (:class:`MapPool`, :func:`normalise_batch`).
* :mod:`~layerib.mi.critics.noise`: :class:`GaussianNoiseCritic`, :class:`MixtureNoiseCritic`
  (both hold the :class:`~layerib.mi.channel.GaussianChannel`).
* :mod:`~layerib.mi.critics.gaussian_ratio`: :class:`GaussianRatioCritic` (closed form).

:data:`CRITICS` maps a name to a :class:`CriticSpec`; :func:`layerib.mi.factory.make_estimator`
builds any of them under any bound. A new critic is a module here and one ``CRITICS`` line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from layerib.mi.channel import GaussianChannel
from layerib.mi.critics.convhead import ConvHeadCritic, view_map_shape
from layerib.mi.critics.gaussian_ratio import GaussianRatioCritic
from layerib.mi.critics.labels import (INPUT_NORMS, LabelCritic, LabelHeadsCritic, MapPool,
                                       label_view, normalise_batch)
from layerib.mi.critics.mlp import ConcatCritic, SeparableCritic
from layerib.mi.critics.noise import GaussianNoiseCritic, MixtureNoiseCritic
from layerib.mi.settings import EstimatorSettings

__all__ = ["CRITICS", "CriticSpec", "CriticInputs", "ConcatCritic", "SeparableCritic",
           "LabelCritic", "LabelHeadsCritic", "MapPool", "label_view", "normalise_batch",
           "INPUT_NORMS", "TRAINER_Y_CRITICS", "TRAINER_X_CRITICS", "GaussianNoiseCritic", "MixtureNoiseCritic",
           "GaussianRatioCritic", "GaussianChannel"]


@dataclass(frozen=True)
class CriticInputs:
    """What a critic is built from (:attr:`CriticSpec.build` reads the fields it needs).

    Attributes:
        dim_u: size of u (flattened); dim_v: size of v, or the number of classes (labels).
        settings: widths, centres and flags (:class:`~layerib.mi.settings.EstimatorSettings`).
        bound: the bound's name (the mixture critic adds NWJ's constant 1 under ``"nwj"``).
        channel: the Gaussian channel of a noise critic (None: no known noise).
        rows: training rows ``(u, v)`` a critic is fitted on or centred at (gauss, mixture).
        generator: draws the mixture critic's centres.
        view: what a label critic reads of L (:class:`MapPool` or None).
        options: critic-specific keyword arguments (the gauss critic's ``shrink``, ``sparse``).
    """

    dim_u: int
    dim_v: int
    settings: EstimatorSettings = EstimatorSettings()
    bound: str = "dv"
    channel: GaussianChannel | None = None
    rows: tuple[Any, Any] | None = None
    generator: torch.Generator | None = None
    view: nn.Module | None = None
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class CriticSpec:
    """A critic family in the registry.

    Attributes:
        build: ``CriticInputs -> nn.Module``.
        kinds: the data it fits: ``"continuous"`` pairs, ``"labels"`` (integer y, the class
            marginal taken exactly), ``"noise"`` (``I(L; L + eps)`` with a known channel).
        infonce_over: how InfoNCE normalises its matrix: ``"v"`` (each u over the batch's v,
            the usual form) or ``"u"`` (each v over the batch's u: cancels a z-only term).
        pairwise: all pairs cost ``B^2 * hidden``: under DV/NWJ it is trained on one shuffle
            per batch unless ``settings.concat_marginal="all"`` (MINE's marginal).
        fitted: a closed-form critic (no gradient steps).
        doc: one line for help texts.
    """

    build: Callable[[CriticInputs], nn.Module]
    kinds: frozenset
    infonce_over: str = "v"
    pairwise: bool = False
    fitted: bool = False
    doc: str = ""


def _mixture(c: CriticInputs) -> MixtureNoiseCritic:
    # NWJ's optimal critic is 1 + the log-ratio; the mixture family has no free constant
    return MixtureNoiseCritic.from_features(c.rows[1], c.channel, c.settings.n_centers, c.generator,
                                            offset=1.0 if c.bound == "nwj" else 0.0)


def _gauss(quadratic: bool) -> Callable[[CriticInputs], GaussianRatioCritic]:
    def build(c: CriticInputs) -> GaussianRatioCritic:
        return GaussianRatioCritic(c.rows[0], c.rows[1], quadratic=quadratic, **c.options)
    return build


_PAIRS, _NOISE, _LABELS = frozenset({"continuous", "noise"}), frozenset({"noise"}), frozenset({"labels"})

#: Every critic by name (estimate_mi's candidates, ``layerib estimate --critics``, training's
#: ``y_critic`` / ``x_critic`` through :data:`TRAINER_Y_CRITICS` / :data:`TRAINER_X_CRITICS`).
CRITICS: dict[str, CriticSpec] = {
    "concat": CriticSpec(lambda c: ConcatCritic(c.dim_u, c.dim_v, c.settings.hidden), _PAIRS,
                         pairwise=True, doc="MLP on (u, v) (MINE's critic)"),
    "separable": CriticSpec(lambda c: SeparableCritic(c.dim_u, c.dim_v, c.settings.hidden,
                                                      c.settings.embed), _PAIRS,
                            doc="g(u) . h(v)"),
    "separable-e": CriticSpec(lambda c: SeparableCritic(c.dim_u, c.dim_v, c.settings.hidden,
                                                        c.settings.embed, energy=True),
                              frozenset({"continuous"}), doc="g(u) . h(v) with the row energy"),
    "gauss": CriticSpec(_gauss(False), frozenset({"continuous"}), fitted=True,
                        doc="closed-form Gaussian log-ratio"),
    "gauss2": CriticSpec(_gauss(True), frozenset({"continuous"}), fitted=True,
                         doc="closed-form Gaussian log-ratio on quadratic/energy features"),
    "gaussian": CriticSpec(lambda c: GaussianNoiseCritic(c.dim_v, c.channel, c.settings.hidden,
                                                         standardize_f=c.settings.standardize_f),
                           _NOISE, infonce_over="u", doc="channel term + quadratic + MLP q(z)"),
    "mixture": CriticSpec(_mixture, _NOISE, infonce_over="u",
                          doc="channel term + Gaussian-mixture q(z) (AA-MINE)"),
    "channel": CriticSpec(lambda c: c.channel, _NOISE, infonce_over="u",
                          doc="the channel's exact term alone (no parameters)"),
    "label": CriticSpec(lambda c: LabelCritic(c.dim_u, c.dim_v, c.settings.hidden,
                                              input_norm=c.settings.input_norm, view=c.view),
                        _LABELS, doc="MLP on (l, onehot y) (the paper's)"),
    "heads": CriticSpec(lambda c: LabelHeadsCritic(c.dim_u, c.dim_v, c.settings.hidden,
                                                   input_norm=c.settings.input_norm, view=c.view),
                        _LABELS, doc="MLP(l)_y, one output per class"),
    "convhead": CriticSpec(lambda c: ConvHeadCritic(view_map_shape(c.dim_u, c.view), c.dim_v,
                                                    c.settings.hidden, c.settings.input_norm,
                                                    c.view),
                           _LABELS, doc="conv 3x3-BN-ReLU-avgpool-linear head on the map"),
}

#: ``TrainConfig.y_critic`` -> CRITICS name: the trainer's label critics.
TRAINER_Y_CRITICS = {"concat": "label", "heads": "heads", "convhead": "convhead"}
#: ``TrainConfig.x_critic`` -> CRITICS name: the trainer's AA-MINE critics.
TRAINER_X_CRITICS = {"gaussian": "gaussian", "concat": "concat"}
