"""Named MI estimators: a critic and a bound chosen by name, run through the reporting protocol.

I(X; L + eps), critics by name (:data:`X_CRITICS`); all but ``mine`` are AA-MINE, i.e. MINE
on ``(L, L + eps)`` = ``(F_i(x), F_i(x) + eps)`` (Elad et al. 2019, Sec. 3):

* ``mixture``: :class:`~layerib.mi.critics.MixtureNoiseCritic`, exact Gaussian term
  and a Gaussian-mixture z-only term centred at training features (our default).
* ``gaussian``: :class:`~layerib.mi.critics.GaussianNoiseCritic` (the trainer's critic; here
  its MLP sees standardised z, ``standardize_f=True``).
* ``concat``: the paper's MLP critic ``T(F_i(x), z)`` (:class:`~layerib.mi.critics.ConcatCritic`).
* ``separable``: ``g(F_i(x)) . h(z)`` (:class:`~layerib.mi.critics.SeparableCritic`).
* ``mine``: standard MINE, a :class:`~layerib.mi.critics.ConcatCritic` on the raw input
  ``(x, z)``: the baseline that fails in the paper's Fig. 1.

Bounds: any of :data:`~layerib.mi.bounds.BOUND_NAMES`: ``dv`` (MINE: trained with the
moving-average gradient, reported as the plain DV bound), ``nwj``, ``infonce``, ... Under DV and NWJ the concatenation
critics (``concat``, ``mine``) are by default trained and reported on one shuffle per batch,
as MINE does (all pairs cost ``B^2 * hidden``: 0.4 s per held-out batch of 512 at width
256; ``EstimatorSettings.concat_marginal="all"`` trains them on all pairs, which we measured
to matter on 20-d Gaussians at 4 nats: 3.86 vs 3.10 nats); the other critics always use
all off-diagonal pairs. InfoNCE with the Gaussian-family critics normalises each z over
the batch's F_i(x) (``infonce_over="u"``), which cancels their z-only terms: nothing is
trained, and the value is capped at ln B.

I(Y; L): a :class:`~layerib.mi.critics.LabelCritic`; ``dv`` and ``infonce`` take the
marginal over the classes exactly (docs/design.md Sec. 2), ``nwj`` uses all pairs of the batch.

Estimators come from :func:`~layerib.mi.factory.make_estimator`, critics are fitted by
:func:`~layerib.mi.fit.fit_critic` (through :func:`~layerib.mi.protocol.reported_estimate`),
the settings are :class:`~layerib.mi.settings.EstimatorSettings`; :data:`RECIPE_SETTINGS`
holds the values the recipes ran with before the settings were merged.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from layerib.errors import ConfigError
from layerib.mi.bounds import BOUND_NAMES, get_bound
from layerib.mi.channel import GaussianChannel
from layerib.mi.critics import CRITICS
from layerib.mi.factory import make_estimator
from layerib.mi.protocol import MIResult, reported_estimate
from layerib.mi.settings import EstimatorSettings

#: ``layerib estimate``'s critics of I(X; L + eps): ``mine`` is the concatenation critic on x.
X_CRITICS = ("mixture", "gaussian", "concat", "separable", "mine")

#: The settings the recipes ran with before the merge into one :class:`EstimatorSettings`:
#: B = 512 (their training and held-out batches; the shared default is 256) and 4096 mixture
#: centres (the shared default is 2048). Callers of the recipes start from it (e.g.
#: ``replace(RECIPE_SETTINGS, steps=50)``), so their numbers do not change.
RECIPE_SETTINGS = EstimatorSettings(batch_size=512, n_centers=4096)

__all__ = ["X_CRITICS", "RECIPE_SETTINGS", "recipe_settings", "check_names", "estimate_x",
           "estimate_y"]


def recipe_settings(**changes) -> EstimatorSettings:
    """:data:`RECIPE_SETTINGS` with ``changes`` (fields of :class:`EstimatorSettings`).

    Raises:
        ConfigError: a value out of range. TypeError: an unknown field.

    Example:
        >>> recipe_settings(steps=50).batch_size
        512
    """
    return replace(RECIPE_SETTINGS, **changes)


def check_names(critics=(), bounds=()) -> None:
    """Raise :class:`ConfigError` for an unknown critic or bound name."""
    for c in critics:
        if c not in X_CRITICS:
            raise ConfigError(f"unknown critic {c!r}; choose from {', '.join(X_CRITICS)}")
    for b in bounds:
        if b not in BOUND_NAMES:
            raise ConfigError(f"unknown bound {b!r}; choose from {', '.join(BOUND_NAMES)}")


def estimate_x(critic: str, bound: str, u_train: torch.Tensor, v_train: torch.Tensor,
               u_test: torch.Tensor, v_test: torch.Tensor, noise_var: float,
               s: EstimatorSettings = RECIPE_SETTINGS) -> MIResult:
    """I(X; L + eps) by a named critic and bound, with the full protocol (nats).

    Args:
        critic, bound: names from :data:`X_CRITICS` and :data:`~layerib.mi.bounds.BOUND_NAMES`.
        u_train, u_test: what the critic sees of x: ``(N, d)`` features L (AA-MINE) or the
            flattened raw input (``mine``).
        v_train, v_test: the features L ``(N, d)``; ``L + eps`` is formed with fresh noise.
        noise_var: sigma^2 >= 0. At 0 there is no noise (no channel) and the Gaussian-family
            critics hold a channel of variance ``s.zero_noise_critic_var`` (the MI of a
            continuous input is then infinite, and their estimate grows as it shrinks).

    Raises:
        ConfigError: unknown names, or a negative or non-finite ``noise_var``.
    """
    check_names([critic], [bound])
    noise_var = GaussianChannel.check(noise_var, zero_ok=True)
    name = "concat" if critic == "mine" else critic
    spec = CRITICS[name]
    channel = GaussianChannel(noise_var) if noise_var > 0 else None
    critic_channel = channel or GaussianChannel(s.zero_noise_critic_var)
    dim_u, dim_v = u_train[0].numel(), v_train.shape[1]
    u_train, u_test = u_train.flatten(1), u_test.flatten(1)
    steps, batch = s.steps, s.batch_size
    if get_bound(bound).pairs == "matrix":
        noise_family = spec.infonce_over == "u"
        steps = 0 if noise_family else steps  # z-only terms cancel: nothing to fit
        batch = min(batch, s.pair_batch_size) if spec.pairwise else batch

    def make():
        g = torch.Generator(device=v_train.device).manual_seed(s.seed)
        return make_estimator(name, bound, (dim_u, dim_v), channel=critic_channel, settings=s,
                              rows=(u_train, v_train), generator=g)
    return reported_estimate(make, u_train, v_train, u_test, v_test, steps=steps,
                             batch_size=batch, eval_batch_size=s.batch_size, lr=s.lr,
                             noise_var=noise_var if channel else None, seed=s.seed,
                             passes=s.passes, report_marginal=None, baseline=s.baseline)


def estimate_y(bound: str, l_train: torch.Tensor, y_train: torch.Tensor, l_test: torch.Tensor,
               y_test: torch.Tensor, prior: torch.Tensor,
               s: EstimatorSettings = RECIPE_SETTINGS) -> MIResult:
    """I(Y; L) with a label critic and a named bound, with the full protocol (nats).

    The features are standardised per coordinate with the training mean and std first, so
    the estimate does not change when the features are rescaled.

    Args:
        l_train, l_test: features ``(N, d)``; y_train, y_test: int64 labels ``(N,)``.
        prior: ``(num_classes,)`` class frequencies of the training labels.
    """
    check_names(bounds=[bound])
    dim, classes = l_train.shape[1], len(prior)
    # the label critics are MLPs on raw l: standardise with the training statistics, so that
    # I(Y; a l) does not depend on a (features x10 gave 0.74 instead of 1.91 nats under DV)
    shift, scale = l_train.mean(0), l_train.std(0).clamp_min(1e-8)
    l_train, l_test = (l_train - shift) / scale, (l_test - shift) / scale

    def make():
        return make_estimator("label", bound, (dim, classes), settings=s, prior=prior)
    return reported_estimate(make, l_train, y_train, l_test, y_test, steps=s.steps,
                             batch_size=s.batch_size, lr=s.lr, seed=s.seed, passes=s.passes,
                             baseline=s.baseline)
