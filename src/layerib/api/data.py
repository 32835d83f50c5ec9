"""A user's data as the in-memory labelled set the trainers use."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from layerib.data.mnist import ImageDataset
from layerib.errors import ConfigError


def _tensor(a, what: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu()
    if isinstance(a, np.ndarray):
        return torch.from_numpy(np.ascontiguousarray(a))
    raise ConfigError(f"{what} must be a torch tensor or a numpy array, got {type(a).__name__}")


def as_labelled(data, what: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """``(x (N, ...) float32, y (N,) int64)`` from ``(x, y)`` tensors/arrays or a ``Dataset``.

    A ``torch.utils.data.Dataset`` must yield ``(x, int label)`` pairs; it is read once,
    in order, into memory.

    Raises:
        ConfigError: another type, mismatched lengths, non-integer or negative labels,
            non-finite inputs, or fewer than 2 samples.
    """
    if isinstance(data, Dataset):
        xs, ys = [], []
        for xb, yb in DataLoader(data, batch_size=1024, shuffle=False):
            xs.append(torch.as_tensor(xb))
            ys.append(torch.as_tensor(yb))
        if not xs:
            raise ConfigError(f"{what}: the Dataset is empty")
        x, y = torch.cat(xs), torch.cat(ys)
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        x, y = _tensor(data[0], f"{what}[0] (inputs)"), _tensor(data[1], f"{what}[1] (labels)")
    else:
        raise ConfigError(f"{what} must be (x, y) tensors or numpy arrays, or a "
                          f"torch.utils.data.Dataset of (x, label) pairs; got {type(data).__name__}")
    if len(x) != len(y) or len(x) < 2:
        raise ConfigError(f"{what}: {len(x)} inputs and {len(y)} labels; need the same number, >= 2")
    y = _class_indices(y, what)
    x = x.float()
    if not torch.isfinite(x).all():
        raise ConfigError(f"{what}: inputs hold NaN or inf; clean or impute them first")
    return x, y


def as_streamed(data: Dataset, what: str = "train", workers: int = 0):
    """``(DatasetRows, labels)``: a ``Dataset`` read per batch (:mod:`layerib.data.streamed`),
    its labels and inputs checked in one pass (the inputs are not kept)."""
    from layerib.data.streamed import DatasetRows, dataset_labels

    def check(xb):
        if not torch.isfinite(xb.float()).all():
            raise ConfigError(f"{what}: inputs hold NaN or inf; clean or impute them first")
    y = dataset_labels(data, workers, check=check)
    if len(y) < 2:
        raise ConfigError(f"{what}: {len(y)} items; need >= 2")
    return DatasetRows(data, workers), _class_indices(y, what)


def _class_indices(y: torch.Tensor, what: str) -> torch.Tensor:
    """Labels as int64 class indices ``(N,)``; floats that are not whole numbers, or negative
    labels, are a one-line :class:`ConfigError`."""
    if y.is_floating_point() and not torch.equal(y, y.round()):
        raise ConfigError(f"{what}: labels must be integers 0..C-1 (class indices), got floats")
    y = y.reshape(len(y)).long()
    if int(y.min()) < 0:
        raise ConfigError(f"{what}: labels must be integers 0..C-1, got {int(y.min())}")
    return y


def as_image_dataset(train, test, source: str = "python", *, stream: bool = False,
                     workers: int = 0) -> tuple[ImageDataset, ImageDataset | None]:
    """Both splits as :class:`ImageDataset` (``num_classes`` = largest label + 1 over both).

    With ``stream``, a split given as a ``Dataset`` is read per batch (``workers`` loader
    processes) instead of into memory: its ``images`` is a
    :class:`~layerib.data.streamed.DatasetRows`.
    """
    def one(data, what):
        if stream and isinstance(data, Dataset):
            return as_streamed(data, what, workers)
        return as_labelled(data, what)
    x, y = one(train, "train")
    xt, yt = one(test, "test") if test is not None else (None, None)
    if xt is not None and xt.shape[1:] != x.shape[1:]:
        raise ConfigError(f"test inputs have shape {tuple(xt.shape[1:])}, train inputs "
                          f"{tuple(x.shape[1:])}; give both splits the same shape")
    classes = int(max(int(y.max()), int(yt.max()) if yt is not None else 0)) + 1
    tr = ImageDataset(x, y, classes, source)
    return tr, (ImageDataset(xt, yt, classes, source) if xt is not None else None)
