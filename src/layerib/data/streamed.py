"""A ``torch.utils.data.Dataset`` read batch by batch instead of loaded into memory.

:class:`DatasetRows` stands where the trainers expect the training inputs ``x``
(``x[idx]``, ``len(x)``, ``x.shape``, ``x.device``): each ``x[idx]`` loads the items ``idx``
of the data set through a ``DataLoader`` (``workers`` processes sharing each batch, kept
alive between batches; pinned memory when the target device is CUDA) and collates them as
a ``DataLoader`` does. The indices are those of the stage's own seeded loop
(:class:`~layerib.utils.loop.BatchLoop`), so a run reading a data set this way trains on
the same batches as one holding it as a tensor: the same result (bit-identical on CPU)
when the data set returns the same values (each loader draws its workers' seeds from a
generator of its own, never from the global one the critics are initialised from). Memory: one batch of inputs (and, for
layer-wise training, the frozen layers' outputs, :mod:`layerib.ib.cache`).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Subset


class _Plan:
    """The batch sampler of a :class:`DatasetRows`' loader: the index lists of the next call."""

    def __init__(self):
        self.batches: list[list[int]] = []

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class DatasetRows:
    """The inputs of a ``Dataset`` of ``(x, label)`` items, loaded per batch, as float32.

    Args:
        dataset: a map-style ``Dataset``.
        workers: loader processes (0: load in this process).
        device: where batches go (pinned host memory first when it is CUDA).
    """

    dtype = torch.float32

    def __init__(self, dataset: Dataset, workers: int = 0, device: torch.device | str = "cpu"):
        self.dataset, self.workers, self.device = dataset, int(workers), torch.device(device)
        self._plan, self._loader, self._row_shape = _Plan(), None, None

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def shape(self) -> torch.Size:
        if self._row_shape is None:
            self._row_shape = tuple(torch.as_tensor(self.dataset[0][0]).shape)
        return torch.Size((len(self), *self._row_shape))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def dim(self) -> int:
        return self.ndim

    def to(self, device) -> "DatasetRows":
        return DatasetRows(self.dataset, self.workers, device)

    def subset(self, idx) -> "DatasetRows":
        """The items ``idx`` (indices or a boolean mask), still read per batch."""
        idx = torch.as_tensor(idx)
        if idx.dtype == torch.bool:
            idx = idx.nonzero().reshape(-1)
        return DatasetRows(Subset(self.dataset, idx.reshape(-1).tolist()), self.workers,
                           self.device)

    def _loader_for(self) -> DataLoader:
        if self._loader is None:
            pin = self.device.type == "cuda"
            self._loader = DataLoader(self.dataset, batch_sampler=self._plan,
                                      num_workers=self.workers, pin_memory=pin,
                                      persistent_workers=self.workers > 0,
                                      generator=torch.Generator())  # not the global RNG
        return self._loader

    def __getitem__(self, idx) -> torch.Tensor:
        if isinstance(idx, slice):
            rows = list(range(*idx.indices(len(self))))
        elif isinstance(idx, int):
            return self[[idx]][0]
        else:
            idx = torch.as_tensor(idx)
            if idx.dtype == torch.bool:
                idx = idx.nonzero()
            rows = idx.reshape(-1).cpu().tolist()
        if not rows:
            return torch.empty((0, *self.shape[1:]), dtype=torch.float32, device=self.device)
        parts = max(1, min(self.workers, len(rows)))
        self._plan.batches = [p.tolist() for p in np.array_split(np.asarray(rows), parts)]
        xs = [torch.as_tensor(b[0]) for b in self._loader_for()]
        x = (xs[0] if len(xs) == 1 else torch.cat(xs)).float()
        return x.to(self.device, non_blocking=self.device.type == "cuda")

    def __getstate__(self):
        return {"dataset": self.dataset, "workers": self.workers, "device": self.device}

    def __setstate__(self, s):
        self.__init__(s["dataset"], s["workers"], s["device"])


class LabelledRows(Dataset):
    """``(images[i], int(labels[i]))`` items of rows held in memory (a tensor, or a store
    indexed like one such as :class:`~layerib.data.dataset.Uint8Images`): a loaded set as a
    ``Dataset``, for :class:`DatasetRows` (``layerib train --workers``)."""

    def __init__(self, images, labels: torch.Tensor):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[torch.tensor([i])][0], int(self.labels[i])


def stream_rows(data, workers: int):
    """``data`` (an :class:`~layerib.data.dataset.ImageDataset` in memory) with its images
    read per batch through :class:`DatasetRows` over :class:`LabelledRows` (``workers``
    loader processes); the labels stay the tensor they are."""
    return dataclasses.replace(data, images=DatasetRows(LabelledRows(data.images, data.labels),
                                                        workers))


def dataset_labels(dataset: Dataset, workers: int = 0, batch_size: int = 1024,
                   check=None) -> torch.Tensor:
    """Every item's label, in order, from one pass over ``dataset`` (``check(x_batch)`` is
    called on each batch of inputs, e.g. a finiteness check); the inputs are not kept."""
    ys = []
    for xb, yb in DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                             generator=torch.Generator()):
        if check is not None:
            check(torch.as_tensor(xb))
        ys.append(torch.as_tensor(yb))
    return torch.cat(ys) if ys else torch.empty(0, dtype=torch.int64)
