"""``npz:PATH``: a labelled set from a NumPy ``.npz`` with ``x_train, y_train, x_test, y_test``.

Write one with ``np.savez(PATH, x_train=..., y_train=..., x_test=..., y_test=...)``:

* ``x_*``: numbers (not bool), shape ``(N, D)`` feature vectors, ``(N, H, W)`` grey
  images (read as ``(N, 1, H, W)``) or ``(N, C, H, W)`` images; the same item shape in
  both splits; finite. uint8 arrays are divided by 255 first.
* ``y_*``: integer class labels ``0 .. C-1``, shape ``(N,)``, every class present in the
  training split and no test label missing from it; ``num_classes = C``.

Standardised with the *training* split's mean and std per feature (``(N, D)``) or per
channel (images), both splits alike; a feature or channel constant in training is
set to 0 in both splits (no division by zero). The file is read with ``allow_pickle=False``.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import torch

from layerib.data.dataset import ImageDataset, standardize
from layerib.errors import ConfigError, DataError

KEYS = ("x_train", "y_train", "x_test", "y_test")
SPLITS = ("train", "test")
_SAVE = "np.savez(PATH, x_train=..., y_train=..., x_test=..., y_test=...)"


def _read(path: Path) -> dict[str, np.ndarray]:
    """The four arrays of the file, by key."""
    with open(path, "rb") as f:
        magic = f.read(6)
    if not magic.startswith(b"PK") and not magic.startswith(b"\x93NUMPY"):
        raise DataError(f"{path} is not a .npz archive (no zip header); write it with {_SAVE}")
    try:
        z = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"cannot read {path} as a .npz file ({e}); write it with "
                        f"{_SAVE}") from None
    if not isinstance(z, np.lib.npyio.NpzFile):
        raise DataError(f"{path} holds one array, not a .npz archive; write it with {_SAVE}")
    with z:
        missing = [k for k in KEYS if k not in z.files]
        if missing:
            raise DataError(f"{path} lacks key(s) {', '.join(missing)} (has "
                            f"{', '.join(z.files) or 'none'}); save all four with {_SAVE}")
        arrays = {}
        for k in KEYS:
            try:
                arrays[k] = z[k]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
                # e.g. an object array, refused without pickle, or a truncated member
                raise DataError(f"{path}: {k} cannot be read ({e}); store it as a plain "
                                "numeric array") from None
        return arrays


def _check(path: Path, a: dict[str, np.ndarray]) -> None:
    """Raise a one-line :class:`DataError` naming the first bad key and its fix."""
    for s in SPLITS:
        x, y = a[f"x_{s}"], a[f"y_{s}"]
        if x.dtype.kind not in "uif":
            raise DataError(f"{path}: x_{s} has dtype {x.dtype}; store numbers "
                            "(uint8 pixels, integers or floats)")
        if x.ndim not in (2, 3, 4):
            raise DataError(f"{path}: x_{s} has shape {x.shape}; want (N, D), (N, H, W) or "
                            "(N, C, H, W): reshape it")
        if y.dtype.kind not in "ui":
            raise DataError(f"{path}: y_{s} has dtype {y.dtype}; store integer class labels "
                            "0..C-1 (y.astype(np.int64))")
        if y.ndim != 1:
            raise DataError(f"{path}: y_{s} has shape {y.shape}; store labels as one 1-D "
                            "array of shape (N,) (y.ravel())")
        if len(x) != len(y):
            raise DataError(f"{path}: x_{s} has {len(x)} items but y_{s} has {len(y)}; "
                            "give each item one label")
        if len(x) == 0:
            raise DataError(f"{path}: x_{s} has no items; store at least one per split")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            raise DataError(f"{path}: x_{s} has {int((~np.isfinite(x)).sum())} non-finite "
                            "values (NaN or inf); replace them or drop those items")
        if y.min() < 0:
            raise DataError(f"{path}: y_{s} has negative label {int(y.min())}; "
                            "labels must be 0..C-1")
    train_classes = np.unique(a["y_train"])
    unseen = np.setdiff1d(np.unique(a["y_test"]), train_classes)
    if unseen.size:
        raise DataError(f"{path}: y_test has label(s) {_list(unseen)} that y_train never takes; "
                        "every test class needs training items (drop those test items or "
                        "add training items of those classes)")
    gaps = np.setdiff1d(np.arange(int(train_classes.max()) + 1), train_classes)
    if gaps.size:
        raise DataError(f"{path}: y_train never takes label(s) {_list(gaps)} of 0.."
                        f"{int(train_classes.max())}; labels must be 0..C-1 with every class "
                        "present: remap them with np.unique(y, return_inverse=True)")
    if a["x_test"].shape[1:] != a["x_train"].shape[1:]:
        raise DataError(f"{path}: x_test items have shape {a['x_test'].shape[1:]}, x_train items "
                        f"{a['x_train'].shape[1:]}; give both splits the same item shape")


def _list(labels: np.ndarray, most: int = 8) -> str:
    shown = ", ".join(str(int(v)) for v in labels[:most])
    return shown + (f" and {len(labels) - most} more" if len(labels) > most else "")


def _as_float(x: np.ndarray) -> np.ndarray:
    """float64 copy in [0, 1] for uint8, as-is otherwise; ``(N, H, W)`` -> ``(N, 1, H, W)``."""
    f = x.astype(np.float64) / 255.0 if x.dtype == np.uint8 else x.astype(np.float64)
    return f[:, None] if f.ndim == 3 else f


def train_statistics(x_train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of float training inputs per feature ``(N, D)`` or channel ``(N, C, H, W)``.

    Returns:
        ``(mean, std)`` float64, each ``(D,)`` or ``(C,)``; std is exactly 0 where the
        feature or channel is constant (so it is set to 0, never divided by ~0).
    """
    axes = (0,) if x_train.ndim == 2 else (0, 2, 3)
    mean, std = x_train.mean(axis=axes), x_train.std(axis=axes)
    std[x_train.max(axis=axes) == x_train.min(axis=axes)] = 0.0
    return mean, std


def load_npz(path: str | os.PathLike, split: str = "train") -> ImageDataset:
    """Load a split of a ``.npz`` set, standardised with the training statistics.

    Args:
        path: the ``.npz`` file (see the module docstring for its keys).
        split: ``"train"`` or ``"test"``.

    Returns:
        :class:`ImageDataset`: ``images`` float32 ``(N, D)`` or ``(N, C, H, W)`` (from
        ``(N, H, W)``: C = 1), labels int64, ``num_classes`` = max label + 1 (every class
        has training items), source ``"npz:<absolute path>"``.

    Raises:
        ConfigError: unknown split.
        DataError: the file is missing or unreadable, or a key is missing or has the
            wrong dtype, shape, length, non-finite values or negative labels; a class of
            0..C-1 has no training item, or a test label none.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown npz split {split!r}; use 'train' or 'test'")
    path = Path(path).expanduser().absolute()
    if not path.is_file():
        raise DataError(f"npz file {path} not found; pass npz:PATH with PATH a file written by "
                        f"{_SAVE}")
    a = _read(path)
    _check(path, a)
    mean, std = train_statistics(_as_float(a["x_train"]))
    x = torch.from_numpy(_as_float(a[f"x_{split}"]))
    num_classes = int(max(a["y_train"].max(), a["y_test"].max())) + 1
    y = torch.from_numpy(a[f"y_{split}"].astype(np.int64))
    return ImageDataset(standardize(x, mean, std), y, num_classes, f"npz:{path}")
