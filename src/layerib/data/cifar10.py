"""CIFAR-10 (Krizhevsky 2009) from the official python batches or an image-folder copy.

``<root>/cifar-10-batches-py/`` (downloadable) and ``<root>/cifar10-jpeg.zip`` or
``cifar10-jpeg/`` (``[<top>/]<split>/<class>/<image>``) give the same :class:`CIFAR10Data`.
Decoded JPEGs are cached in :func:`cache_dir`, never in the (read-only) data root.
"""

from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from layerib.data import image_folder
from layerib.data.download import download_file, file_digest, resolve_data_root
from layerib.errors import ConfigError, DataError

#: Class names in label order 0..9.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
#: Per-channel (R, G, B) mean and std of the 50000 original training images scaled
#: to [0, 1]; the JPEG copy gives 0.4913/0.4821/0.4465 and 0.2452/0.2428/0.2606.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

BATCH_DIR = "cifar-10-batches-py"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
ARCHIVE_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCH_FILES = {"train": tuple(f"data_batch_{i}" for i in range(1, 6)), "test": ("test_batch",)}
FOLDER_NAMES = ("cifar10-jpeg.zip", "cifar10-jpeg")
#: sha256 of the image-folder archives whose content is known, with what each one is.
KNOWN_ZIP_SHA256 = {
    "71447dfb241615b9c35c7dda2f40314ef12c873dea92d59cf5f3257bdff794c8":
        "the JPEG (quality 75) copy of the real CIFAR-10 train and test images",
}


@dataclass(frozen=True)
class CIFAR10Data:
    """One split of CIFAR-10, as returned by every loader here."""

    images: torch.Tensor  # (N, 3, 32, 32) torch.uint8, RGB
    labels: torch.Tensor  # (N,) torch.int64 in 0..9, indexing `classes`
    source: str  # the copy read: "python-batches" or "jpeg-image-folder"
    classes: tuple[str, ...] = CIFAR10_CLASSES  # class names in label order


def _check_split(split: str) -> None:
    if split not in BATCH_FILES:
        raise ConfigError(f"unknown CIFAR-10 split {split!r}; use 'train' or 'test'")


def read_pickle(path: Path, what: str = "CIFAR-10", archive: str = ARCHIVE_NAME) -> dict:
    """Unpickle one batch file (``encoding="bytes"``: the files were written by Python 2).

    Only for the official files: a pickle can run code when loaded.

    Args:
        path: the batch or meta file.
        what: the set's name, for messages.
        archive: the archive to download again, for messages.

    Raises:
        DataError: the file is corrupt or truncated, or does not hold a dict.
    """
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as e:  # noqa: BLE001 - garbage bytes can make pickle raise anything
        raise DataError(f"corrupt or truncated {what} file {path} ({type(e).__name__}); "
                        f"delete it and download {archive} again") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a {what} batch (not a dict); replace it")
    return obj


