"""MINE's bias-corrected gradient of the DV bound.

Source: Belghazi et al., "Mutual Information Neural Estimation", ICML 2018,
Sec. 3.2 (Eq. 12 and Algorithm 1). The mini-batch gradient of
``log E[exp T]`` is ``E_B[exp(T) grad T] / E_B[exp T]``; its denominator is
biased for small batches. MINE replaces the denominator by an exponential
moving average (EMA) over batches. The EMA changes only the gradient used for
training; the value reported is always the plain DV bound.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from layerib.mi.bounds import log_mean_exp


class MovingAverageLogMeanExp:
    """Tracks ``log`` of the EMA of ``E_B[exp T]`` on marginal pairs, in log space.

    Args:
        rate: EMA rate alpha in (0, 1]; the new average is
            ``(1 - rate) * old + rate * batch_mean``. 1 disables the correction.
    """

    def __init__(self, rate: float = 0.01):
        if not 0.0 < rate <= 1.0:
            raise ValueError(f"moving-average rate {rate} must be in (0, 1]")
        self.rate = rate
        self.log_ema: float | None = None

    def update(self, batch_log_mean_exp: torch.Tensor) -> float:
        """Fold a batch's ``log E_B[exp T]`` (scalar tensor) in; return the new log EMA."""
        value = float(batch_log_mean_exp.detach())
        if not math.isfinite(value):
            return self.log_ema if self.log_ema is not None else value
        if self.log_ema is None:
            self.log_ema = value
        else:
            a = self.rate
            self.log_ema = value if a == 1.0 else float(
                np.logaddexp(math.log1p(-a) + self.log_ema, math.log(a) + value))
        return self.log_ema

    def state_dict(self) -> dict:
        return {"rate": self.rate, "log_ema": self.log_ema}

    def load_state_dict(self, state: dict) -> None:
        self.rate, self.log_ema = state["rate"], state["log_ema"]


def mine_surrogate(joint: torch.Tensor, marginal: torch.Tensor,
                   ema: MovingAverageLogMeanExp) -> torch.Tensor:
    """A surrogate whose gradient is MINE's corrected DV gradient (nats; value not the MI).

    ``E[T_joint] - E_B[exp T_marg] / ema`` has gradient
    ``E[grad T_joint] - E_B[exp(T) grad T] / ema`` (Belghazi et al. Eq. 12).
    Computed as ``exp(log_mean_exp(T) - log_ema)``, stable for large scores.
    Maximise it; report :func:`layerib.mi.bounds.dv_bound` instead.
    """
    lme = log_mean_exp(marginal)
    log_ema = ema.update(lme)
    return joint.mean() - torch.exp(lme - log_ema)
