"""Kuzushiji-MNIST (Clanuwat et al. 2018) from IDX files in ``<root>/KMNIST/raw/``.

The same four file names and format as MNIST (:mod:`layerib.data.idx`); 28x28 grey
images of 10 cursive Japanese (Hiragana) characters, 60000 train and 10000 test.
"""

from __future__ import annotations

import dataclasses
import os

from layerib.data.dataset import ImageDataset
from layerib.data.idx import IdxSpec, load_idx

#: md5 of the upstream ``.gz`` files, as in torchvision's ``KMNIST.resources``.
KMNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
    "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
    "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
    "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
}
#: torchvision's ``KMNIST.mirrors``; read at each call, so tests may monkeypatch it.
KMNIST_MIRRORS = ["http://codh.rois.ac.jp/kmnist/dataset/kmnist/"]
#: Pixel mean and std of the 60000 training images scaled to [0, 1]: 0.1918 / 0.3483, the
#: values in common use for KMNIST. The mean is corroborated by several public sources;
#: for the std, one public source uses 0.3059 instead, and neither could be recomputed
#: here (no copy on this machine). A std error only rescales the inputs.
KMNIST_MEAN, KMNIST_STD = 0.1918, 0.3483
#: Romanised names of the 10 characters, in label order (torchvision's ``KMNIST.classes``).
KMNIST_CLASSES = ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")

KMNIST = IdxSpec(name="KMNIST", folder="KMNIST", mirrors=tuple(KMNIST_MIRRORS), md5=KMNIST_MD5,
                 mean=KMNIST_MEAN, std=KMNIST_STD, classes=KMNIST_CLASSES)


def load_kmnist(data_root: str | os.PathLike | None = None, split: str = "train",
                download: bool = True) -> ImageDataset:
    """Load a KMNIST split as standardised float tensors.

    Args:
        data_root: folder holding ``KMNIST/raw/``; None uses ``$LAYERIB_DATA_ROOT``
            or the per-user cache folder.
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).
        download: fetch missing files from :data:`KMNIST_MIRRORS` (md5 checked).

    Returns:
        :class:`ImageDataset`, images ``(N, 1, 28, 28)`` float32 standardised with
        mean 0.1918 and std 0.3483, and the 10 class names.

    Raises:
        ConfigError: unknown split.
        DataError: files missing (and not downloadable), corrupt, or inconsistent.
    """
    spec = dataclasses.replace(KMNIST, mirrors=tuple(KMNIST_MIRRORS))
    return load_idx(spec, data_root, split, download)
