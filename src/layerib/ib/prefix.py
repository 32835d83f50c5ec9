"""The input of a layer stage: the frozen prefix's output, cached in memory or recomputed.

A layer stage indexes its input ``h`` as ``h[idx]`` (and needs ``len(h)``, ``h.device``).
By default ``h`` is the cached output of the frozen units 1..i-1 on the whole training
set (one pass, then every step reads rows). :class:`RecomputedPrefix` offers the same
interface but recomputes the frozen prefix on each batch, optionally on augmented inputs
(``augment``: a fresh random crop and flip per batch, as for CE): that costs a forward
pass of the prefix per step and no memory for the cache. Without augmentation both give
the same rows, so a stage gives the same result either way (bit-identical on CPU).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from layerib.utils.precision import training_autocast


class RecomputedPrefix:
    """``prefix(transform(x[idx], g))`` for each batch ``idx``, under ``no_grad`` in eval mode.

    Args:
        x: the training inputs ``(N, ...)``.
        prefix: the frozen units before the stage (an empty ``nn.Sequential`` for unit 1).
        transform: ``(x_batch, g) -> x_batch`` augmentation, or None.
        g: the run's generator (augmentation draws from it).
        precision: ``"float32"`` or ``"bfloat16"`` (the prefix's pass under
            :func:`~layerib.utils.precision.training_autocast`); rows come back float32.
    """

    def __init__(self, x: torch.Tensor, prefix: nn.Module,
                 transform: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None,
                 g: torch.Generator | None, precision: str = "float32"):
        self.x, self.prefix, self.transform, self.g = x, prefix, transform, g
        self.precision = precision

    def __len__(self) -> int:
        return len(self.x)

    @property
    def device(self) -> torch.device:
        return self.x.device

    @torch.no_grad()
    def __getitem__(self, idx) -> torch.Tensor:
        xb = self.x[idx]
        if self.transform is not None and not isinstance(idx, slice):  # slices: shape probes
            xb = self.transform(xb, self.g)
        self.prefix.eval()
        with training_autocast(xb.device, self.precision):
            out = self.prefix(xb)
        return out.float()
