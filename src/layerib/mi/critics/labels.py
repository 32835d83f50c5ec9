"""Label critics for I(Y; L) with discrete Y: :class:`LabelCritic`, :class:`LabelHeadsCritic`.

Both give ``class_scores(l)``, T(l, c) for every class ``(batch, num_classes)``, so a bound
can take the class marginal exactly (``marginal="exact"``). What they read of L:
:func:`normalise_batch` (``input_norm``) and :class:`MapPool` (a pooled view of conv maps).
"""

from __future__ import annotations

import torch
from torch import nn

from layerib.mi.critics.mlp import ConcatCritic, _mlp


#: How a label critic reads L (``LabelCritic(input_norm=...)``): as it is, divided by the
#: batch's RMS, or batch-centred and divided by its RMS spread.
INPUT_NORMS = ("none", "rms", "standard")


def normalise_batch(l: torch.Tensor, mode: str = "rms", eps: float = 1e-12) -> torch.Tensor:
    """``l`` ``(batch, dim)`` over the batch: ``"rms"``: ``l / sqrt(mean ||l_k||^2)``;
    ``"standard"``: ``(l - mean) / sqrt(mean ||l_k - mean||^2)``; ``"none"``: ``l``.

    Differentiable (the statistics are not detached), so a critic reading it is invariant to
    a rescaling of all of ``l`` (and, for ``"standard"``, to a shift): a layer can neither
    raise I(Y; L) by growing its output nor lose it by shrinking it. All-zero rows stay zero.
    """
    if mode == "none":
        return l
    if mode == "standard":
        l = l - l.mean(0, keepdim=True)
    elif mode != "rms":
        raise ValueError(f"input_norm must be one of {', '.join(INPUT_NORMS)}, got {mode!r}")
    return l / (l.pow(2).sum(-1).mean() + eps).sqrt()


class MapPool(nn.Module):
    """A label critic's view of a conv layer's output: each channel averaged over a grid.

    Reads flattened maps ``(batch, C * H * W)`` as ``(batch, C, H, W)`` and averages each
    channel over ``min(k, H) x min(k, W)`` cells (``torch.nn.functional.adaptive_avg_pool2d``),
    giving ``(batch, C * min(k, H) * min(k, W))`` (:attr:`out_dim`). A critic that reads the
    view bounds I(Y; view(L)) <= I(Y; L) (data processing), so its estimate stays a lower bound
    on I(Y; L); the pooling is differentiable, and the layer is trained through it. Our
    addition (the paper's critics read the flattened output; the auxiliary heads of greedy
    layer-wise training, Belilovsky et al. 2019 and Nokland & Eidnes 2019, read pooled maps).

    Args:
        shape: ``(C, H, W)``, one row's map shape; k: grid cells per side (>= 1).

    Raises:
        ValueError: ``shape`` is not three positive sizes, or ``k < 1``.
    """

    def __init__(self, shape: tuple[int, ...], k: int):
        super().__init__()
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1 or int(k) < 1:
            raise ValueError(f"MapPool needs a (C, H, W) map shape and k >= 1, got {shape} and {k}")
        self.shape, self.grid = shape, (min(int(k), shape[1]), min(int(k), shape[2]))
        self.out_dim = shape[0] * self.grid[0] * self.grid[1]

    def forward(self, l: torch.Tensor) -> torch.Tensor:
        """``(batch, C * H * W)`` -> ``(batch, out_dim)``."""
        return torch.nn.functional.adaptive_avg_pool2d(l.reshape(-1, *self.shape),
                                                       self.grid).flatten(1)

    def extra_repr(self) -> str:
        return f"shape={self.shape}, grid={self.grid}"


def label_view(shape: tuple[int, ...], pool: int) -> MapPool | None:
    """The view a label critic reads for layer outputs of ``shape`` (one row, unflattened):
    :class:`MapPool` when ``pool >= 1`` and the output is a ``(C, H, W)`` map, else None
    (the flattened output; vector outputs are always read as they are)."""
    return MapPool(shape, pool) if pool >= 1 and len(shape) == 3 else None


