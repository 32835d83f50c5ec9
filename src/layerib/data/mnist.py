"""MNIST (LeCun et al. 1998) from the IDX files in the torchvision layout ``<root>/MNIST/raw/``.

The reader and loader are shared with Fashion-MNIST and KMNIST (:mod:`layerib.data.idx`);
this module holds MNIST's mirrors, md5 values and statistics. ``ImageDataset`` and
``read_idx`` are re-exported here for code that imports them from this module.
"""

from __future__ import annotations

import dataclasses
import os

from layerib.data.dataset import ImageDataset
from layerib.data.idx import IDX_FILES, IdxSpec, load_idx, read_idx

__all__ = ["ImageDataset", "MNIST", "MNIST_FILES", "MNIST_MD5", "MNIST_MEAN", "MNIST_MIRRORS",
           "MNIST_STD", "load_mnist", "read_idx"]

#: split -> (images file, labels file), without the ``.gz`` suffix.
MNIST_FILES = IDX_FILES
#: md5 of the upstream ``.gz`` files (the torchvision list), checked on download.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: Tried in order; read at each call, so tests may monkeypatch this list.
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
#: Training-set pixel mean and std of MNIST (after scaling to [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081

MNIST = IdxSpec(name="MNIST", folder="MNIST", mirrors=tuple(MNIST_MIRRORS), md5=MNIST_MD5,
                mean=MNIST_MEAN, std=MNIST_STD, classes=tuple(str(d) for d in range(10)))


def load_mnist(data_root: str | os.PathLike | None = None, split: str = "train",
               download: bool = True) -> ImageDataset:
    """Load an MNIST split as standardised float tensors.

    Args:
        data_root: folder holding ``MNIST/raw/``; None uses ``$LAYERIB_DATA_ROOT``
            or the per-user cache folder.
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).
        download: fetch missing files from :data:`MNIST_MIRRORS` (md5 checked).

    Returns:
        :class:`ImageDataset` with images ``(N, 1, 28, 28)`` float32,
        standardised with the training mean 0.1307 and std 0.3081.

    Raises:
        ConfigError: unknown split.
        DataError: files missing (and not downloadable), corrupt, or inconsistent.
    """
    spec = dataclasses.replace(MNIST, mirrors=tuple(MNIST_MIRRORS))
    return load_idx(spec, data_root, split, download)
