"""The MLP of the paper's MNIST experiments (Elad et al. 2019, Table 1).

The paper gives no widths; ours default to 784-512-512-10 (two hidden ReLU
layers, then a 10-unit linear last layer with no nonlinearity, as Sec. 4
requires for the read-out to add no capacity).
"""

from __future__ import annotations

import math

from torch import nn

from layerib.models.layered import LayeredNet


def mlp(input_shape: tuple[int, ...], widths: tuple[int, ...] = (512, 512, 10)) -> LayeredNet:
    """Build an MLP as a :class:`LayeredNet`.

    Args:
        input_shape: shape of one input, e.g. ``(1, 28, 28)``; layer 1 flattens it.
        widths: output width of each layer; all but the last are followed by ReLU.

    Returns:
        A net mapping ``(batch, *input_shape)`` to ``(batch, widths[-1])``.
    """
    if len(widths) < 1 or min(widths) < 1:
        raise ValueError(f"widths must be positive integers, got {widths}")
    dims = [math.prod(input_shape), *widths]
    layers = []
    for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        mods: list[nn.Module] = [nn.Flatten()] if k == 0 else []
        mods.append(nn.Linear(a, b))
        if k < len(widths) - 1:
            mods.append(nn.ReLU())
        layers.append(nn.Sequential(*mods))
    return LayeredNet(layers, list(widths))