class LabelCritic(ConcatCritic):
    """Concatenation critic on ``(l, onehot(y))`` for I(Y; L_i) with ``num_classes`` classes.

    ``input_norm`` (:func:`normalise_batch`): ``"none"`` (the paper's critic), ``"rms"`` or
    ``"standard"``: the critic reads l divided by the batch's RMS (and centred), so the
    I(Y; L) estimate and its gradient are invariant to the scale of the layer's output
    (issue 15: read as it is, the layer raises the bound by growing its output, ~30x under
    the alternating update at beta <= 0.1, and the next layer's ReLUs die on that input).
    ``view``: a module applied to l first (:class:`MapPool`; None: l as it is); ``dim_l`` is
    then the size of the view's output.
    """

    def __init__(self, dim_l: int, num_classes: int, hidden: int = 256, depth: int = 1,
                 input_norm: str = "none", view: nn.Module | None = None):
        super().__init__(dim_l, num_classes, hidden, depth)
        self.num_classes = num_classes
        self.input_norm = input_norm
        self.view = view

    def class_scores(self, l: torch.Tensor) -> torch.Tensor:
        """T(l_k, c) for every class c: shape ``(batch, num_classes)``.

        Since ``W_v onehot(c)`` is column c of ``W_v``, this is one broadcast add.
        """
        l = normalise_batch(l if self.view is None else self.view(l), self.input_norm)
        h = torch.relu(self.in_u(l).unsqueeze(1) + self.in_v.weight.T.unsqueeze(0))
        return self.head(h).squeeze(-1)

    def scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs ``(l_k, y_k)``; ``y`` is int64 ``(batch,)``."""
        return self.class_scores(l).gather(1, y.unsqueeze(1)).squeeze(1)

    def pair_scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch_l, batch_y)`` for int64 labels ``y``."""
        return self.class_scores(l)[:, y]


class LabelHeadsCritic(nn.Module):
    """Critic for I(Y; L_i) with one output per class: ``T(l, c) = MLP(l)_c``.

    The optimal critic for a discrete Y is ``log p(c | l) - log p(c)`` + const, a
    function of l per class, which an MLP with ``num_classes`` outputs represents
    directly (the Barber-Agakov / classifier form). Same interface as
    :class:`LabelCritic`; all class scores cost one MLP pass, ``(batch, hidden)``
    activations instead of :class:`LabelCritic`'s ``(batch, num_classes, hidden)``
    (its broadcast add, ReLU and their gradients dominated the profile of an IB
    layer stage). Our addition; the paper's critic is the concatenation MLP.

    Args:
        dim_l: size of l ``(batch, dim_l)`` (of its view's output with ``view``);
        num_classes: C; hidden: MLP width; depth: number of hidden layers;
        input_norm, view: as :class:`LabelCritic`'s.
    """

    def __init__(self, dim_l: int, num_classes: int, hidden: int = 256, depth: int = 1,
                 input_norm: str = "none", view: nn.Module | None = None):
        super().__init__()
        self.num_classes = num_classes
        self.input_norm, self.view = input_norm, view  # as LabelCritic's
        self.net = _mlp([dim_l] + [hidden] * depth + [num_classes])

    def class_scores(self, l: torch.Tensor) -> torch.Tensor:
        """T(l_k, c) for every class c: shape ``(batch, num_classes)``."""
        return self.net(normalise_batch(l if self.view is None else self.view(l), self.input_norm))

    def scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores on aligned pairs ``(l_k, y_k)``; ``y`` is int64 ``(batch,)``."""
        return self.class_scores(l).gather(1, y.unsqueeze(1)).squeeze(1)

    def pair_scores(self, l: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Scores ``(batch_l, batch_y)`` for int64 labels ``y``."""
        return self.class_scores(l)[:, y]