def read_batch(path: Path, label_key: bytes = b"labels", num_classes: int = 10,
               what: str = "CIFAR-10",
               archive: str = ARCHIVE_NAME) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(data (n, 3072) uint8, labels (n,) int64)`` of one batch file.

    Args:
        path: the batch file (a pickled dict with ``b"data"`` and ``label_key``).
        label_key: key of the labels (``b"labels"``; CIFAR-100: ``b"fine_labels"``).
        num_classes: labels must lie in ``0 .. num_classes-1``.
        what, archive: the set's name and archive, for messages.

    Raises:
        DataError: the file is corrupt, or has wrong keys, shapes or labels.
    """
    d = read_pickle(path, what, archive)
    data, labels = d.get(b"data"), d.get(label_key)
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3072 or labels is None or len(labels) != len(data)):
        raise DataError(f"{path} has wrong shape or keys (b'data' {getattr(data, 'shape', '-')},"
                        f" want (n, 3072) uint8, n {label_key!r}); "
                        "replace it with the official file")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise DataError(f"{path} has labels outside 0..{num_classes - 1}; "
                        "replace it with the official file")
    return data, labels


def _check_meta(path: Path) -> None:
    names = read_pickle(path).get(b"label_names")
    if isinstance(names, list):
        names = tuple(n.decode() if isinstance(n, bytes) else n for n in names)
    if names != CIFAR10_CLASSES:
        raise DataError(f"{path} lists classes {names}, not the standard CIFAR-10 order; "
                        "replace it with the official file")


def safe_extract(archive: Path, root: Path, folder: str = BATCH_DIR) -> None:
    """Extract ``<folder>/`` of a ``.tar.gz`` into ``root``, all or nothing.

    The ``"data"`` filter refuses absolute names, ``..`` (path traversal), links leaving
    the folder, and devices; the folder is renamed into place only when complete.

    Raises:
        DataError: the archive is corrupt, unsafe, or lacks ``folder``; or ``root`` is
            not writable.
    """
    try:
        with tarfile.open(archive, "r:gz") as tar, \
                tempfile.TemporaryDirectory(dir=root, prefix=f".{folder}-") as tmp:
            members = [m for m in tar.getmembers() if m.name.split("/")[0] == folder]
            tar.extractall(tmp, members=members, filter="data")
            os.replace(Path(tmp) / folder, root / folder)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"cannot extract {archive} into {root} ({e}); remove it and any "
                        f"partial {folder}/ there, then retry") from None


def load_cifar10_batches(root: str | os.PathLike, split: str = "train",
                         download: bool = False) -> CIFAR10Data:
    """Load a split from the official python batches in ``<root>/cifar-10-batches-py/``.

    The files are pickles, which can run code when loaded: read only the official files
    (or ones you wrote), never untrusted ones.

    Args:
        root: folder holding ``cifar-10-batches-py/``.
        split: ``"train"`` (data_batch_1..5, 50000 images) or ``"test"`` (test_batch).
        download: if files are missing, fetch ``cifar-10-python.tar.gz`` into ``root``
            (md5-checked) and extract it.

    Returns:
        :class:`CIFAR10Data` in file order, source ``"python-batches"``.

    Raises:
        ConfigError: unknown split.
        DataError: files missing (not downloaded), or corrupt, truncated or wrong-shape.
    """
    _check_split(split)
    root = Path(root).expanduser()
    folder, archive = root / BATCH_DIR, root / ARCHIVE_NAME
    needed = (*BATCH_FILES[split], "batches.meta")
    if download and not all((folder / n).is_file() for n in needed):
        if not (archive.is_file() and file_digest(archive, "md5") == ARCHIVE_MD5):
            download_file([ARCHIVE_URL], archive, md5=ARCHIVE_MD5)
        safe_extract(archive, root)
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 batches missing in {folder}: {', '.join(missing)}; "
                        f"extract {ARCHIVE_NAME} into {root} or pass download=True")
    _check_meta(folder / "batches.meta")
    data, labels = map(np.concatenate, zip(*(read_batch(folder / n) for n in BATCH_FILES[split])))
    return CIFAR10Data(torch.from_numpy(data.reshape(-1, 3, 32, 32)), torch.from_numpy(labels),
                       "python-batches")


def check_archive(path: str | os.PathLike) -> str | None:
    """Check an image-folder ``.zip`` against :data:`KNOWN_ZIP_SHA256`; warn when it is not one.

    A zip's CRCs only say that its entries were not damaged after zipping: an altered image
    re-zipped passes them. Its sha256 says whether it is a copy whose content is known.

    Args:
        path: the ``.zip`` (a folder, or any other file, is not checked: None).

    Returns:
        The archive's sha256 (hex), or None for a folder.

    Warns:
        UserWarning: the sha256 is not a known copy's (altered, or another copy): the
            message names both digests and what to do.

    Example:
        >>> import tempfile, zipfile, warnings, pathlib
        >>> z = pathlib.Path(tempfile.mkdtemp()) / "c.zip"
        >>> zipfile.ZipFile(z, "w").close()
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     digest = check_archive(z)
        >>> "not that of a known copy" in str(w[0].message)
        True
    """
    path = Path(path)
    if not path.is_file() or path.suffix.lower() != ".zip":
        return None
    digest = file_digest(path, "sha256")
    if digest not in KNOWN_ZIP_SHA256:
        known = ", ".join(f"{d[:12]}... ({what})" for d, what in KNOWN_ZIP_SHA256.items())
        warnings.warn(f"{path.name}: sha256 {digest[:12]}... is not that of a known copy "
                      f"({known}); its images may have been altered or it is another copy, so "
                      "accuracies may differ: re-fetch it, or use the python batches "
                      "(--cifar-source batches)", stacklevel=3)
    return digest


def cache_dir() -> Path:
    """Folder for decoded arrays: ``$XDG_CACHE_HOME/layerib/cifar10`` or ``~/.cache/...``."""
    return image_folder.cache_dir("cifar10")


def _index(path: Path, split: str) -> list[tuple[str, int]]:
    """``(name, label)`` of the ``[<top>/]<split>/<class>/<image>`` files, by label then name."""
    return image_folder.label_images(
        image_folder.list_images(path, split), CIFAR10_CLASSES,
        f"unknown class folder {{cls!r}} in {path} ({{name}}); "
        f"class folders must be {', '.join(CIFAR10_CLASSES)}")


def _decode_all(path: Path, items: list[tuple[str, int]]) -> np.ndarray:
    """Decode ``items`` (folder or zip entries) with Pillow to ``(N, 32, 32, 3)`` uint8 RGB."""
    return image_folder.decode_images(path, [name for name, _ in items], "RGB", size=(32, 32))


def load_cifar10_image_folder(path: str | os.PathLike, split: str = "train",
                              cache: bool = True) -> CIFAR10Data:
    """Load a split from ``[<top>/]<split>/<class>/<image>`` in a folder or a ``.zip``.

    Images are decoded with Pillow to RGB, ordered by class then file name. A ``.zip`` is
    first checked against the known copies' sha256 (:func:`check_archive`: a warning when
    it is none of them). Decoding is slow, so with ``cache=True`` the arrays are kept in :func:`cache_dir` (never in the data
    root) under a hash of the source's path, size and mtime (each file's, for a folder).

    Args:
        path: the folder or zip file (e.g. ``cifar10-jpeg.zip``).
        split: ``"train"`` or ``"test"``.
        cache: read and write the decoded-array cache.

    Returns:
        :class:`CIFAR10Data`, source ``"jpeg-image-folder"``.

    Raises:
        ConfigError: unknown split.
        DataError: path missing or unreadable, an unknown class folder, no images for
            the split, or an image that cannot be decoded or is not 32x32.
    """
    _check_split(split)
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"CIFAR-10 image folder {path} not found; pass the folder or .zip")
    check_archive(path)
    file = cache_dir() / f"{split}-{image_folder.cache_key(path, split)[:20]}.npz"
    arrays = image_folder.load_cache(file) if cache else None
    if arrays is None:
        items = _index(path, split)
        arrays = _decode_all(path, items), np.array([e[1] for e in items], dtype=np.int64)
        if cache:
            image_folder.save_cache(file, *arrays)
    images = torch.from_numpy(arrays[0]).permute(0, 3, 1, 2).contiguous()
    return CIFAR10Data(images, torch.from_numpy(arrays[1]), "jpeg-image-folder")


def load_cifar10(data_root: str | os.PathLike | None = None, split: str = "train",
                 source: str = "auto", download: bool = False) -> CIFAR10Data:
    """Load a CIFAR-10 split from ``data_root`` (None: ``$LAYERIB_DATA_ROOT`` or user cache).

    Args:
        data_root: folder holding one of the copies.
        split: ``"train"`` or ``"test"``.
        source: ``"batches"``, ``"folder"``, or ``"auto"``: ``cifar-10-batches-py/`` if
            present, else ``cifar10-jpeg.zip`` or ``cifar10-jpeg/``, else downloaded batches.
        download: allow downloading the python batches into ``data_root``.

    Returns:
        :class:`CIFAR10Data`; its ``source`` says which copy was read.

    Raises:
        ConfigError: unknown split or source.
        DataError: no copy found (the message says what to put where), or a corrupt file.
    """
    _check_split(split)
    if source not in ("auto", "batches", "folder"):
        raise ConfigError(f"unknown CIFAR-10 source {source!r}; use 'auto', 'batches' or 'folder'")
    root = resolve_data_root(data_root)
    folders = [root / n for n in FOLDER_NAMES if (root / n).exists()]
    if source == "batches" or (source == "auto" and ((root / BATCH_DIR).is_dir() or
                                                     (download and not folders))):
        return load_cifar10_batches(root, split, download=download)
    if folders:
        return load_cifar10_image_folder(folders[0], split)
    raise DataError(f"no CIFAR-10 in {root}: put {BATCH_DIR}/, cifar10-jpeg.zip or cifar10-jpeg/"
                    " there, set --data-root, or pass download=True to fetch the batches")


def normalize_cifar10(images: torch.Tensor) -> torch.Tensor:
    """Scale to [0, 1], then standardise each channel: ``(x / 255 - mean) / std``.

    Uses :data:`CIFAR10_MEAN` / :data:`CIFAR10_STD` (original training-set statistics).
    Takes ``(..., 3, H, W)`` torch.uint8; returns float32 of the same shape.

    Raises:
        ConfigError: not uint8 or not 3 channels at dim -3.
    """
    if images.dtype != torch.uint8 or images.ndim < 3 or images.shape[-3] != 3:
        raise ConfigError(f"want uint8 (..., 3, H, W), got {images.dtype} {list(images.shape)}")
    mean, std = (torch.tensor(v, device=images.device).view(3, 1, 1) for v in (CIFAR10_MEAN, CIFAR10_STD))
    return (images.to(torch.float32) / 255.0 - mean) / std
