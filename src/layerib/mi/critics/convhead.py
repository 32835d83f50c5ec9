"""A conv auxiliary head as the label critic of a conv layer: :class:`ConvHeadCritic`.

The greedy layer-wise nets train each conv layer through a small auxiliary classifier on
its map: one 3x3 conv, batch norm, ReLU, a global average pool and a linear layer to the
classes (Belilovsky et al., "Greedy layerwise learning can scale to ImageNet", ICML 2019,
Sec. 3.1, the auxiliary problem with a 1-conv head; their 2-conv head adds a second conv).
As a critic of I(Y; L) it is the classifier form ``T(l, c) = head(l)_c``: the optimal
critic for a discrete Y is ``log p(c | l)`` up to a function of l, which such a head
represents, and the trainer's exact-marginal bounds (InfoNCE over the classes, DV) read
its ``class_scores``. Unlike the MLP critics it reads the map as a map, with its spatial
layout, at the cost of a conv per step. Our addition to the paper's critics.
"""

from __future__ import annotations

import torch
from torch import nn

from layerib.mi.critics.labels import MapPool, normalise_batch


def view_map_shape(dim_l: int, view: nn.Module | None) -> tuple[int, int, int]:
    """The ``(C, H, W)`` map a conv head reads: the grid of a :class:`MapPool` view, or a
    vector ``(batch, dim_l)`` as ``(dim_l, 1, 1)`` (a head on a layer's vector output).

    Example:
        >>> view_map_shape(64, MapPool((4, 8, 8), 4)), view_map_shape(10, None)
        ((4, 4, 4), (10, 1, 1))
    """
    if isinstance(view, MapPool):
        return (view.shape[0], *view.grid)
    return (dim_l, 1, 1)


class ConvHeadCritic(nn.Module):
    """``T(l, c) = Linear(avgpool(ReLU(BN(conv3x3(l)))))_c`` on a layer's map, for I(Y; L).

    Args:
        map_shape: ``(C, H, W)`` of what it reads (:func:`view_map_shape`).
        num_classes: the number of classes; hidden: the conv's output channels.
        input_norm: as :class:`~layerib.mi.critics.LabelCritic`'s
            (:func:`~layerib.mi.critics.normalise_batch`).
        view: a module applied to the flattened L ``(batch, dim)`` first
            (:class:`~layerib.mi.critics.MapPool`), or None.

    Raises:
        ValueError: ``map_shape`` is not three positive sizes.

    Example:
        >>> critic = ConvHeadCritic((4, 8, 8), 3, hidden=6, view=MapPool((4, 8, 8), 8))
        >>> l, y = torch.randn(5, 4 * 8 * 8), torch.tensor([0, 1, 2, 0, 1])
        >>> critic.class_scores(l).shape, critic.pair_scores(l, y).shape
        (torch.Size([5, 3]), torch.Size([5, 5]))
    """

    def __init__(self, map_shape: tuple[int, int, int], num_classes: int, hidden: int = 128,
                 input_norm: str = "none", view: nn.Module | None = None):
        super().__init__()
        map_shape = tuple(int(s) for s in map_shape)
        if len(map_shape) != 3 or min(map_shape) < 1:
            raise ValueError(f"ConvHeadCritic needs a (C, H, W) map shape, got {map_shape}")
        self.map_shape, self.num_classes = map_shape, num_classes
        self.input_norm, self.view = input_norm, view
        self.body = nn.Sequential(nn.Conv2d(map_shape[0], hidden, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(hidden), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                                  nn.Flatten())
        self.out = nn.Linear(hidden, num_classes)

    def class_scores(self, l: torch.Tensor) -> torch.Tensor:
        """T(l_k, c) for every class c: ``(batch, num_classes)``; ``l`` is ``(batch, dim)``."""
        v = normalise_batch(l if self.view is None else self.view(l), self.input_norm)
        return self.out(self.body(v.reshape(-1, *self.map_shape)))

    def scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs ``(l_k, y_k)``; ``y`` is int64 ``(batch,)``."""
        return self.class_scores(l).gather(1, y.unsqueeze(1)).squeeze(1)

    def pair_scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch_l, batch_y)`` for int64 labels ``y``."""
        return self.class_scores(l)[:, y]
