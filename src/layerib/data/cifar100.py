"""CIFAR-100 (Krizhevsky 2009) from the official python batches ``<root>/cifar-100-python/``.

The folder holds three pickles: ``train`` (50000 images), ``test`` (10000) and ``meta``
(class names). Each batch is a dict with ``b"data"`` ``(n, 3072)`` uint8 (1024 R, then G,
then B, each row-major 32x32) and ``b"fine_labels"`` (0..99); the 20 coarse labels are
not used. Reading and safe extraction are shared with :mod:`layerib.data.cifar10`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from layerib.data.cifar10 import read_batch, read_pickle, safe_extract
from layerib.data.dataset import ImageDataset, standardize_uint8
from layerib.data.download import download_file, file_digest, resolve_data_root
from layerib.errors import ConfigError, DataError

log = logging.getLogger(__name__)

CIFAR100_DIR = "cifar-100-python"
CIFAR100_ARCHIVE = "cifar-100-python.tar.gz"
#: Tried in order; read at each call (as is the md5), so tests may monkeypatch them.
CIFAR100_URLS = ["https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"]
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
CIFAR100_SPLITS = ("train", "test")
#: Per-channel (R, G, B) mean and std of the 50000 training images scaled to [0, 1], as in
#: common use (e.g. chatflip/CalculationMeanStd gives the same means); std over all pixels.
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)
NUM_CLASSES = 100


def _class_names(path: Path) -> tuple[str, ...]:
    names = read_pickle(path, "CIFAR-100", CIFAR100_ARCHIVE).get(b"fine_label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise DataError(f"{path} does not list {NUM_CLASSES} b'fine_label_names'; "
                        "replace it with the official file")
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)


def _download(root: Path) -> None:
    """Fetch the archive into ``root`` unless a copy with the right md5 is there; extract."""
    archive = root / CIFAR100_ARCHIVE
    if not (archive.is_file() and file_digest(archive, "md5") == CIFAR100_MD5):
        log.info("downloading %s into %s", CIFAR100_ARCHIVE, root)
        try:
            download_file(list(CIFAR100_URLS), archive, md5=CIFAR100_MD5)
        except DataError as e:
            raise DataError(f"CIFAR-100 not found in {root / CIFAR100_DIR} and download failed "
                            f"({e}); put {CIFAR100_DIR}/ (train, test, meta) or "
                            f"{CIFAR100_ARCHIVE} there, or set --data-root") from None
    safe_extract(archive, root, CIFAR100_DIR)


def load_cifar100(data_root: str | os.PathLike | None = None, split: str = "train",
                  download: bool = True) -> ImageDataset:
    """Load a CIFAR-100 split as standardised float tensors (fine labels, 100 classes).

    The files are pickles, which can run code when loaded: read only the official files
    (or ones you wrote), never untrusted ones.

    Args:
        data_root: folder holding ``cifar-100-python/``; None uses ``$LAYERIB_DATA_ROOT``
            or the per-user cache folder.
        split: ``"train"`` (50000 images) or ``"test"`` (10000 images).
        download: if files are missing, fetch ``cifar-100-python.tar.gz`` into
            ``data_root`` (md5 checked) and extract it.

    Returns:
        :class:`ImageDataset`: images ``(N, 3, 32, 32)`` float32 in file order, standardised
        per channel with :data:`CIFAR100_MEAN` / :data:`CIFAR100_STD`; labels int64 in
        0..99; the 100 class names; source ``"cifar100-python:<folder>"``.

    Raises:
        ConfigError: unknown split.
        DataError: files missing (and not downloadable, e.g. offline), corrupt,
            truncated or of the wrong shape.
    """
    if split not in CIFAR100_SPLITS:
        raise ConfigError(f"unknown CIFAR-100 split {split!r}; use 'train' or 'test'")
    root = resolve_data_root(data_root)
    folder = root / CIFAR100_DIR
    needed = (split, "meta")
    if download and not all((folder / n).is_file() for n in needed):
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise DataError(f"cannot create data folder {root}: {e.strerror}; "
                            "pass a writable --data-root") from None
        _download(root)
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-100 files missing in {folder}: {', '.join(missing)}; extract "
                        f"{CIFAR100_ARCHIVE} into {root}, set --data-root, or allow download")
    classes = _class_names(folder / "meta")
    data, labels = read_batch(folder / split, b"fine_labels", NUM_CLASSES, "CIFAR-100",
                              CIFAR100_ARCHIVE)
    images = standardize_uint8(data.reshape(-1, 3, 32, 32), CIFAR100_MEAN, CIFAR100_STD)
    return ImageDataset(images, torch.from_numpy(labels), NUM_CLASSES,
                        f"cifar100-python:{folder}", classes)
