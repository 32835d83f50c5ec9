"""A ResNet-style net with batch norm, as a :class:`LayeredNet` of layer-wise units.

Source: He et al. 2016 ("Deep residual learning for image recognition", the
CIFAR-10 nets of Sec. 4.2: a 3x3 stem conv, stages of basic blocks, the first
block of every stage after the first halving the maps with a stride-2 conv,
projection shortcuts (their option B) where the shape changes, global average
pooling, a linear classifier); greedy training of such stages one at a time as
in Belilovsky et al. ICML 2019 ("Greedy layerwise learning can scale to
ImageNet").

Basic block: ``conv3x3(stride) - BN - ReLU - conv3x3 - BN``, plus the shortcut
(identity, or ``conv1x1(stride) - BN``), then ReLU. Our default, sized for two
CPU cores: stem 64 channels, stages 64-128-256 of one block each (32x32 ->
8x8), i.e. 1 + 3*2 convs and one linear layer ("ResNet-8"; He et al.'s ResNet-20
is ``channels=(16, 32, 64), blocks_per_stage=3``).

**Units [choice]**: ``unit="stage"`` (default) makes each residual stage one
layer-wise unit, ``unit="block"`` each basic block; the stem belongs to the
first unit (alone it would be a one-conv unit with the same 64x32x32 output as
stage 1, the largest map of the net, costing the critics and the cache as much
as stage 1 for one conv). Then the FC layers of ``widths``: the first starts
with a global average pool, so the head reads ``channels[-1]`` numbers. Every
unit is a :class:`~layerib.models.vgg.Unit`: once frozen its batch norm stays
in eval mode (running statistics), see :mod:`layerib.models.vgg`.

Stride-2 convs with padding 1 give ``ceil(H / 2)`` maps, so any input size works
(28x28 -> 28, 14, 7).
"""

from __future__ import annotations

import torch
from torch import nn

from layerib.models.layered import LayeredNet
from layerib.models.mlp import mlp
from layerib.models.vgg import Unit, check_image_shape

#: the unit granularities :func:`resnet` accepts
RESNET_UNITS = ("stage", "block")


def _conv_bn(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out)]


class BasicBlock(nn.Module):
    """He et al.'s basic residual block: ``(batch, c_in, H, W) -> (batch, c_out, H', W')``.

    ``H' = ceil(H / stride)``. The shortcut is the identity when ``stride == 1`` and
    ``c_in == c_out``, else a 1x1 projection with batch norm.

    Args:
        c_in, c_out: input and output channels; stride: 1 or 2.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.body = nn.Sequential(*_conv_bn(c_in, c_out, 3, stride), nn.ReLU(),
                                  *_conv_bn(c_out, c_out, 3, 1))
        self.shortcut = (nn.Identity() if stride == 1 and c_in == c_out
                         else nn.Sequential(*_conv_bn(c_in, c_out, 1, stride)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``relu(body(x) + shortcut(x))``: ``(batch, c_out, H', W')``."""
        return torch.relu(self.body(x) + self.shortcut(x))


def resnet(input_shape: tuple[int, ...], channels: tuple[int, ...] = (64, 128, 256),
           widths: tuple[int, ...] = (10,), *, blocks_per_stage: int = 1,
           unit: str = "stage", stem_stride: int = 1) -> LayeredNet:
    """Build the ResNet-style net: residual units, then global pooling and FC layers.

    Args:
        input_shape: ``(C, H, W)`` of one input, e.g. ``(3, 32, 32)``.
        channels: output channels of each stage (the stem has ``channels[0]``); stage
            s > 1 halves the maps.
        widths: widths of the FC layers after the global average pool; ReLU after
            all but the last, which is linear.
        blocks_per_stage: basic blocks per stage (>= 1).
        unit: ``"stage"`` (one unit per stage) or ``"block"`` (one per basic block);
            the stem is part of the first unit.
        stem_stride: 1 (He et al.'s CIFAR stem) or 2 (halves the maps first: unit 1
            outputs ``channels[0] x 16 x 16`` for a 32x32 input, a 4x smaller cache
            and critic input; see :mod:`layerib.models.vgg` on what those cost).

    Returns:
        A net mapping ``(batch, C, H, W)`` to ``(batch, widths[-1])``; a unit of stage s
        outputs ``(batch, channels[s], H_s, W_s)``, ``H_s = ceil(H / 2^(s-1))`` (one
        more halving with ``stem_stride=2``), and
        ``feature_dims`` are these flattened sizes, then the FC widths.

    Raises:
        ValueError: a bad shape, size, block count, stem stride or unit name.
    """
    c, h, w = check_image_shape("resnet", input_shape, channels, widths)
    if blocks_per_stage < 1:
        raise ValueError(f"resnet: blocks_per_stage must be >= 1, got {blocks_per_stage}")
    if stem_stride not in (1, 2):
        raise ValueError(f"resnet: stem_stride must be 1 or 2, got {stem_stride}")
    if unit not in RESNET_UNITS:
        raise ValueError(f"resnet: unit must be one of {RESNET_UNITS}, got {unit!r}")
    units: list[nn.Module] = []
    dims: list[int] = []
    mods: list[nn.Module] = [*_conv_bn(c, channels[0], 3, stem_stride), nn.ReLU()]  # the stem
    c, h, w = channels[0], -(-h // stem_stride), -(-w // stem_stride)  # ceil
    for s, c_out in enumerate(channels):
        for b in range(blocks_per_stage):
            stride = 2 if s > 0 and b == 0 else 1
            mods.append(BasicBlock(c, c_out, stride))
            c, h, w = c_out, (h + stride - 1) // stride, (w + stride - 1) // stride
            if unit == "block" or b == blocks_per_stage - 1:
                units.append(Unit(*mods))
                dims.append(c * h * w)
                mods = []
    head = mlp((c,), widths).layers
    head[0] = nn.Sequential(nn.AdaptiveAvgPool2d(1), *head[0])  # pool, flatten, linear
    return LayeredNet([*units, *head], dims + list(widths))
