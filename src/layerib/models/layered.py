"""Nets as ordered lists of layers, each of which can be frozen.

Layer-by-layer training (Elad et al. 2019, Sec. 4) needs three things from a
net: its layers in order, the sub-net F_i of the first i layers, and the
output of every layer. :class:`LayeredNet` provides exactly that for any list
of ``nn.Module`` layers (MLP layers here, conv blocks in
:mod:`layerib.models`' conv-net).
"""

from __future__ import annotations

import torch
from torch import nn

from layerib.models.units import describe_unit


class LayeredNet(nn.Module):
    """An ordered list of layers ``L_1 .. L_K`` applied in sequence.

    Args:
        layers: the layers; layer i maps layer i-1's output to its own.
        feature_dims: output size of each layer (flattened), for critic sizing.
    """

    def __init__(self, layers: list[nn.Module], feature_dims: list[int]):
        super().__init__()
        if len(layers) != len(feature_dims):
            raise ValueError("one feature size per layer is needed")
        self.layers = nn.ModuleList(layers)
        self.feature_dims = list(feature_dims)

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def unit_descriptions(self) -> list[str]:
        """One line per layer-wise unit, in order, e.g. ``"Conv2d(1, 16, 3) + BatchNorm2d +
        ReLU + MaxPool2d"`` (see :func:`~layerib.models.units.describe_unit`): where the units
        fell, to print and to save with a run. Read from the layers, so always current.

        Example:
            >>> net = LayeredNet([nn.Sequential(nn.Linear(4, 8), nn.ReLU()), nn.Linear(8, 2)], [8, 2])
            >>> net.unit_descriptions
            ['Linear(4, 8) + ReLU', 'Linear(8, 2)']
        """
        return [describe_unit(layer) for layer in self.layers]

    def describe(self) -> str:
        """The units as text, one ``unit i: ...`` line each (1-based, as layers are counted).

        Example:
            >>> print(LayeredNet([nn.Linear(4, 8), nn.Linear(8, 2)], [8, 2]).describe())
            unit 1: Linear(4, 8)
            unit 2: Linear(8, 2)
        """
        return "\n".join(f"unit {i}: {d}" for i, d in enumerate(self.unit_descriptions, start=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the last layer: ``(batch, feature_dims[-1])``."""
        for layer in self.layers:
            x = layer(x)
        return x

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output ``[L_1(x), ..., L_K(x)]``, each ``(batch, ...)``."""
        out = []
        for layer in self.layers:
            x = layer(x)
            out.append(x)
        return out

    def prefix(self, i: int, start: int = 0) -> nn.Sequential:
        """The sub-net of layers ``start+1 .. i`` (1-based ``i``): F_i when ``start = 0``."""
        if not 0 <= start < i <= len(self.layers):
            raise ValueError(f"layers {start + 1}..{i} do not exist in a {len(self)}-layer net")
        return nn.Sequential(*self.layers[start:i])

    def freeze(self, i: int) -> None:
        """Freeze layer i (1-based): no gradients, eval mode."""
        layer = self.layers[i - 1]
        layer.requires_grad_(False)
        layer.eval()

    def is_frozen(self, i: int) -> bool:
        """True when no parameter of layer i (1-based) requires gradients."""
        return not any(p.requires_grad for p in self.layers[i - 1].parameters())
