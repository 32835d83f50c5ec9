"""Options of :func:`layerib.mi.estimate.estimate_mi`: the candidate registry and :class:`EstimateSettings`."""

from __future__ import annotations

from dataclasses import dataclass

from layerib.errors import ConfigError

#: Candidate name -> (critic, bound). Explicit registry; see :data:`AUTO` for the defaults.
CANDIDATES = {
    "gauss-dv": ("gauss", "dv"),
    "gauss-infonce": ("gauss", "infonce"),
    "gauss2-dv": ("gauss2", "dv"),
    "gauss2-infonce": ("gauss2", "infonce"),
    "separable-infonce": ("separable", "infonce"),
    "separable-e-infonce": ("separable-e", "infonce"),
    "separable-dv": ("separable", "dv"),
    "separable-nwj": ("separable", "nwj"),
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


@dataclass(frozen=True)
class EstimateSettings:
    """Options of :func:`estimate_mi` (each a keyword argument of it)."""

    candidates: tuple[str, ...] | str = "auto"  # names from CANDIDATES, or "auto" (AUTO by data kind)
    restarts: int = 3             # trainings of the chosen candidate averaged (>= 1; 1: no training spread)
    baseline: bool = True         # also fit the chosen candidate on shuffled pairs (truth 0)
    input_map: str = "auto"       # "copula", "standardize", "none"; auto: copula, none with noise_var
    test_frac: float = 0.2        # rows held out for the reported value
    val_frac: float = 0.2         # rows that early-stop the critic
    batch_size: int = 256         # training batch B
    eval_batch_size: int = 1024   # validation / test batches (ln of it caps InfoNCE)
    hidden: int = 256             # MLP width of the critics
    embed: int = 32               # output size of the separable critic's g and h
    lr: float = 1e-3              # Adam learning rate
    max_steps: int = 4000         # step limit of one training
    eval_every: int = 100         # steps between validations (at most: every 10 epochs of a small training split)
    patience: int = 5             # validations without improvement before stopping
    min_improve: float | str = "auto"  # early stopping: an improvement must exceed this many validation standard errors; auto: 0.1 for labels and with noise_var, 0 for continuous pairs
    ema_rate: float = 0.01        # MINE's moving-average rate of the DV gradient
    n_centers: int = 2048         # mixture critic (noise_var): centres from training rows
    min_ess: float = 20.0         # DV/NWJ values resting on fewer effective marginal pairs are not used
    shrinks: tuple[float, ...] = (0.0, 0.05, 0.15, 0.3)  # gauss critic: cross-covariance shrinkages tried
    sparsities: tuple[float, ...] = (0.0, 0.5, 0.9, 1.0)  # gauss critic: weights of the paired-sparse target tried

    def __post_init__(self) -> None:
        for name in ("restarts", "batch_size", "eval_batch_size", "hidden", "embed", "max_steps",
                     "eval_every", "patience", "n_centers"):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and v >= 1):
                raise ConfigError(f"{name} must be an integer >= 1, got {v!r}")
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
