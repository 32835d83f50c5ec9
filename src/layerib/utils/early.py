"""Early stopping on a validation score: keep the best weights, stop after ``patience`` checks."""

from __future__ import annotations

import copy
import math

from torch import nn


class EarlyStopping:
    """Tracks a validation score (higher is better) over a stage's checks.

    Each :meth:`update` compares the score with the best so far: a better one stores a
    copy of ``module``'s weights; ``patience`` checks in a row without one say "stop".
    :meth:`restore` loads the best weights back. ``patience`` 0 never stops early (the
    best weights are still restored). The state travels in checkpoints.

    Args:
        module: the module whose weights are kept (the layer, the read-out, the CE net).
        patience: checks without improvement before stopping (0: never stop early).
        min_delta: an improvement must exceed this (score units).
        trained_only: keep copies of only the state that training changes (all but the
            parameters that require no gradient, e.g. a mixture critic's fixed centres:
            134 MB at 2048 x 16 384, copied at every improvement otherwise).
    """

    def __init__(self, module: nn.Module, patience: int, min_delta: float = 0.0,
                 trained_only: bool = False):
        self.module, self.patience, self.min_delta = module, patience, min_delta
        self.trained_only = trained_only
        self.best_score, self.best_step, self.bad, self.best_state = -math.inf, 0, 0, None

    def update(self, score: float, step: int, min_delta: float | None = None) -> bool:
        """Fold in the score of step ``step`` (``min_delta``: this check's margin, if not the
        constructor's); True when the stage should stop now."""
        margin = self.min_delta if min_delta is None else min_delta
        if score > self.best_score + margin or self.best_state is None:
            self.best_score, self.best_step, self.bad = score, step, 0
            self.best_state = self._copy()
        else:
            self.bad += 1
        return bool(self.patience) and self.bad >= self.patience

    def restore(self) -> None:
        """Load the best weights seen (no-op before the first check)."""
        if self.best_state is not None:
            self.module.load_state_dict({**self.module.state_dict(), **self.best_state}
                                        if self.trained_only else self.best_state)

    def _copy(self) -> dict:
        state = self.module.state_dict()
        if self.trained_only:
            fixed = {name for name, p in self.module.named_parameters() if not p.requires_grad}
            state = {k: v for k, v in state.items() if k not in fixed}
        return copy.deepcopy(state)

    def state_dict(self) -> dict:
        return {"best_score": self.best_score, "best_step": self.best_step, "bad": self.bad,
                "best_state": self.best_state}

    def load_state_dict(self, state: dict) -> None:
        self.best_score, self.best_step = state["best_score"], state["best_step"]
        self.bad, self.best_state = state["bad"], state["best_state"]
