"""The IDX family (MNIST, Fashion-MNIST, KMNIST): one reader and one loader.

Each set is four IDX files (LeCun et al. 1998 format, gzipped or plain) in the
torchvision layout ``<root>/<folder>/raw/``; an :class:`IdxSpec` names the folder,
mirrors, md5 values and training statistics. No torchvision dependency. Missing
files are downloaded from the spec's mirrors with their md5 verified; offline, a
:class:`DataError` names the folder and the four files to put there.
"""

from __future__ import annotations

import gzip
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from layerib.data.dataset import ImageDataset
from layerib.data.download import download_file, resolve_data_root
from layerib.errors import ConfigError, DataError

log = logging.getLogger(__name__)

#: split -> (images file, labels file), without the ``.gz`` suffix (the same for every set).
IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_MAGIC = {2049: 1, 2051: 3}  # IDX magic for uint8 labels (1-D) and images (3-D)


@dataclass(frozen=True)
class IdxSpec:
    """What differs between the sets of the IDX family.

    Attributes:
        name: the set's name in messages, e.g. ``"Fashion-MNIST"``.
        folder: folder under the data root, e.g. ``"FashionMNIST"`` (files in ``<folder>/raw``).
        mirrors: base URLs ending in ``/``, tried in order.
        md5: md5 of each upstream ``.gz`` file, by file name.
        mean: training-set pixel mean after scaling to [0, 1].
        std: training-set pixel std after scaling to [0, 1].
        classes: the class names in label order.
        image_size: ``(rows, cols)`` of every image.
    """

    name: str
    folder: str
    mirrors: tuple[str, ...]
    md5: dict[str, str]
    mean: float
    std: float
    classes: tuple[str, ...]
    image_size: tuple[int, int] = (28, 28)


def read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (gzipped if its name ends in ``.gz``) of unsigned bytes.

    Returns:
        uint8 array of shape ``(N,)`` for labels or ``(N, rows, cols)`` for images.

    Raises:
        DataError: the file is unreadable, truncated, has a wrong magic number
            or a size that disagrees with its header.
    """
    path = Path(path)
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
        raise DataError(f"{path} has magic number {magic}, not an MNIST IDX file (2049 or 2051, "
                        "unsigned bytes); replace it with the original file")
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


def _fetch(spec: IdxSpec, raw_dir: Path, name: str, download: bool) -> Path:
    path = _find(raw_dir, name)
    if path is not None:
        return path
    needed = ", ".join(f"{a}.gz, {b}.gz" for a, b in IDX_FILES.values())
    if not download:
        raise DataError(f"{spec.name} file {name}(.gz) not found in {raw_dir}; put the four files "
                        f"({needed}) there, or set --data-root / LAYERIB_DATA_ROOT")
    gz = f"{name}.gz"
    log.info("downloading %s %s into %s", spec.name, gz, raw_dir)
    try:
        return download_file([m + gz for m in spec.mirrors], raw_dir / gz, md5=spec.md5[gz])
    except DataError as e:
        raise DataError(f"{spec.name} not found in {raw_dir} and download failed ({e}); "
                        f"put the four files ({needed}) there, or set --data-root / "
                        "LAYERIB_DATA_ROOT") from None


def load_idx(spec: IdxSpec, data_root: str | os.PathLike | None = None, split: str = "train",
             download: bool = True) -> ImageDataset:
    """Load one split of an IDX-family set as standardised float tensors.

    Args:
        spec: which set (folder, mirrors, md5 values, statistics).
        data_root: folder holding ``<spec.folder>/raw/``; None uses ``$LAYERIB_DATA_ROOT``
            or the per-user cache folder.
        split: ``"train"`` or ``"test"``.
        download: fetch missing files from ``spec.mirrors`` (md5 checked).

    Returns:
        :class:`ImageDataset` with images ``(N, 1, rows, cols)`` float32, standardised
        as ``(x / 255 - spec.mean) / spec.std``; source ``"idx:<raw folder>"``.

    Raises:
        ConfigError: unknown split.
        DataError: files missing (and not downloadable), corrupt, or inconsistent.
    """
    if split not in IDX_FILES:
        raise ConfigError(f"unknown {spec.name} split {split!r}; use 'train' or 'test'")
    raw_dir = resolve_data_root(data_root) / spec.folder / "raw"
    img_name, lbl_name = IDX_FILES[split]
    img_path = _fetch(spec, raw_dir, img_name, download)
    lbl_path = _fetch(spec, raw_dir, lbl_name, download)
    images, labels = read_idx(img_path), read_idx(lbl_path)
    if images.ndim != 3 or images.shape[1:] != spec.image_size:
        raise DataError(f"{img_path} holds images of shape {images.shape[1:]}, "
                        f"expected {spec.image_size}; replace it with the original file")
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{lbl_path} has {labels.shape} labels for {len(images)} images in "
                        f"{img_path}; the two files do not belong together")
    k = len(spec.classes)
    if labels.max(initial=0) >= k:
        raise DataError(f"{lbl_path} has label {int(labels.max())}, outside 0..{k - 1}; "
                        "replace it with the original file")
    x = torch.from_numpy(images.astype(np.float32) / 255.0).unsqueeze(1)
    x = (x - spec.mean) / spec.std
    return ImageDataset(x, torch.from_numpy(labels.astype(np.int64)), k, f"idx:{raw_dir}",
                        spec.classes)
