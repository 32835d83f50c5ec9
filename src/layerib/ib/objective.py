"""The per-layer IB objective of Elad et al. 2019, Eq. 2, with its two estimators.

    maximise  I(Y; L_i) - beta * I(X; L_i + eps),   eps ~ N(0, sigma^2 I)

* I(Y; L_i): a label critic on ``(L_i, Y)`` (:mod:`layerib.mi.critics`); the marginal
  over the discrete Y is taken exactly over the classes with the training set's class
  frequencies (see ``docs/design.md``, "Estimators"). By default (``y_bound="infonce"``)
  the bound normalises each sample over the classes; ``"dv"`` is MINE's DV bound with
  its moving-average gradient, as in the paper.
* I(X; L_i + eps): AA-MINE, critic ``D(x, z) = T(F_i(x), z)`` with F_i tied to the net
  being trained. With layers 1..i-1 frozen, F_i(x) = layer_i(h) where h is the cached
  output of layer i-1, so the critic is evaluated as ``T(L_i, L_i + eps)`` with ``L_i``
  computed once, with gradients, from the current layer weights: the same function as
  the paper's critic, at the cost of one layer pass instead of i. By default
  (``x_critic="gaussian"``, ``x_bound="infonce"``) T is the exact Gaussian term of the
  :class:`~layerib.mi.channel.GaussianChannel` (its z-only part cancels under InfoNCE over
  u), so this term has no trained parameters; ``x_bound="dv"`` or ``x_critic="concat"``
  train a critic as the paper does.

Both estimators come from :func:`layerib.mi.factory.make_estimator`; their bounds are names in
:data:`layerib.mi.bounds.BOUNDS` (:data:`Y_BOUNDS`, :data:`X_BOUNDS` list the ones a layer can use).
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import nn

from layerib.errors import ConfigError
from layerib.mi.bounds import BOUND_NAMES, BOUNDS, get_bound
from layerib.mi.channel import GaussianChannel
from layerib.mi.critics import TRAINER_X_CRITICS, TRAINER_Y_CRITICS
from layerib.mi.estimators import MIEstimator
from layerib.mi.factory import make_estimator
from layerib.mi.settings import EstimatorSettings

#: Bounds on I(Y; L) a layer can be trained with: those with an exact-class-marginal variant.
Y_BOUNDS = tuple(n for n in BOUND_NAMES if BOUNDS[n].exact)
#: Bounds on I(X; L + eps) a layer can minimise.
X_BOUNDS = BOUND_NAMES

#: The trainer's critic settings beyond TrainConfig's fields: its Gaussian AA-MINE critic reads
#: z as it is (``standardize_f=False``, its pinned behaviour; estimate_mi's reads standardised z).
TRAINER_SETTINGS = EstimatorSettings(standardize_f=False)


def trainer_settings(hidden: int, ema_rate: float, input_norm: str = "none") -> EstimatorSettings:
    """:data:`TRAINER_SETTINGS` with ``TrainConfig``'s ``critic_hidden``, ``ema_rate`` and
    ``y_input_norm`` (the trainer's width, 128 by default, is the config's, not the 256 of
    :class:`~layerib.mi.settings.EstimatorSettings`).

    Example:
        >>> trainer_settings(128, 0.01).hidden
        128
    """
    return replace(TRAINER_SETTINGS, hidden=hidden, ema_rate=ema_rate, input_norm=input_norm)


def label_estimator(dim: int, prior: torch.Tensor, settings: EstimatorSettings,
                    bound: str = "infonce", critic: str = "concat",
                    view: nn.Module | None = None) -> MIEstimator:
    """MINE for I(Y; L) with a label critic and the exact class marginal ``prior``.

    ``bound="dv"`` is the paper's DV bound (marginal expectation over the batch's
    L and exactly over the classes); ``"infonce"`` normalises each sample over
    the classes (:func:`layerib.mi.bounds.infonce_known_marginal`). ``critic``:
    ``"concat"`` (:class:`~layerib.mi.critics.LabelCritic`, the paper's) or ``"heads"``
    (:class:`~layerib.mi.critics.LabelHeadsCritic`, one output per class; faster).
    ``settings.input_norm``: ``"rms"`` / ``"standard"``: the critic reads L divided by the
    batch's RMS (and centred; :func:`~layerib.mi.critics.normalise_batch`), so the bound
    ignores L's scale. ``view``: what the critic reads of the flattened L ``(batch, dim)``:
    None (all of it) or a :class:`~layerib.mi.critics.MapPool` (each channel of a conv map
    averaged over a grid; the estimate bounds I(Y; view(L)) <= I(Y; L)).

    Raises:
        ConfigError: a bound without an exact-marginal variant (not in :data:`Y_BOUNDS`).

    Example:
        >>> est = label_estimator(4, torch.full((3,), 1 / 3), EstimatorSettings(hidden=8))
        >>> est.marginal, est.spec.name
        ('exact', 'infonce_known')
    """
    if not get_bound(bound).exact:
        raise_bound(bound, Y_BOUNDS, "y_bound")
    return make_estimator(TRAINER_Y_CRITICS[critic], bound, (dim, len(prior)), settings=settings,
                          prior=prior, view=view)


def aa_estimator(dim: int, channel: GaussianChannel, settings: EstimatorSettings,
                 critic: str = "gaussian", marginal: str = "all",
                 bound: str = "dv") -> MIEstimator:
    """AA-MINE's inner estimator of I(L; L + eps) for features of size ``dim``.

    Args:
        channel: the measuring noise (its variance is the critic's).
        critic: ``"gaussian"`` (our default) or ``"concat"`` (an MLP on ``(F_i(x), z)``,
            the paper's MINE critic). Under an all-pairs-matrix bound (InfoNCE) the Gaussian
            critic is the channel's exact term alone (:class:`~layerib.mi.channel.GaussianChannel`,
            no parameters: its learnt z-only part would cancel); otherwise it is
            :class:`~layerib.mi.critics.GaussianNoiseCritic` (exact term + learnt q(z)).
        marginal: ``"all"`` off-diagonal pairs or one ``"shuffle"`` (DV, NWJ).
        bound: a name in :data:`X_BOUNDS` (InfoNCE: all pairs, each z normalised over the
            encoder outputs, which cancels the critic's z-only terms).

    Example:
        >>> est = aa_estimator(3, GaussianChannel(1.0), TRAINER_SETTINGS, bound="infonce")
        >>> est.critic.noise_var
        1.0
    """
    name = TRAINER_X_CRITICS[critic]
    if name == "gaussian" and get_bound(bound).pairs == "matrix":
        name = "channel"
    return make_estimator(name, bound, (dim, dim), channel=channel, settings=settings,
                          marginal=marginal)


def raise_bound(bound: str, choices: tuple[str, ...], what: str) -> None:
    """Raise the one-line :class:`~layerib.errors.ConfigError` for a bound a layer cannot use."""
    raise ConfigError(f"{what} {bound!r} cannot be used here; choose from {', '.join(choices)}")


class IBObjective(nn.Module):
    """The two estimators of one layer stage and the Lagrangian they form.

    Args:
        dim: size of the layer's (flattened) output.
        prior: ``(num_classes,)`` class frequencies of the training labels.
        beta: the trade-off of Eq. 2 (0 gives the "I(Y; L) only" variant).
        noise_var: sigma^2 of the measuring noise (owned by :attr:`channel`).
        settings: the critics' width, MINE's rate and how the label critic reads L
            (``input_norm``: ``"none"`` as it is, the paper's; ``"rms"`` or ``"standard"``:
            scale-invariant I(Y; L)); see :data:`TRAINER_SETTINGS`.
        x_critic, x_marginal, x_bound, y_bound, y_critic: as
            :class:`layerib.config.TrainConfig`'s fields of those names (same defaults).
        y_view: what the label critic reads of the flattened L: None (all of it, the
            default) or a :class:`~layerib.mi.critics.MapPool` (``TrainConfig.y_pool``).
            The AA-MINE term always reads all of L.

    Raises:
        ConfigError: a bad ``noise_var`` or an unknown or unusable critic or bound name.

    Example:
        >>> obj = IBObjective(4, torch.full((2,), 0.5), beta=0.1, noise_var=1.0)
        >>> obj.q_free, obj.reported_i_x.bound
        (True, 'infonce')
    """

    def __init__(self, dim: int, prior: torch.Tensor, beta: float, noise_var: float, *,
                 settings: EstimatorSettings = TRAINER_SETTINGS, x_critic: str = "gaussian",
                 x_marginal: str = "all", x_bound: str = "infonce", y_bound: str = "infonce",
                 y_critic: str = "concat", y_view: nn.Module | None = None):
        super().__init__()
        if x_bound not in X_BOUNDS:
            raise_bound(x_bound, X_BOUNDS, "x_bound")
        self.beta, self.x_bound = beta, x_bound
        self.channel = GaussianChannel(noise_var)
        self.i_y = label_estimator(dim, prior, settings, y_bound, y_critic, y_view)
        # The default pair (Gaussian critic, InfoNCE over u): the critic's z-only term cancels
        # exactly from what the layer minimises and reports, so there is nothing to learn.
        matrix = get_bound(x_bound).pairs == "matrix"
        self.q_free = x_critic == "gaussian" and matrix
        if self.q_free:
            self.i_x = self.i_x_infonce = aa_estimator(dim, self.channel, settings, x_critic,
                                                       bound=x_bound)
        else:
            # a trained critic is fitted under DV (MINE) when the layer reads an all-pairs
            # bound from it, else under the layer's own bound
            self.i_x = aa_estimator(dim, self.channel, settings, x_critic, x_marginal,
                                    "dv" if matrix else x_bound)
            # the same critic under the InfoNCE bound (shares its parameters)
            self.i_x_infonce = MIEstimator(self.i_x.critic, bound="infonce", marginal="all",
                                           infonce_over="u")

    @property
    def noise_var(self) -> float:
        return self.channel.noise_var

    @property
    def reported_i_x(self) -> MIEstimator:
        """The estimator of I(X; L + eps) the layer minimises and reports (``x_bound``)."""
        return self.i_x_infonce if get_bound(self.x_bound).pairs == "matrix" else self.i_x

    def critic_parameters(self) -> list[nn.Parameter]:
        """The parameters the critics train (none of the AA-MINE term's with :attr:`q_free`)."""
        return [p for p in self.parameters() if p.requires_grad]

    def sample_noise(self, like: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
        """Measuring noise ``eps ~ N(0, noise_var I)`` of ``like``'s shape, dtype and device."""
        return self.channel.sample(like, g)

    def critic_objective(self, l: torch.Tensor, y: torch.Tensor, z: torch.Tensor):
        """Sum of the critics' training surrogates on detached features, and the two values.

        Returns:
            ``(surrogate, i_y, i_x)``: maximise ``surrogate`` over critic parameters;
            ``i_y`` and ``i_x`` are this batch's plain bound values (nats); ``i_x`` is
            None with :attr:`q_free` (no AA-MINE critic parameter is trained then).
        """
        sy, iy = self.i_y.objective(l.detach(), y)
        if self.q_free:
            return sy, iy, None
        sx, ix = self.i_x.objective(l.detach(), z.detach())
        return sy + sx, iy, ix

    def i_x_value(self, l: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """The I(X; L + eps) term the layer minimises and reports (nats), shape ``()``."""
        return self.reported_i_x.value(l, z)

    def layer_objective(self, l: torch.Tensor, y: torch.Tensor, z: torch.Tensor):
        """Eq. 2 on this batch, differentiable w.r.t. the layer: ``(lagrangian, i_y, i_x)``.

        The I(X; L + eps) term the layer minimises is, by default (``x_bound="infonce"``),
        the InfoNCE bound of the AA-MINE critic on all pairs of the batch, each z_j
        normalised over the encoder outputs F_i(x_k): this cancels every term of the
        critic that depends on z alone, so the layer's gradient comes from the exact
        Gaussian part only and a lagging critic cannot be exploited (with the DV form the
        layer can drive a fixed critic's estimate to -inf by rescaling its output, which
        we measured: estimates of -1e9 nats within 300 steps on MNIST 1%). ``"dv"`` uses
        the DV bound as the paper does. ``i_x`` is None when beta is 0.
        """
        iy = self.i_y.value(l, y)
        if self.beta == 0:
            return iy, iy, None
        ix = self.i_x_value(l, z)
        return iy - self.beta * ix, iy, ix
