"""Image folders and zips laid out as ``[<top>/]<split>/<class>/<image>``: index, decode, cache.

Shared by the CIFAR-10 JPEG copy (:mod:`layerib.data.cifar10`) and ``folder:PATH`` sets
(:mod:`layerib.data.folder`). Files and folders whose names start with ``.`` or ``_``
(e.g. ``__MACOSX``) are skipped. Decoded arrays are cached in a per-user cache folder,
never in the (possibly read-only) data root.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image

from layerib.errors import DataError

#: File name endings read as images (case-insensitive).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")


def cache_dir(kind: str) -> Path:
    """Folder for decoded arrays: ``$XDG_CACHE_HOME/layerib/<kind>`` or ``~/.cache/...``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "layerib" / kind


def cache_key(path: Path, *parts: object) -> str:
    """Hash of the source's absolute path, size and mtime (every file's, for a folder)
    and of ``parts`` (e.g. the split)."""
    files = sorted(path.rglob("*")) if path.is_dir() else [path]
    stats = [(str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in files]
    return hashlib.sha256(repr(("v1", str(path.resolve()), *parts, stats)).encode()).hexdigest()


def list_images(path: Path, split: str) -> list[tuple[str, str]]:
    """``(entry name, class folder)`` of every image of ``split`` in a folder or zip.

    Entry names are relative to ``path`` (posix), e.g. ``"train/cat/0001.png"``.

    Raises:
        DataError: ``path`` cannot be read as a folder or zip, or ``split`` has no images.
    """
    try:
        if path.is_dir():
            names = [f.relative_to(path).as_posix() for f in path.rglob("*") if f.is_file()]
        else:
            with zipfile.ZipFile(path) as z:
                names = [i.filename for i in z.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"cannot read {path} as a folder or zip ({e}); replace it") from None
    found = []
    for name in names:
        parts = PurePosixPath(name).parts
        if (len(parts) in (3, 4) and parts[-3] == split and not any(p[0] in "._" for p in parts)
                and name.lower().endswith(IMAGE_SUFFIXES)):
            found.append((name, parts[-2]))
    if not found:
        raise DataError(f"no images for split {split!r} in {path}; "
                        f"expected {split}/<class>/<image>.jpg (or .png)")
    return found


def label_images(found: list[tuple[str, str]], classes: Sequence[str],
                 unknown: str) -> list[tuple[str, int]]:
    """``(name, label)`` with label = index of the class folder in ``classes``, sorted by
    label then name.

    Args:
        found: from :func:`list_images`.
        classes: class names in label order.
        unknown: message template for a class folder not in ``classes``, with fields
            ``{cls}`` and ``{name}``.

    Raises:
        DataError: a class folder is not in ``classes`` (message from ``unknown``).
    """
    index = {c: k for k, c in enumerate(classes)}
    items = []
    for name, cls in found:
        if cls not in index:
            raise DataError(unknown.format(cls=cls, name=name))
        items.append((name, index[cls]))
    return sorted(items, key=lambda e: (e[1], e[0]))


def decode_images(path: Path, names: Sequence[str], mode: str = "RGB",
                  size: tuple[int, int] | None = None, reference: str = "") -> np.ndarray:
    """Decode images (folder files or zip entries) with Pillow to one uint8 array.

    Args:
        path: the folder or zip holding the entries.
        names: entry names relative to ``path``.
        mode: Pillow mode to convert to: ``"RGB"`` (3 channels) or ``"L"`` (1 channel).
        size: required ``(width, height)``; None: that of the first image.
        reference: where ``size`` comes from, for the message (e.g. ``"the train split"``).

    Returns:
        uint8 array ``(N, H, W, C)``.

    Raises:
        DataError: an entry cannot be read or decoded, or is not of the required size
            (the message names the file and the size it should have).
    """
    out = None
    with contextlib.nullcontext() if path.is_dir() else zipfile.ZipFile(path) as z:
        for i, name in enumerate(names):
            try:
                data = z.read(name) if z else (path / name).read_bytes()
                with Image.open(io.BytesIO(data)) as im:
                    arr = np.asarray(im.convert(mode), dtype=np.uint8)
            except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
                raise DataError(f"cannot read or decode {name} in {path} ({e}); "
                                "replace it with a valid image") from None
            if arr.ndim == 2:
                arr = arr[:, :, None]
            if out is None:
                if size is None:
                    size, reference = (arr.shape[1], arr.shape[0]), name
                out = np.empty((len(names), size[1], size[0], arr.shape[2]), dtype=np.uint8)
            if arr.shape[:2] != out.shape[1:3]:
                like = f"like {reference}" if reference else "as required"
                raise DataError(f"image {name} in {path} is {arr.shape[1]}x{arr.shape[0]}, not "
                                f"{size[0]}x{size[1]} {like}; resize all images to "
                                f"{size[0]}x{size[1]}")
            out[i] = arr
    if out is None:
        raise DataError(f"no images to decode in {path}; expected <split>/<class>/<image> files")
    return out


def load_cache(file: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """``(images, labels)`` from a cache file, or None if it is missing or unreadable
    (an unreadable cache file is simply rebuilt)."""
    if not file.is_file():
        return None
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError, EOFError,
                             zipfile.BadZipFile), np.load(file) as z:
        return z["images"], z["labels"]
    return None


def save_cache(file: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """Write the arrays to ``file`` atomically (temp file + rename); failure only warns."""
    tmp = file.with_name(f".{file.name}.{os.getpid()}.part")
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.savez(f, images=images, labels=labels)
        os.replace(tmp, file)
    except OSError as e:
        warnings.warn(f"could not cache decoded images in {file.parent}: {e}", stacklevel=3)
        tmp.unlink(missing_ok=True)
