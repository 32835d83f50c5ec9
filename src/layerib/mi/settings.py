"""One set of estimator settings: :class:`EstimatorSettings` (critics, fitting, the protocols).

Every MI estimate in layerib reads its critic and fitting options from this one frozen
dataclass: :func:`~layerib.mi.estimate.estimate_mi` (each field of the "critic", "fit" and
"estimate_mi" groups is one of its keyword options), the held-out-batch recipes of
:mod:`layerib.mi.recipes` (``layerib estimate``'s named critics, Fig. 1) and the trainer's
per-layer estimators (:mod:`layerib.ib.objective`). Each default is given once, here. Where a
caller ran with another value before the settings were merged, that caller passes its value
explicitly (and says so in a comment), so its numbers do not change.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

from layerib.errors import ConfigError

#: estimate_mi's candidate name -> (critic, bound): (critic in CRITICS, bound in BOUNDS).
#: See :data:`AUTO` for the defaults. A new (critic, bound) pair is one line here.
CANDIDATES = {
    "gauss-dv": ("gauss", "dv"),
    "gauss-infonce": ("gauss", "infonce"),
    "gauss2-dv": ("gauss2", "dv"),
    "gauss2-infonce": ("gauss2", "infonce"),
    "separable-infonce": ("separable", "infonce"),
    "separable-e-infonce": ("separable-e", "infonce"),
    "separable-dv": ("separable", "dv"),
    "separable-nwj": ("separable", "nwj"),
    "separable-smile": ("separable", "smile"),
    "concat-dv": ("concat", "dv"),
    "concat-nwj": ("concat", "nwj"),
    "heads-infonce": ("heads", "infonce"),
    "heads-dv": ("heads", "dv"),
    "mixture-dv": ("mixture", "dv"),
    "mixture-infonce": ("mixture", "infonce"),
    "mixture-nwj": ("mixture", "nwj"),
    "gaussian-dv": ("gaussian", "dv"),
    "gaussian-infonce": ("gaussian", "infonce"),
    "gaussian-nwj": ("gaussian", "nwj"),
}

#: The ``"auto"`` candidates by kind of data (chosen by measurement with
#: ``benchmarks/bench_estimators.py --suite``; the numbers are in :func:`estimate_mi`'s docstring).
AUTO = {
    "continuous": ("gauss-dv", "gauss-infonce", "gauss2-infonce", "separable-e-infonce"),
    "labels": ("heads-infonce", "heads-dv"),
    "noise": ("mixture-dv",),
}

#: The fields only the held-out-batch recipes read (:mod:`layerib.mi.recipes`); estimate_mi
#: rejects them (it stops its critics early and takes ``seed`` as its own argument).
RECIPE_FIELDS = ("steps", "passes", "pair_batch_size", "zero_noise_critic_var", "seed")


@dataclass(frozen=True)
class EstimatorSettings:
    """Critic, fitting and protocol settings of every MI estimate (MI in nats).

    Raises:
        ConfigError: a value out of range or an unknown candidate (one line naming it).

    Example:
        >>> EstimatorSettings(hidden=64).hidden
        64
        >>> EstimatorSettings(batch_size=0)
        Traceback (most recent call last):
        ...
        layerib.errors.ConfigError: batch_size must be an integer >= 1, got 0
    """

    # -- critics (all callers) --
    hidden: int = 256             # MLP width of the critics (the trainer passes TrainConfig.critic_hidden)
    embed: int = 32               # output size of the separable critic's g and h
    n_centers: int = 2048         # mixture critic: centres from training rows (the recipes pass their 4096)
    ema_rate: float = 0.01        # MINE's moving-average rate of the DV gradient
    standardize_f: bool = True    # Gaussian noise critic: its MLP reads standardised z (the trainer passes False)
    input_norm: str = "none"      # label critics: how they read L: none, rms, standard
    concat_marginal: str = "shuffle"  # concatenation critics under DV/NWJ: one shuffle per batch (MINE) or all pairs
    # -- fitting (estimate_mi, recipes) --
    lr: float = 1e-3              # Adam learning rate
    batch_size: int = 256         # training batch B (the recipes pass their 512: training and held-out B)
    eval_batch_size: int = 1024   # validation / test batches (ln of it caps InfoNCE)
    max_steps: int = 4000         # step limit of one early-stopped training
    eval_every: int = 100         # steps between validations (at most: every 10 epochs of a small training split)
    patience: int = 5             # validations without improvement before stopping
    min_improve: float | str = "auto"  # early stopping: an improvement must exceed this many validation standard errors; auto: 0.1 for labels and with noise_var, 0 for continuous pairs
    baseline: bool = True         # also fit the chosen critic on shuffled pairs (truth 0)
    # -- estimate_mi's protocol --
    candidates: tuple[str, ...] | str = "auto"  # names from CANDIDATES, or "auto" (AUTO by data kind)
    restarts: int = 3             # trainings of the chosen candidate averaged (>= 1; 1: no training spread)
    input_map: str = "auto"       # "copula", "standardize", "none"; auto: copula, none with noise_var
    test_frac: float = 0.2        # rows held out for the reported value
    val_frac: float = 0.2         # rows that early-stop the critic
    min_ess: float = 20.0         # DV/NWJ values resting on fewer effective marginal pairs are not used
    shrinks: tuple[float, ...] = (0.0, 0.05, 0.15, 0.3)  # gauss critic: cross-covariance shrinkages tried
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.9, 1.0)  # gauss critic: weights of the paired-sparse target tried
    # -- the held-out-batch recipes (RECIPE_FIELDS) --
    steps: int = 300              # fixed training steps (whole epochs are run: at least this many)
    passes: int = 4               # held-out passes, each with fresh noise and a new batch order
    pair_batch_size: int = 128    # concat/mine under InfoNCE: training batch (all pairs: B^2 * hidden)
    zero_noise_critic_var: float = 1e-4  # critic variance used at noise variance 0 (MI infinite there)
    seed: int = 0                 # seeds critic init, centres, batches and noise

    def __post_init__(self) -> None:
        for name in ("restarts", "batch_size", "eval_batch_size", "hidden", "embed", "max_steps",
                     "eval_every", "patience", "n_centers", "passes", "pair_batch_size"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
        if not (isinstance(self.steps, int) and not isinstance(self.steps, bool) and self.steps >= 0):
            raise ConfigError(f"steps must be an integer >= 0, got {self.steps!r}")
        if self.batch_size < 2 or self.pair_batch_size < 2:
            raise ConfigError("batch sizes must be at least 2")
        for name in ("lr", "zero_noise_critic_var"):
            v = getattr(self, name)
            if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
                raise ConfigError(f"{name} must be a finite number > 0, got {v!r}")
        if not (isinstance(self.ema_rate, (int, float)) and 0 < self.ema_rate <= 1):
            raise ConfigError(f"ema_rate must be in (0, 1], got {self.ema_rate!r}")
        if self.concat_marginal not in ("shuffle", "all"):
            raise ConfigError(f"concat_marginal must be 'shuffle' or 'all', got {self.concat_marginal!r}")
        if not (0 < self.test_frac < 1 and 0 < self.val_frac < 1 and self.test_frac + self.val_frac < 0.9):
            raise ConfigError(f"test_frac={self.test_frac}, val_frac={self.val_frac}: each in (0, 1), "
                              "summing to < 0.9")
        if self.min_improve != "auto" and not (isinstance(self.min_improve, (int, float))
                                               and 0 <= self.min_improve < float("inf")):
            raise ConfigError(f"min_improve must be 'auto' or a number >= 0, got {self.min_improve!r}")
        names = (self.candidates,) if isinstance(self.candidates, str) else self.candidates
        for c in names:
            if c != "auto" and c not in CANDIDATES:
                raise ConfigError(f"unknown candidate {c!r}; choose from auto, {', '.join(CANDIDATES)}")


def settings_from_options(options: dict, exclude: tuple[str, ...] = ()) -> EstimatorSettings:
    """:class:`EstimatorSettings` from keyword options, with a one-line error for unknown ones.

    Args:
        options: field values; exclude: fields this caller does not read (rejected, named).

    Raises:
        ConfigError: an unknown or excluded option (the message lists the choices).
    """
    known = sorted(f.name for f in fields(EstimatorSettings) if f.name not in exclude)
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ConfigError(f"unknown option(s) {', '.join(unknown)}; choose from {', '.join(known)}")
    return EstimatorSettings(**options)
