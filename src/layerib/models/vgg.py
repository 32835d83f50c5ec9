"""A VGG-style conv-net with batch norm, as a :class:`LayeredNet` of layer-wise units.

Source: Simonyan & Zisserman 2015 (stacks of 3x3 convs, 2x2 max-pools between
them, FC layers on top); batch norm after every conv as in the VGG variants of
the local-learning papers, Belilovsky et al. ICML 2019 ("Greedy layerwise
learning can scale to ImageNet") and Nokland & Eidnes ICML 2019 ("Training
neural networks with local error signals", whose VGG8b is
``channels=(128, 256, 256, 512, 512, 512), pool_after=(2, 4, 5, 6),
widths=(1024, 10)`` here). Our default, sized for two CPU cores, is the six-conv
64-64-128-128-256-256 net with a pool after every pair (32x32 -> 4x4) and one
linear layer to 10 classes (``widths=(256, 10)`` gives VGG8b's 6 conv + 2 FC).

Each conv is ``Conv2d(3x3, padding 1, no bias)``, ``BatchNorm2d``, ReLU, then a
2x2 max-pool if its 1-based index is in ``pool_after``. **Units [choice]**:
``unit="block"`` (default) makes the convs up to and including each pool one
layer-wise unit (three two-conv units at the default), ``unit="conv"`` makes
every conv its own unit (Belilovsky et al.'s and Nokland & Eidnes' granularity).
Why blocks: layer-wise training caches each frozen unit's output on the whole
training set and the critics read it flattened, and a unit that ends in a pool
has a 4x smaller output: at the default, unit 1 gives 64x16x16 = 16384 numbers
per image (3.3 GB float32 for 50000 CIFAR-10 images) against 64x32x32 = 65536
(13.1 GB) for a one-conv unit, which does not fit beside the input on a 23 GB
two-core machine; it also matches the conv-net's "one block = one stage"
(Elad et al. 2019 train "by blocks") and halves the number of stages.

Batch norm and freezing: a unit being trained runs in train mode (batch
statistics; :func:`~layerib.ib.layerwise.train_layer` calls ``train()``), a
frozen unit in eval mode with its running statistics, so its output is a fixed
function. :class:`Unit` keeps that when a caller later puts the whole net in
train mode: a unit none of whose parameters require gradients (what
:meth:`LayeredNet.freeze` leaves) stays in eval mode.

Critic cost (``benchmarks/bench_block_speed.py``, its docstring has the table; one
CPU thread, batch 128, default CIFAR-10 IB settings: joint updates, concat label
critic, hidden 128; CPU seconds per step). The critics read each unit's output
flattened (the label critic reads 4 x 4 channel averages instead with ``y_pool=4``: 15
points better on a 10 % pilot, docs/results/cifar10_vgg.md); the label critic's first layer is ``Linear(C*H*W, 128)``: 2.10M weights
for the default unit 1 (16384 numbers), 8.39M for a 64x32x32 unit (65536); the AA-MINE
critic as many again (its MLP f, unused by the default q-free InfoNCE bound). A
layer-wise IB step of the default units takes 0.80 / 0.41 / 0.32 s against 1.2 s for
one end-to-end CE step of the whole net; the critics' share of it (both bounds,
backward to the unit's output, their Adam) is 0.06 / 0.03 / 0.02 s. With
``unit="conv"``, unit 1 (65536) takes 0.51 s, of which the critics 0.36 s, more
than its conv (0.28 s) but still below a CE step. So the flattened view is affordable
in compute; what costs is (a) memory: the cache of a 65536-wide unit is 13.1 GB on
50000 images (plus 2.6 GB for 10000 test images, and ``forward_cached``'s
``torch.cat`` holds it twice at its peak), (b) float32 denormals: without
``torch.set_flush_denormal(True)`` the InfoNCE softmax weights that underflow into
denormals make the critics' ``(128, 128) @ (128, D)`` backward products 10-15x slower
(default unit 1: 1.32 s per step instead of 0.80 s).

The label critic's half of this is wired: ``y_pool=K`` (``--y-pool``) averages each channel
over a K x K grid before the label critic only (:class:`~layerib.mi.critics.MapPool`),
which bounds I(Y; P L) <= I(Y; L) and changes no I(X; L + eps) term. The rest, proposed and
not wired: a fixed average pool P of the map to
at most 4096 numbers (``AdaptiveAvgPool2d`` to ``C x h x w``, window ``k = HW / hw``;
64x8x8 for a 64x32x32 map, k = 16) before both critics, with the measuring noise
added after it with variance ``sigma^2 / k``. It then measures I(Y; P L), a valid
but looser lower bound on I(Y; L), and I(X; P L + eps') = I(X; P(L + eps)) <=
I(X; L + eps) (data processing): the penalty no longer sees what L carries in its
within-window variation, which the next unit still receives, so the compression it
reports is that of P L only. It does not shrink the cache (the next unit needs L);
for that, recomputing the frozen units on each batch (an eval-mode forward) instead
of caching keeps every measured quantity unchanged.
"""

from __future__ import annotations

from torch import nn

