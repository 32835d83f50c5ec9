"""CIFAR-10 (Krizhevsky 2009) from the official python batches or an image-folder copy.

``<root>/cifar-10-batches-py/`` (downloadable) and ``<root>/cifar10-jpeg.zip`` or
``cifar10-jpeg/`` (``[<top>/]<split>/<class>/<image>``) give the same :class:`CIFAR10Data`.
Decoded JPEGs are cached in :func:`cache_dir`, never in the (read-only) data root.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import pickle
import tarfile
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import torch

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


def _read_pickle(path: Path) -> dict:
    """Unpickle one batch file (``encoding="bytes"``: the files were written by Python 2)."""
    try:
        with open(path, "rb") as f:
            obj = pickle.load(f, encoding="bytes")
    except Exception as e:  # noqa: BLE001 - garbage bytes can make pickle raise anything
        raise DataError(f"corrupt or truncated CIFAR-10 file {path} ({type(e).__name__}); "
                        "delete it and download cifar-10-python.tar.gz again") from None
    if not isinstance(obj, dict):
        raise DataError(f"{path} is not a CIFAR-10 batch (not a dict); replace it")
    return obj


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(data (n, 3072) uint8, labels (n,) int64)`` of one batch file."""
    d = _read_pickle(path)
    data, labels = d.get(b"data"), d.get(b"labels")
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3072 or labels is None or len(labels) != len(data)):
        raise DataError(f"{path} has wrong shape or keys (b'data' {getattr(data, 'shape', '-')},"
                        " want (n, 3072) uint8, n b'labels'); replace it with the official file")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise DataError(f"{path} has labels outside 0..9; replace it with the official file")
    return data, labels


def _check_meta(path: Path) -> None:
    names = _read_pickle(path).get(b"label_names")
    if isinstance(names, list):
        names = tuple(n.decode() if isinstance(n, bytes) else n for n in names)
    if names != CIFAR10_CLASSES:
        raise DataError(f"{path} lists classes {names}, not the standard CIFAR-10 order; "
                        "replace it with the official file")


def _safe_extract(archive: Path, root: Path) -> None:
    """Extract ``cifar-10-batches-py/`` into ``root``, all or nothing. The ``"data"`` filter
    refuses absolute names, ``..`` (path traversal), links leaving the folder, devices."""
    try:
        with tarfile.open(archive, "r:gz") as tar, \
                tempfile.TemporaryDirectory(dir=root, prefix=".cifar10-") as tmp:
            members = [m for m in tar.getmembers() if m.name.split("/")[0] == BATCH_DIR]
            tar.extractall(tmp, members=members, filter="data")
            os.replace(Path(tmp) / BATCH_DIR, root / BATCH_DIR)
    except (tarfile.TarError, EOFError, OSError) as e:
        raise DataError(f"cannot extract {archive} into {root} ({e}); remove it and any "
                        f"partial {BATCH_DIR}/ there, then retry") from None


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
        _safe_extract(archive, root)
    missing = [n for n in needed if not (folder / n).is_file()]
    if missing:
        raise DataError(f"CIFAR-10 batches missing in {folder}: {', '.join(missing)}; "
                        f"extract {ARCHIVE_NAME} into {root} or pass download=True")
    _check_meta(folder / "batches.meta")
    data, labels = map(np.concatenate, zip(*(_read_batch(folder / n) for n in BATCH_FILES[split])))
    return CIFAR10Data(torch.from_numpy(data.reshape(-1, 3, 32, 32)), torch.from_numpy(labels),
                       "python-batches")


def cache_dir() -> Path:
    """Folder for decoded arrays: ``$XDG_CACHE_HOME/layerib/cifar10`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "layerib" / "cifar10"


def _cache_key(path: Path, split: str) -> str:
    """Hash of the source's absolute path, size and mtime (every file's, for a folder)."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(repr(("v1", str(path.resolve()), split, stats)).encode()).hexdigest()


def _index(path: Path, split: str) -> list[tuple[str, int]]:
    """``(name, label)`` of the ``[<top>/]<split>/<class>/<image>`` files, by label then name."""
    try:
        if path.is_dir():
            names = [f.relative_to(path).as_posix() for f in path.rglob("*") if f.is_file()]
        else:
            with zipfile.ZipFile(path) as z:
                names = [i.filename for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"cannot read {path} as a folder or zip ({e}); replace it") from None
    items = []
    for name in names:
        parts = PurePosixPath(name).parts
        if (len(parts) not in (3, 4) or parts[-3] != split or any(p[0] in "._" for p in parts)
                or not name.lower().endswith((".jpg", ".jpeg", ".png"))):
            continue
        if parts[-2] not in CIFAR10_CLASSES:
            raise DataError(f"unknown class folder {parts[-2]!r} in {path} ({name}); "
                            f"class folders must be {', '.join(CIFAR10_CLASSES)}")
        items.append((name, CIFAR10_CLASSES.index(parts[-2])))
    if not items:
        raise DataError(f"no images for split {split!r} in {path}; "
                        f"expected {split}/<class>/<image>.jpg")
    return sorted(items, key=lambda e: (e[1], e[0]))


def _decode_all(path: Path, items: list[tuple[str, int]]) -> np.ndarray:
    """Decode ``items`` (folder or zip entries) with Pillow to ``(N, 32, 32, 3)`` uint8 RGB."""
    from PIL import Image
    out = np.empty((len(items), 32, 32, 3), dtype=np.uint8)
    with contextlib.nullcontext() if path.is_dir() else zipfile.ZipFile(path) as z:
        for i, (name, _) in enumerate(items):
            try:
                data = z.read(name) if z else (path / name).read_bytes()
                with Image.open(io.BytesIO(data)) as im:
                    out[i] = np.asarray(im.convert("RGB"), dtype=np.uint8)  # not 32x32: ValueError
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise DataError(f"cannot read or decode {name} in {path} ({e}); "
                                "replace it with a 32x32 image") from None
    return out


def _save_cache(file: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the arrays to ``file`` atomically (temp file + rename); failure only warns."""
    tmp = file.with_name(f".{file.name}.{os.getpid()}.part")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels)
        os.replace(tmp, file)
    except OSError as e:
        warnings.warn(f"could not cache decoded CIFAR-10 in {file.parent}: {e}", stacklevel=3)
        tmp.unlink(missing_ok=True)


def load_cifar10_image_folder(path: str | os.PathLike, split: str = "train",
                              cache: bool = True) -> CIFAR10Data:
    """Load a split from ``[<top>/]<split>/<class>/<image>`` in a folder or a ``.zip``.

    Images are decoded with Pillow to RGB, ordered by class then file name. Decoding is
    slow, so with ``cache=True`` the arrays are kept in :func:`cache_dir` (never in the data
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
    file = cache_dir() / f"{split}-{_cache_key(path, split)[:20]}.npz"
    arrays = None
    if cache and file.is_file():  # a cache file that cannot be read is simply rebuilt
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError, EOFError,
                                 zipfile.BadZipFile), np.load(file) as z:
            arrays = z["images"], z["labels"]
    if arrays is None:
        items = _index(path, split)
        arrays = _decode_all(path, items), np.array([e[1] for e in items], dtype=np.int64)
        if cache:
            _save_cache(file, *arrays)
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
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (CIFAR10_MEAN, CIFAR10_STD))
    return (images.to(torch.float32) / 255.0 - mean) / std
