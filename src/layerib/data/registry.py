"""The data-set registry: one name -> one loader, and :func:`load_dataset`, the one entry point.

Registered names are the keys of :data:`DATASETS`; besides them, two forms take a
path: ``folder:PATH`` (an image folder or zip, :mod:`layerib.data.folder`) and
``npz:PATH`` (a NumPy archive, :mod:`layerib.data.npz`). An unknown name is a
:class:`ConfigError` listing what is accepted, never a silent fallback.

To add a data set: write its loader module (returning a standardised
:class:`ImageDataset`), then add one line to :data:`DATASETS`.
"""

from __future__ import annotations

import difflib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from layerib.data.cifar10 import load_cifar10, normalize_cifar10
from layerib.data.cifar100 import load_cifar100
from layerib.data.dataset import ImageDataset
from layerib.data.digits import load_digits
from layerib.data.fashion_mnist import load_fashion_mnist
from layerib.data.folder import load_image_folder
from layerib.data.kmnist import load_kmnist
from layerib.data.mnist import load_mnist
from layerib.data.npz import load_npz
from layerib.errors import ConfigError

log = logging.getLogger(__name__)

SPLITS = ("train", "test")
CIFAR_SOURCES = ("auto", "batches", "folder")


@dataclass(frozen=True)
class LoadRequest:
    """What :func:`load_dataset` was asked for; each loader reads the fields it needs.

    Attributes:
        split: ``"train"`` or ``"test"``.
        data_root: folder holding the standard sets (None: ``$LAYERIB_DATA_ROOT`` or the
            per-user cache folder).
        download: whether missing standard files may be downloaded (checksummed).
        cifar_source: which CIFAR-10 copy: ``"auto"``, ``"batches"`` or ``"folder"``.
    """

    split: str
    data_root: str | os.PathLike | None = None
    download: bool = True
    cifar_source: str = "auto"


def _cifar10(r: LoadRequest) -> ImageDataset:
    d = load_cifar10(r.data_root, r.split, source=r.cifar_source, download=r.download)
    return ImageDataset(normalize_cifar10(d.images), d.labels, len(d.classes), d.source,
                        d.classes)


#: name -> loader of a standard set (in the data root, downloadable).
DATASETS: dict[str, Callable[[LoadRequest], ImageDataset]] = {
    "mnist": lambda r: load_mnist(r.data_root, r.split, r.download),
    "fashion-mnist": lambda r: load_fashion_mnist(r.data_root, r.split, r.download),
    "kmnist": lambda r: load_kmnist(r.data_root, r.split, r.download),
    "cifar10": _cifar10,
    "cifar100": lambda r: load_cifar100(r.data_root, r.split, r.download),
    "digits": lambda r: load_digits(r.split),  # scikit-learn's bundled 8x8 digits, fixed split
}
#: prefix -> loader of ``prefix:PATH`` (PATH relative to the working folder or absolute).
PATH_KINDS: dict[str, Callable[[str, LoadRequest], ImageDataset]] = {
    "folder": lambda path, r: load_image_folder(path, r.split),
    "npz": lambda path, r: load_npz(path, r.split),
}


def dataset_forms() -> tuple[str, ...]:
    """Every accepted form, for help texts: the registered names, then ``folder:PATH`` etc."""
    return (*DATASETS, *(f"{kind}:PATH" for kind in PATH_KINDS))


def check_dataset_name(name: str) -> None:
    """Check that ``name`` is a registered name or a ``folder:PATH`` / ``npz:PATH`` form.

    Only the form is checked, not that PATH exists (loading says that).

    Raises:
        ConfigError: not a string, an unknown name (the one-line message lists the
            accepted forms and a close registered name if there is one), or a prefix
            without a path.
    """
    forms = ", ".join(dataset_forms())
    if not isinstance(name, str):
        raise ConfigError(f"dataset must be a string, got {type(name).__name__}; use one of "
                          f"{forms}")
    if name in DATASETS:
        return
    kind, sep, path = name.partition(":")
    if sep and kind in PATH_KINDS:
        if not path.strip():
            raise ConfigError(f"dataset {name!r} lacks a path; write {kind}:PATH, e.g. "
                              f"{kind}:/data/my-set{'.npz' if kind == 'npz' else ''}")
        return
    close = difflib.get_close_matches(name.lower(), [*DATASETS, *PATH_KINDS], n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise ConfigError(f"unknown dataset {name!r}{hint}; use one of {forms}")


def load_dataset(name: str, split: str, *, data_root: str | os.PathLike | None = None,
                 download: bool = True, cifar_source: str = "auto") -> ImageDataset:
    """Load one split of a registered data set, standardised, as in-memory tensors.

    Args:
        name: a key of :data:`DATASETS` (``"mnist"``, ``"fashion-mnist"``, ``"kmnist"``,
            ``"cifar10"``, ``"cifar100"``), ``"folder:PATH"`` or ``"npz:PATH"``.
        split: ``"train"`` or ``"test"``.
        data_root: folder holding the standard sets; None: ``$LAYERIB_DATA_ROOT`` or the
            per-user cache folder. Not used for ``folder:`` and ``npz:``.
        download: allow downloading missing standard files (checksummed).
        cifar_source: CIFAR-10 copy: ``"auto"``, ``"batches"`` or ``"folder"``
            (see :func:`layerib.data.cifar10.load_cifar10`); checked for every name.

    Returns:
        :class:`ImageDataset`: images float32 ``(N, C, H, W)`` (``(N, D)`` for an ``npz:``
        set of vectors), standardised with training statistics; labels int64 ``(N,)``;
        ``source`` names the copy read.

    Raises:
        ConfigError: unknown name, split or cifar_source.
        DataError: the data are missing (and not downloadable), corrupt or malformed.
    """
    check_dataset_name(name)
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r} for dataset {name!r}; use 'train' or 'test'")
    if cifar_source not in CIFAR_SOURCES:
        raise ConfigError(f"unknown CIFAR-10 source {cifar_source!r}; use "
                          f"{', '.join(map(repr, CIFAR_SOURCES))}")
    request = LoadRequest(split, data_root, download, cifar_source)
    if name in DATASETS:
        data = DATASETS[name](request)
    else:
        kind, _, path = name.partition(":")
        data = PATH_KINDS[kind](path, request)
    log.info("dataset %s %s: %d items, %d classes, images %s, from %s", name, split,
             len(data), data.num_classes, tuple(data.images.shape[1:]), data.source)
    return data
