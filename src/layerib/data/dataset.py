"""The in-memory labelled data set every loader returns, and its standardisation.

Standardisation is ``(x - mean) / std`` with statistics of the *training* split
(given constants for the standard sets, computed for ``folder:`` and ``npz:``
sets). A channel or feature that is constant in training (std 0) carries no
information, so it is set to 0 in every split instead of dividing by zero.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

#: Values 0..255 of a uint8 pixel, for statistics from a histogram.
_LEVELS = np.arange(256, dtype=np.float64)


@dataclass(frozen=True)
class ImageDataset:
    """An in-memory labelled image (or feature) set.

    Attributes:
        images: float32 tensor ``(N, C, H, W)``, standardised (``(N, D)`` for an
            ``npz:`` set of feature vectors).
        labels: int64 tensor ``(N,)`` with values in ``0 .. num_classes-1``.
        num_classes: number of classes.
        source: which copy of the data was read (for the run's record).
        classes: class names in label order, when the copy names them (else empty).
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    source: str
    classes: tuple[str, ...] = ()

    def __len__(self) -> int:
        return len(self.labels)


def uint8_channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of uint8 images scaled to [0, 1], exact, in float64.

    Computed from a 256-bin histogram per channel, so it needs no float copy of
    the images.

    Args:
        images: uint8 array ``(N, C, ...)``.

    Returns:
        ``(mean, std)``, each float64 ``(C,)``; std is the population std (ddof 0).
    """
    means, stds = [], []
    for c in range(images.shape[1]):
        counts = np.bincount(images[:, c].ravel(), minlength=256).astype(np.float64)
        total = counts.sum()
        mean = float(counts @ _LEVELS) / total
        var = float(counts @ (_LEVELS - mean) ** 2) / total
        means.append(mean / 255.0)
        stds.append(np.sqrt(var) / 255.0)
    return np.array(means), np.array(stds)


def standardize(x: torch.Tensor, mean: Sequence[float] | np.ndarray,
                std: Sequence[float] | np.ndarray, channel_dim: int = 1) -> torch.Tensor:
    """``(x - mean) / std`` along ``channel_dim``; channels with std 0 become exactly 0.

    Args:
        x: float tensor, e.g. ``(N, C, H, W)`` images in [0, 1] or ``(N, D)`` features.
        mean: one value per channel (``x.shape[channel_dim]`` of them).
        std: the same number of values, >= 0.
        channel_dim: the dimension that ``mean`` and ``std`` index.

    Returns:
        float32 tensor of ``x``'s shape.
    """
    shape = [1] * x.ndim
    shape[channel_dim] = -1
    m = torch.as_tensor(np.asarray(mean, dtype=np.float64)).view(shape)
    s = torch.as_tensor(np.asarray(std, dtype=np.float64)).view(shape)
    out = (x.to(torch.float64) - m) / torch.where(s > 0, s, torch.ones_like(s))
    return torch.where(s > 0, out, torch.zeros_like(out)).to(torch.float32)


def standardize_uint8(images: np.ndarray | torch.Tensor, mean: Sequence[float] | np.ndarray,
                      std: Sequence[float] | np.ndarray) -> torch.Tensor:
    """Scale uint8 ``(N, C, H, W)`` images to [0, 1], then :func:`standardize` per channel.

    Works in chunks of images so that no float64 copy of the whole set is made.

    Returns:
        float32 tensor ``(N, C, H, W)``.
    """
    x = torch.as_tensor(images)
    out = torch.empty(x.shape, dtype=torch.float32)
    step = max(1, (1 << 22) // max(1, x[0].numel()) if len(x) else 1)
    for i in range(0, len(x), step):
        out[i:i + step] = standardize(x[i:i + step].to(torch.float32) / 255.0, mean, std)
    return out


class Uint8Images:
    """uint8 images kept as they are, standardised per batch when indexed.

    ``images[idx]`` (an index tensor, a slice, a mask) is ``normalize(raw[idx])`` on
    :attr:`device`, float32: the same values as standardising the whole set first (the
    standardisation is element-wise), at a quarter of the memory (CIFAR-10's training
    set: 147 MiB against 586 MiB). ``len``, ``shape``, ``ndim``, ``device`` and
    ``to(device)`` (which moves the uint8 tensor) behave as a tensor's; :meth:`subset`
    keeps rows without converting them.

    Args:
        raw: uint8 tensor ``(N, C, H, W)``.
        normalize: element-wise ``uint8 tensor -> float32 tensor`` (e.g.
            :func:`layerib.data.cifar10.normalize_cifar10`).
    """

    dtype = torch.float32

    def __init__(self, raw: torch.Tensor, normalize):
        self.raw, self.normalize = raw, normalize

    def __len__(self) -> int:
        return len(self.raw)

    @property
    def shape(self) -> torch.Size:
        return self.raw.shape

    @property
    def ndim(self) -> int:
        return self.raw.ndim

    def dim(self) -> int:
        return self.raw.ndim

    @property
    def device(self) -> torch.device:
        return self.raw.device

    def to(self, device) -> "Uint8Images":
        return Uint8Images(self.raw.to(device), self.normalize)

    def subset(self, idx) -> "Uint8Images":
        """The rows ``idx`` (indices or a mask), still uint8."""
        return Uint8Images(self.raw[idx], self.normalize)

    def __getitem__(self, idx) -> torch.Tensor:
        return self.normalize(self.raw[idx])

    def numel(self) -> int:
        return self.raw.numel()


def cat_rows(a, b):
    """The rows of ``a`` then ``b``, as the same kind of store: ``torch.cat`` of tensors, or
    one :class:`Uint8Images` (still uint8) of two with the same ``normalize``.

    Raises:
        TypeError: other stores (a :class:`~layerib.data.streamed.DatasetRows` is read per
            batch and cannot be concatenated in memory).
    """
    if isinstance(a, Uint8Images) and isinstance(b, Uint8Images) and a.normalize is b.normalize:
        return Uint8Images(torch.cat([a.raw, b.raw]), a.normalize)
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return torch.cat([a, b])
    raise TypeError(f"cannot concatenate rows of {type(a).__name__} and {type(b).__name__}")


def take_rows(images, idx):
    """``images[idx]`` as the same kind of store: a tensor's rows, or the ``subset(idx)`` of a
    store read per batch (:class:`Uint8Images`, :class:`~layerib.data.streamed.DatasetRows`)."""
    return images.subset(idx) if hasattr(images, "subset") else images[idx]
