"""Named MI estimators: a critic and a bound chosen by name, run through the reporting protocol.

I(X; L + eps), critics by name (:data:`X_CRITICS`); all but ``mine`` are AA-MINE, i.e. MINE
on ``(L, L + eps)`` = ``(F_i(x), F_i(x) + eps)`` (Elad et al. 2019, Sec. 3):

* ``mixture``: :class:`~layerib.mi.mixture_critic.MixtureNoiseCritic`, exact Gaussian term
  and a Gaussian-mixture z-only term centred at training features (our default).
* ``gaussian``: :class:`~layerib.mi.critics.GaussianNoiseCritic` (the trainer's critic; here
  its MLP sees standardised z, ``standardize_f=True``).
* ``concat``: the paper's MLP critic ``T(F_i(x), z)`` (:class:`~layerib.mi.critics.ConcatCritic`).
* ``separable``: ``g(F_i(x)) . h(z)`` (:class:`~layerib.mi.critics.SeparableCritic`).
* ``mine``: standard MINE, a :class:`~layerib.mi.critics.ConcatCritic` on the raw input
  ``(x, z)``: the baseline that fails in the paper's Fig. 1.

Bounds (:data:`BOUND_NAMES`): ``dv`` (MINE: trained with the moving-average gradient,
reported as the plain DV bound), ``nwj``, ``infonce``. Under DV and NWJ the concatenation
critics (``concat``, ``mine``) are by default trained and reported on one shuffle per batch,
as MINE does (all pairs cost ``B^2 * hidden``: 0.4 s per held-out batch of 512 at width
256; ``CriticSettings.concat_marginal="all"`` trains them on all pairs, which we measured
to matter on 20-d Gaussians at 4 nats: 3.86 vs 3.10 nats); the other critics always use
all off-diagonal pairs. InfoNCE with the Gaussian-family critics normalises each z over
the batch's F_i(x) (``infonce_over="u"``), which cancels their z-only terms: nothing is
trained, and the value is capped at ln B.

I(Y; L): a :class:`~layerib.mi.critics.LabelCritic`; ``dv`` and ``infonce`` take the
marginal over the classes exactly (docs/design.md Sec. 2), ``nwj`` uses all pairs of the batch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from layerib.errors import ConfigError
from layerib.mi.critics import ConcatCritic, GaussianNoiseCritic, LabelCritic, SeparableCritic
from layerib.mi.estimators import BOUND_NAMES, MIEstimator
from layerib.mi.mixture_critic import MixtureNoiseCritic
from layerib.mi.protocol import MIResult, reported_estimate

X_CRITICS = ("mixture", "gaussian", "concat", "separable", "mine")
_GAUSSIAN_FAMILY = ("mixture", "gaussian")
_PAIRWISE_MLP = ("concat", "mine")  # all pairs cost batch^2 * hidden


@dataclass(frozen=True)
class CriticSettings:
    """How one critic is trained and reported (MI in nats, noise as a variance)."""

    steps: int = 300                   # training steps (whole epochs are run: at least this many)
    lr: float = 1e-3                   # Adam learning rate of the critic
    batch_size: int = 512              # B of training and held-out batches; ln B caps what a batch shows
    hidden: int = 256                  # width of MLP critics (concat, separable, label, gaussian's f)
    n_centers: int = 4096              # mixture critic: centres, drawn from the training features
    pair_batch_size: int = 128         # concat/mine under InfoNCE: training batch (all pairs: B^2 * hidden)
    concat_marginal: str = "shuffle"   # concat/mine under DV/NWJ: one shuffle per batch (MINE) or all pairs
    ema_rate: float = 0.01             # MINE moving-average rate of the DV training gradient
    passes: int = 4                    # held-out passes, each with fresh noise and a new batch order
    baseline: bool = True              # also train a fresh critic on shuffled pairs (should give <= ~0)
    zero_noise_critic_var: float = 1e-4  # critic variance used at noise variance 0 (MI infinite there)
    seed: int = 0                      # seeds critic init, centres, batches and noise

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "hidden", "n_centers", "pair_batch_size", "passes"):
            v = getattr(self, name)
            low = 0 if name == "steps" else 1
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= low):
                raise ConfigError(f"{name} must be an integer >= {low}, got {v!r}")
        if self.batch_size < 2 or self.pair_batch_size < 2:
            raise ConfigError("batch sizes must be at least 2")
        for name in ("lr", "zero_noise_critic_var"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {v!r}")
        if self.concat_marginal not in ("shuffle", "all"):
            raise ConfigError(f"concat_marginal must be 'shuffle' or 'all', got {self.concat_marginal!r}")
        if not (isinstance(self.ema_rate, (int, float)) and 0 < self.ema_rate <= 1):
            raise ConfigError(f"ema_rate must be in (0, 1], got {self.ema_rate!r}")


def check_names(critics=(), bounds=()) -> None:
    """Raise :class:`ConfigError` for an unknown critic or bound name."""
    for c in critics:
        if c not in X_CRITICS:
            raise ConfigError(f"unknown critic {c!r}; choose from {', '.join(X_CRITICS)}")
    for b in bounds:
        if b not in BOUND_NAMES:
            raise ConfigError(f"unknown bound {b!r}; choose from {', '.join(BOUND_NAMES)}")


def _x_critic(critic: str, dim_u: int, dim_v: int, critic_var: float, v_train: torch.Tensor,
              s: CriticSettings, bound: str = "dv") -> torch.nn.Module:
    if critic == "mixture":
        g = torch.Generator(device=v_train.device).manual_seed(s.seed)
        # NWJ's optimal critic is 1 + the log-ratio; the mixture family has no free constant
        return MixtureNoiseCritic.from_features(v_train, critic_var, s.n_centers, g,
                                                offset=1.0 if bound == "nwj" else 0.0)
    if critic == "gaussian":
        return GaussianNoiseCritic(dim_v, critic_var, s.hidden, standardize_f=True)
    if critic == "separable":
        return SeparableCritic(dim_u, dim_v, s.hidden)
    return ConcatCritic(dim_u, dim_v, s.hidden)


def estimate_x(critic: str, bound: str, u_train: torch.Tensor, v_train: torch.Tensor,
               u_test: torch.Tensor, v_test: torch.Tensor, noise_var: float,
               s: CriticSettings = CriticSettings()) -> MIResult:
    """I(X; L + eps) by a named critic and bound, with the full protocol (nats).

    Args:
        critic, bound: names from :data:`X_CRITICS` and :data:`BOUND_NAMES`.
        u_train, u_test: what the critic sees of x: ``(N, d)`` features L (AA-MINE) or the
            flattened raw input (``mine``).
        v_train, v_test: the features L ``(N, d)``; ``L + eps`` is formed with fresh noise.
        noise_var: sigma^2 >= 0. At 0 there is no noise and the Gaussian-family critics use
            ``s.zero_noise_critic_var`` (the MI of a continuous input is then infinite, and
            their estimate grows as that variance shrinks).

    Raises:
        ConfigError: unknown names, or a negative or non-finite ``noise_var``.
    """
    check_names([critic], [bound])
    if not (math.isfinite(noise_var) and noise_var >= 0):
        raise ConfigError(f"noise variance {noise_var} must be finite and >= 0")
    critic_var = noise_var if noise_var > 0 else s.zero_noise_critic_var
    dim_u, dim_v = u_train[0].numel(), v_train.shape[1]
    u_train, u_test = u_train.flatten(1), u_test.flatten(1)
    steps, batch = s.steps, s.batch_size
    if bound == "infonce":
        over = "u" if critic in _GAUSSIAN_FAMILY else "v"
        steps = 0 if critic in _GAUSSIAN_FAMILY else steps  # z-only terms cancel: nothing to fit
        batch = min(batch, s.pair_batch_size) if critic in _PAIRWISE_MLP else batch

        def make() -> MIEstimator:
            return MIEstimator(_x_critic(critic, dim_u, dim_v, critic_var, v_train, s),
                               bound="infonce", marginal="all", infonce_over=over)
    else:
        marginal = s.concat_marginal if critic in _PAIRWISE_MLP else "all"

        def make() -> MIEstimator:
            return MIEstimator(_x_critic(critic, dim_u, dim_v, critic_var, v_train, s, bound),
                               bound=bound, marginal=marginal, ema_rate=s.ema_rate)
    return reported_estimate(make, u_train, v_train, u_test, v_test, steps=steps,
                             batch_size=batch, eval_batch_size=s.batch_size, lr=s.lr,
                             noise_var=noise_var if noise_var > 0 else None, seed=s.seed,
                             passes=s.passes, report_marginal=None, baseline=s.baseline)


def estimate_y(bound: str, l_train: torch.Tensor, y_train: torch.Tensor, l_test: torch.Tensor,
               y_test: torch.Tensor, prior: torch.Tensor,
               s: CriticSettings = CriticSettings()) -> MIResult:
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
    if bound == "nwj":
        def make() -> MIEstimator:
            return MIEstimator(LabelCritic(dim, classes, s.hidden), bound="nwj", marginal="all")
    else:
        def make() -> MIEstimator:
            return MIEstimator(LabelCritic(dim, classes, s.hidden), bound=bound, marginal="exact",
                               ema_rate=s.ema_rate, prior=prior)
    return reported_estimate(make, l_train, y_train, l_test, y_test, steps=s.steps,
                             batch_size=s.batch_size, lr=s.lr, seed=s.seed, passes=s.passes,
                             baseline=s.baseline)

