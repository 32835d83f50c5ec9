"""The one estimator factory: :func:`make_estimator` (a critic from :data:`CRITICS` under a
bound from :data:`BOUNDS`).

Replaces the three factories that built estimators before (``estimate_mi``'s, the recipes'
and the trainer's): every MI estimate in layerib, from training's per-layer terms to the
final report, ``layerib estimate`` and Fig. 1, builds its estimator here. Which marginal
pairs it uses follows from the critic and the bound alone:

* label critics (``kinds`` holds ``"labels"``): the class marginal exactly when the bound has
  an exact-marginal variant (``dv``, ``infonce``), else all pairs of the batch (``nwj``);
* bounds on the all-pairs matrix (InfoNCE): all pairs, normalised as the critic asks
  (``CriticSpec.infonce_over``);
* other bounds (DV, NWJ): one shuffle per batch for the pairwise MLP critic (MINE; unless
  ``settings.concat_marginal="all"`` or ``marginal=`` says otherwise), all off-diagonal
  pairs for the rest, with MINE's moving-average gradient (not for closed-form critics).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from layerib.errors import ConfigError
from layerib.mi.bounds import get_bound
from layerib.mi.channel import GaussianChannel
from layerib.mi.critics import CRITICS, CriticInputs, CriticSpec
from layerib.mi.estimators import MIEstimator
from layerib.mi.settings import EstimatorSettings


def get_critic(name: str) -> CriticSpec:
    """The :class:`~layerib.mi.critics.CriticSpec` registered as ``name``.

    Raises:
        ConfigError: unknown name (the message lists :data:`~layerib.mi.critics.CRITICS`).
    """
    if name not in CRITICS:
        raise ConfigError(f"unknown critic {name!r}; choose from {', '.join(CRITICS)}")
    return CRITICS[name]


def make_estimator(critic: str, bound: str, dims: tuple[int, int], *,
                   channel: GaussianChannel | None = None,
                   settings: EstimatorSettings = EstimatorSettings(),
                   prior: torch.Tensor | None = None, rows: tuple[Any, Any] | None = None,
                   generator: torch.Generator | None = None, view: nn.Module | None = None,
                   marginal: str | None = None, options: dict | None = None) -> MIEstimator:
    """A fresh :class:`~layerib.mi.estimators.MIEstimator` of I(U; V) in nats.

    Args:
        critic: a name in :data:`~layerib.mi.critics.CRITICS`.
        bound: a name in :data:`~layerib.mi.bounds.BOUNDS` (``dv``, ``nwj``, ``infonce``, ...).
        dims: ``(dim_u, dim_v)``: sizes of u and v ``(batch, dim)``; for label critics
            ``dim_v`` is the number of classes (and ``dim_u`` is replaced by ``view.out_dim``).
        channel: the :class:`~layerib.mi.channel.GaussianChannel` a noise critic holds.
        settings: widths, centres, MINE's rate, ``concat_marginal``.
        prior: ``(num_classes,)`` class probabilities (label critics, exact marginal).
        rows: ``(u, v)`` training rows a critic is fitted on (gauss) or centred at (mixture).
        generator: draws the mixture critic's centres.
        view: what a label critic reads of L (:class:`~layerib.mi.critics.MapPool`).
        marginal: override the marginal pairs of DV / NWJ (``"shuffle"`` or ``"all"``).
        options: critic-specific keyword arguments (the gauss critic's ``shrink``, ``sparse``).

    Raises:
        ConfigError: unknown critic or bound; a noise critic without a channel; a label
            critic without a prior.

    Example:
        >>> est = make_estimator("separable", "infonce", (3, 2))
        >>> est.value(torch.randn(8, 3), torch.randn(8, 2)).shape
        torch.Size([])
    """
    spec, b = get_critic(critic), get_bound(bound)
    labels = "labels" in spec.kinds
    if spec.kinds == frozenset({"noise"}) and channel is None:
        raise ConfigError(f"critic {critic!r} models known Gaussian noise; pass channel=GaussianChannel(noise_var)")
    if labels and prior is None:
        raise ConfigError(f"label critic {critic!r} needs the class prior (prior=)")
    dim_u = view.out_dim if (labels and view is not None) else dims[0]
    module = spec.build(CriticInputs(dim_u, dims[1], settings, bound, channel, rows, generator,
                                     view, dict(options or {})))
    if labels:
        if b.exact:
            return MIEstimator(module, bound=bound, marginal="exact", ema_rate=settings.ema_rate,
                               prior=prior)
        return MIEstimator(module, bound=bound, marginal="all")
    if b.pairs == "matrix":
        return MIEstimator(module, bound=bound, marginal="all", infonce_over=spec.infonce_over)
    if marginal is None:
        marginal = settings.concat_marginal if spec.pairwise else "all"
    return MIEstimator(module, bound=bound, marginal=marginal,
                       ema_rate=None if spec.fitted else settings.ema_rate)
