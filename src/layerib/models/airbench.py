"""A small CIFAR-10 net in the style of airbench (Jordan 2024, "94% on CIFAR-10 in 3.29
seconds on a single GPU", arXiv:2404.00498), as a :class:`LayeredNet` of layer-wise units.

The design, read from the paper (not copied): a 2x2 patch conv first (airbench initialises
it to whiten the 2x2 patches of the training images; here it is learnt, as this factory
sees no data), then three conv blocks, each ``conv 3x3 -> 2x2 downsample -> BN -> GELU ->
conv 3x3 -> BN -> GELU`` (the downsample after the first conv, as airbench, so the second
conv runs at the halved size), widths 64 / 256 / 256 (airbench94's;
``channels=(64, 128, 128)`` gives the 0.57 M-parameter size of airbench93), convs without
bias and with the identity (Dirac) initialisation of their first input channels, then a
global max-pool and a linear layer to the classes. Here the stem's map is padded on the
right and bottom to stay 32 x 32 (airbench's unpadded 2x2 conv gives 31 x 31), so every
downsample halves an even size and :class:`~layerib.models.blocks.SpaceToDepth` fits.

**Units**: the stem joins block 1; each block is one layer-wise unit, the head
(global max-pool + linear) the last: four stages on ``(3, 32, 32)`` with outputs ``(64, 16, 16)``,
``(256, 8, 8)``, ``(256, 4, 4)`` and ``(10,)``. Parameters at the default: 1 972 802
(:func:`airbench` example); 569 666 with ``channels=(64, 128, 128)``.
"""

from __future__ import annotations

import torch
from torch import nn

from layerib.models.blocks import DOWNSAMPLES, downsample_layer, downsampled_channels
from layerib.models.layered import LayeredNet
from layerib.models.vgg import Unit, check_image_shape

#: output channels of the 2x2 patch conv (airbench: 2 x 3 x 2 x 2, the whitening's
#: eigenvectors and their negatives)
STEM_CHANNELS = 24


def _conv(c_in: int, c_out: int, dirac: bool) -> nn.Conv2d:
    conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
    if dirac:  # the identity on the first min(c_in, c_out) channels (airbench's init)
        with torch.no_grad():
            k = min(c_in, c_out)
            nn.init.dirac_(conv.weight[:k, :k])
    return conv


def airbench(input_shape: tuple[int, ...], channels: tuple[int, ...] = (64, 256, 256),
             widths: tuple[int, ...] = (10,), *, downsample: str = "pool",
             dirac: bool = True) -> LayeredNet:
    """Build the airbench-style net (see the module doc).

    Args:
        input_shape: ``(C, H, W)`` of one input, e.g. ``(3, 32, 32)``; H and W must be
            divisible by ``2 ** len(channels)``.
        channels: each block's width (one block, and one unit, per entry).
        downsample: ``pool`` (2x2 max-pool, airbench's) or ``space_to_depth`` (lossless:
            the block's second conv reads 4x its width;
            :func:`~layerib.models.blocks.downsample_layer`).
        widths: the head's linear layers after the global max-pool (GELU between them);
            the last gives the logits (one unit each).
        dirac: initialise each 3x3 conv's first channels to the identity.

    Returns:
        A net mapping ``(batch, C, H, W)`` to ``(batch, widths[-1])``: one unit per block
        (output ``(batch, channels[k], H / 2^(k+1), W / 2^(k+1))``), then one per head layer.

    Raises:
        ValueError: a bad shape, width or downsample, or an input that cannot be halved
            ``len(channels)`` times.

    Example:
        >>> net = airbench((3, 32, 32))
        >>> len(net), net.feature_dims, sum(p.numel() for p in net.parameters())
        (4, [16384, 16384, 4096, 10], 1972802)
        >>> net(torch.zeros(2, 3, 32, 32)).shape
        torch.Size([2, 10])
    """
    c, h, w = check_image_shape("airbench", input_shape, channels, widths)
    if downsample not in DOWNSAMPLES:
        raise ValueError(f"airbench: downsample must be one of {', '.join(DOWNSAMPLES)}, "
                         f"got {downsample!r}")
    scale = 2 ** len(channels)
    if h % scale or w % scale:
        raise ValueError(f"airbench: input {h}x{w} cannot be halved {len(channels)} times; "
                         "pass fewer channels (blocks)")
    stem = [nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(c, STEM_CHANNELS, 2), nn.GELU()]
    units, dims, c = [], [], STEM_CHANNELS
    for k, width in enumerate(channels):
        mid = downsampled_channels(downsample, width)
        block = [_conv(c, width, dirac), downsample_layer(downsample), nn.BatchNorm2d(mid),
                 nn.GELU(), _conv(mid, width, dirac), nn.BatchNorm2d(width), nn.GELU()]
        units.append(Unit(*(stem if k == 0 else []), *block))
        h, w, c = h // 2, w // 2, width
        dims.append(c * h * w)
    head, pool = [], [nn.AdaptiveMaxPool2d(1), nn.Flatten()]
    for k, width in enumerate(widths):
        act = [nn.GELU()] if k < len(widths) - 1 else []
        head.append(Unit(*(pool if k == 0 else []), nn.Linear(c, width), *act))
        c = width
    return LayeredNet([*units, *head], [*dims, *widths])
