"""The "deep conv-net" of the paper's CIFAR-10 row of Table 1, and the net factory.

The paper (Elad et al. 2019, Sec. 4) trains "a deep conv-net" on CIFAR-10
layer by layer "by blocks" and gives no architecture **[choice]**. Ours:

* ``len(channels)`` conv blocks, block k = ``Conv2d(c_{k-1}, c_k, 3, padding=1)``,
  ReLU, ``MaxPool2d(2)``: a 32x32 input gives ``c_k x 32/2^k x 32/2^k`` maps;
* then fully connected layers of ``widths`` (the first flattens the last
  block's maps), ReLU after all but the last, which is linear (Sec. 4: the
  read-out then adds no capacity).

Each block and each FC layer is one layer of the :class:`LayeredNet`, so
layer-wise training trains and freezes them in turn. The MI critics of a
block see its **flattened** output maps (``c_k * H_k * W_k`` numbers, e.g.
32 x 16 x 16 = 8192 for block 1 at the default channels): the AA-MINE
Gaussian-noise critic then compares ``L + eps`` with ``L`` over the full
map, the quantity the paper's noise model defines, and the label critic's
first linear layer reads every position. A pooled view (channel means)
would be cheaper, but it would measure I(X; pool(L) + eps), not
I(X; L + eps). Measured on one CPU thread, batch 128, blocks (32, 64): a
layer-wise step of block 1 (conv, both critics on the 8192-wide flattened
maps, one critic and one layer update) takes about 0.33 s, the same as one
end-to-end CE step of the whole net (0.33 s); the critics' matrix products
are about a third of it, so the flattened view is affordable.
"""

from __future__ import annotations

import math

from torch import nn

from layerib.models.layered import LayeredNet
from layerib.models.mlp import mlp


def conv_net(input_shape: tuple[int, ...], channels: tuple[int, ...] = (32, 64),
             widths: tuple[int, ...] = (256, 10)) -> LayeredNet:
    """Build the conv-net as a :class:`LayeredNet` of conv blocks then FC layers.

    Args:
        input_shape: ``(C, H, W)`` of one input, e.g. ``(3, 32, 32)``; H and W must
            be divisible by ``2 ** len(channels)``.
        channels: output channels of each conv block.
        widths: widths of the FC layers after the blocks; the last is linear.

    Returns:
        A net mapping ``(batch, C, H, W)`` to ``(batch, widths[-1])``; its
        ``feature_dims`` are the flattened output sizes of each layer.

    Raises:
        ValueError: bad shapes or non-positive sizes.
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"conv_net wants an input shape (C, H, W), got {input_shape}")
    if not channels or min(channels) < 1 or not widths or min(widths) < 1:
        raise ValueError(f"channels and widths must be positive, got {channels}, {widths}")
    c, h, w = input_shape
    scale = 2 ** len(channels)
    if h % scale or w % scale:
        raise ValueError(f"input {h}x{w} cannot be halved {len(channels)} times")
    layers: list[nn.Module] = []
    dims: list[int] = []
    for k, c_out in enumerate(channels):
        layers.append(nn.Sequential(nn.Conv2d(c, c_out, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)))
        c, h, w = c_out, h // 2, w // 2
        dims.append(c * h * w)
    head = mlp((c, h, w), widths)  # layer 1 flattens the maps
    return LayeredNet([*layers, *head.layers], dims + list(widths))


def count_parameters(net: nn.Module) -> int:
    """Number of parameters of ``net``."""
    return sum(math.prod(p.shape) for p in net.parameters())
