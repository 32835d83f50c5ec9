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
