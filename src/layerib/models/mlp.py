"""The MLP of the paper's MNIST experiments (Elad et al. 2019, Table 1).

The paper gives no widths; ours default to 784-512-512-10 (two hidden ReLU
layers, then a 10-unit linear last layer with no nonlinearity, as Sec. 4
requires for the read-out to add no capacity). ``activation="tanh"`` gives the
saturating nets of the information-plane debate (Saxe et al., ICLR 2018, used
784-1024-20-20-20-10 with tanh and with ReLU on MNIST).
"""

from __future__ import annotations

import math

from torch import nn

from layerib.models.layered import LayeredNet


#: ``activation`` name -> the nonlinearity after every layer but the last
ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}


def mlp(input_shape: tuple[int, ...], widths: tuple[int, ...] = (512, 512, 10),
        activation: str = "relu") -> LayeredNet:
    """Build an MLP as a :class:`LayeredNet`.

    Args:
        input_shape: shape of one input, e.g. ``(1, 28, 28)``; layer 1 flattens it.
        widths: output width of each layer; all but the last are followed by the activation.
        activation: ``"relu"`` or ``"tanh"`` (:data:`ACTIVATIONS`).

    Returns:
        A net mapping ``(batch, *input_shape)`` to ``(batch, widths[-1])``.

    Raises:
        ValueError: non-positive widths or an unknown activation.

    Example:
        >>> mlp((1, 28, 28), (1024, 20, 20, 20, 10), activation="tanh").feature_dims
        [1024, 20, 20, 20, 10]
    """
    if len(widths) < 1 or min(widths) < 1:
        raise ValueError(f"widths must be positive integers, got {widths}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation {activation!r} is not one of {', '.join(ACTIVATIONS)}")
    dims = [math.prod(input_shape), *widths]
    layers = []
    for k, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        mods: list[nn.Module] = [nn.Flatten()] if k == 0 else []
        mods.append(nn.Linear(a, b))
        if k < len(widths) - 1:
            mods.append(ACTIVATIONS[activation]())
        layers.append(nn.Sequential(*mods))
    return LayeredNet(layers, list(widths))
