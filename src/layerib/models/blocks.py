"""Downsampling layers the conv nets share: 2x2 max-pooling or lossless space-to-depth.

A 2x2 max-pool keeps one of four values per window; space-to-depth
(:class:`SpaceToDepth`, ``torch.nn.functional.pixel_unshuffle``) keeps all four as four
channels, so the map ``(C, H, W)`` becomes ``(4C, H/2, W/2)`` and nothing is lost: the
"invertible downsampling" of the greedy layer-wise nets (Belilovsky et al., ICML 2019,
Sec. 3, after Dinh et al. 2017 and Jacobsen et al. 2018), where a unit that ends in a pool
would otherwise discard what the next unit can no longer retrain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

#: ``downsample`` values of the nets (:func:`downsample_layer`)
DOWNSAMPLES = ("pool", "space_to_depth")


class SpaceToDepth(nn.Module):
    """``(N, C, H, W)`` -> ``(N, C * f * f, H / f, W / f)``: every ``f x f`` window's values
    become channels (``pixel_unshuffle``); ``pixel_shuffle`` with the same factor inverts it.

    Args:
        factor: the window side ``f`` (H and W must be divisible by it).

    Raises:
        ValueError: ``factor`` < 1; (forward) H or W not divisible by ``factor``.

    Example:
        >>> x = torch.arange(16.).reshape(1, 1, 4, 4)
        >>> y = SpaceToDepth(2)(x)
        >>> y.shape, torch.equal(F.pixel_shuffle(y, 2), x)
        (torch.Size([1, 4, 2, 2]), True)
    """

    def __init__(self, factor: int = 2):
        super().__init__()
        if factor < 1:
            raise ValueError(f"SpaceToDepth: factor must be >= 1, got {factor}")
        self.factor = factor

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % self.factor or w % self.factor:
            raise ValueError(f"SpaceToDepth({self.factor}): a {h}x{w} map is not divisible by "
                             f"{self.factor}; pad the input or downsample fewer times")
        return F.pixel_unshuffle(x, self.factor)

    def extra_repr(self) -> str:
        return f"factor={self.factor}"


def downsample_layer(kind: str) -> nn.Module:
    """A 2x halving of a map: ``pool`` (``MaxPool2d(2)``, channels kept) or
    ``space_to_depth`` (:class:`SpaceToDepth`, 4x the channels).

    Raises:
        ValueError: an unknown ``kind``.

    Example:
        >>> downsample_layer("space_to_depth")(torch.zeros(2, 3, 8, 8)).shape
        torch.Size([2, 12, 4, 4])
    """
    if kind == "pool":
        return nn.MaxPool2d(2)
    if kind == "space_to_depth":
        return SpaceToDepth(2)
    raise ValueError(f"downsample must be one of {', '.join(DOWNSAMPLES)}, got {kind!r}")


def downsampled_channels(kind: str, channels: int) -> int:
    """Channels after :func:`downsample_layer` ``(kind)`` of a ``channels``-channel map.

    Example:
        >>> downsampled_channels("pool", 64), downsampled_channels("space_to_depth", 64)
        (64, 256)
    """
    return channels * 4 if kind == "space_to_depth" else channels
