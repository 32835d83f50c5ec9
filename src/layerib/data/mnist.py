"""MNIST from the standard IDX files in the torchvision layout ``<root>/MNIST/raw/``.

No torchvision dependency: a small IDX reader (LeCun et al. 1998 file format)
reads gzipped or plain files. Missing files are downloaded from the standard
mirrors with their checksums verified; offline, a :class:`DataError` names the
folder and the four files to put there.
"""

from __future__ import annotations

import gzip
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from layerib.data.download import download_file, resolve_data_root
from layerib.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: split -> (images file, labels file), without the ``.gz`` suffix.
MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
#: md5 of the upstream ``.gz`` files (the torchvision list), checked on download.
MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
]
#: Training-set pixel mean and std of MNIST (after scaling to [0, 1]).
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
_MAGIC = {2049: 1, 2051: 3}  # IDX magic for uint8 labels (1-D) and images (3-D)


@dataclass(frozen=True)
class ImageDataset:
    """An in-memory labelled image set.

    Attributes:
        images: float32 tensor ``(N, C, H, W)``, standardised.
        labels: int64 tensor ``(N,)`` with values in ``0 .. num_classes-1``.
        num_classes: number of classes.
        source: which copy of the data was read (for the run's record).
    """

    images: torch.Tensor
    labels: torch.Tensor
    num_classes: int
    source: str

    def __len__(self) -> int:
        return len(self.labels)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped if its name ends in ``.gz``) of unsigned bytes.

    Returns:
        uint8 array of shape ``(N,)`` for labels or ``(N, rows, cols)`` for images.

    Raises:
        DataError: the file is unreadable, truncated, has a wrong magic number
            or a size that disagrees with its header.
    """
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise DataError(f"cannot read {path}: {e}; delete it and download it again") from None
    if len(raw) < 8:
        raise DataError(f"{path} is truncated ({len(raw)} bytes); delete it and download it again")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in _MAGIC:
        raise DataError(f"{path} has magic number {magic}, not an MNIST IDX file (2049 or 2051); "
                        "replace it with the original file")
    ndim = _MAGIC[magic]
    header = 4 + 4 * ndim
    dims = [int.from_bytes(raw[4 + 4 * k: 8 + 4 * k], "big") for k in range(ndim)]
    if len(raw) != header + int(np.prod(dims)):
        raise DataError(f"{path} is truncated or corrupt: header says {dims}, "
                        f"file has {len(raw) - header} data bytes; delete it and download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _find(raw_dir: Path, name: str) -> Path | None:
    for candidate in (raw_dir / name, raw_dir / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _fetch(raw_dir: Path, name: str, download: bool) -> Path:
    path = _find(raw_dir, name)
    if path is not None:
        return path
    needed = ", ".join(f"{a}.gz, {b}.gz" for a, b in MNIST_FILES.values())
    if not download:
        raise DataError(f"MNIST file {name}(.gz) not found in {raw_dir}; put the four files "
                        f"({needed}) there, or set --data-root / LAYERIB_DATA_ROOT")
    gz = f"{name}.gz"
    try:
        return download_file([m + gz for m in MNIST_MIRRORS], raw_dir / gz, md5=MNIST_MD5[gz])
    except DataError as e:
        raise DataError(f"MNIST not found in {raw_dir} and download failed ({e}); "
                        f"put the four files ({needed}) there, or set --data-root / "
                        "LAYERIB_DATA_ROOT") from None


def load_mnist(data_root=None, split: str = "train", download: bool = True) -> ImageDataset:
    """Load an MNIST split as standardised float tensors.

    Args:
        data_root: folder holding ``MNIST/raw/``; None uses ``$LAYERIB_DATA_ROOT``
            or the per-user cache folder.
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).
        download: fetch missing files from the standard mirrors (md5 checked).

    Returns:
        :class:`ImageDataset` with images ``(N, 1, 28, 28)`` float32,
        standardised with the training mean 0.1307 and std 0.3081.

    Raises:
        ConfigError: unknown split.
        DataError: files missing (and not downloadable), corrupt, or inconsistent.
    """
    if split not in MNIST_FILES:
        raise ConfigError(f"unknown MNIST split {split!r}; use 'train' or 'test'")
    raw_dir = resolve_data_root(data_root) / "MNIST" / "raw"
    img_name, lbl_name = MNIST_FILES[split]
    img_path, lbl_path = _fetch(raw_dir, img_name, download), _fetch(raw_dir, lbl_name, download)
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise DataError(f"{img_path} holds images of shape {images.shape[1:]}, expected (28, 28)")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{lbl_path} has {labels.shape} labels for {len(images)} images in "
                        f"{img_path}; the two files do not belong together")
    if labels.max(initial=0) > 9:
        raise DataError(f"{lbl_path} has label {int(labels.max())}, outside 0..9; "
                        "replace it with the original file")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - MNIST_MEAN) / MNIST_STD
    return ImageDataset(x, torch.from_numpy(labels.astype(np.int64)), 10, f"idx:{raw_dir}")