from layerib.models.blocks import DOWNSAMPLES, downsample_layer, downsampled_channels
from layerib.models.layered import LayeredNet
from layerib.models.mlp import mlp

#: the unit granularities :func:`vgg` accepts
VGG_UNITS = ("block", "conv")


class Unit(nn.Sequential):
    """An ``nn.Sequential`` layer-wise unit that stays in eval mode once frozen.

    ``train(True)`` is ignored (eval mode is kept) when the unit has parameters and
    none of them requires gradients, so batch norm in a frozen unit always uses its
    running statistics, whatever mode the enclosing net is put in.
    """

    def train(self, mode: bool = True) -> "Unit":
        params = list(self.parameters())
        if params and not any(p.requires_grad for p in params):
            mode = False
        return super().train(mode)


def check_image_shape(name: str, input_shape: tuple[int, ...], channels: tuple[int, ...],
                      widths: tuple[int, ...]) -> tuple[int, int, int]:
    """``(C, H, W)`` of ``input_shape`` after checking it and the sizes.

    Raises:
        ValueError: not a positive ``(C, H, W)``, or empty / non-positive sizes.
    """
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"{name} wants an input shape (C, H, W), got {tuple(input_shape)}")
    if not channels or min(channels) < 1 or not widths or min(widths) < 1:
        raise ValueError(f"{name}: channels and widths must be positive, got {channels}, {widths}")
    c, h, w = input_shape
    return c, h, w


def default_pools(n_convs: int) -> tuple[int, ...]:
    """Every second conv, and the last one: ``(2, 4, ..)`` (1-based conv indices)."""
    return tuple(sorted(set(range(2, n_convs + 1, 2)) | {n_convs}))


def vgg(input_shape: tuple[int, ...], channels: tuple[int, ...] = (64, 64, 128, 128, 256, 256),
        widths: tuple[int, ...] = (10,), *, pool_after: tuple[int, ...] | None = None,
        batch_norm: bool = True, unit: str = "block", downsample: str = "pool") -> LayeredNet:
    """Build the VGG-style net: conv units, then FC layers (the last linear).

    Args:
        input_shape: ``(C, H, W)`` of one input, e.g. ``(3, 32, 32)``; H and W must be
            divisible by ``2 ** len(pool_after)``.
        channels: output channels of each 3x3 conv.
        widths: widths of the FC layers after the convs (the first flattens the
            last unit's maps); ReLU after all but the last, which is linear.
        pool_after: 1-based indices of the convs followed by a 2x2 max-pool; None:
            every second conv and the last (:func:`default_pools`).
        batch_norm: ``BatchNorm2d`` after every conv (the conv then has no bias).
        unit: ``"block"`` (convs up to each pool form one unit) or ``"conv"``.
        downsample: what halves the map after the convs of ``pool_after``: ``pool`` (2x2
            max-pool) or ``space_to_depth`` (lossless, 4x the channels: the unit's output
            keeps all it computed; :func:`~layerib.models.blocks.downsample_layer`).

    Returns:
        A net mapping ``(batch, C, H, W)`` to ``(batch, widths[-1])``; unit k outputs
        ``(batch, c_k, H_k, W_k)`` and ``feature_dims[k] = c_k * H_k * W_k``, then one
        entry per FC layer.

    Raises:
        ValueError: a bad shape, size, pool index, unit name or downsample, or an input
            that cannot be halved ``len(pool_after)`` times.

    Example:
        >>> vgg((3, 32, 32), (8, 8), downsample="space_to_depth").feature_dims
        [8192, 10]
    """
    c, h, w = check_image_shape("vgg", input_shape, channels, widths)
    pools = default_pools(len(channels)) if pool_after is None else tuple(pool_after)
    if len(set(pools)) != len(pools) or any(not 1 <= p <= len(channels) for p in pools):
        raise ValueError(f"vgg: pool_after must name distinct convs 1..{len(channels)}, "
                         f"got {pools}")
    if downsample not in DOWNSAMPLES:
        raise ValueError(f"vgg: downsample must be one of {', '.join(DOWNSAMPLES)}, "
                         f"got {downsample!r}")
    if unit not in VGG_UNITS:
        raise ValueError(f"vgg: unit must be one of {VGG_UNITS}, got {unit!r}")
    scale = 2 ** len(pools)
    if h % scale or w % scale:
        raise ValueError(f"vgg: input {h}x{w} cannot be halved {len(pools)} times "
                         f"(pool_after={pools}); pass fewer pools")
    units: list[nn.Module] = []
    dims: list[int] = []
    mods: list[nn.Module] = []
    for k, c_out in enumerate(channels, start=1):
        mods.append(nn.Conv2d(c, c_out, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            mods.append(nn.BatchNorm2d(c_out))
        mods.append(nn.ReLU())
        c = c_out
        if k in pools:
            mods.append(downsample_layer(downsample))
            h, w, c = h // 2, w // 2, downsampled_channels(downsample, c_out)
        if unit == "conv" or k in pools or k == len(channels):
            units.append(Unit(*mods))
            dims.append(c * h * w)
            mods = []
    head = mlp((c, h, w), widths)  # its first layer flattens the maps
    return LayeredNet([*units, *head.layers], dims + list(widths))
