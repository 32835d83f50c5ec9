"""``folder:PATH``: any labelled image set laid out as ``PATH/<split>/<class>/<image>``.

``PATH`` is a folder or a ``.zip`` of that layout (optionally under one top folder,
as the CIFAR-10 JPEG copy). The classes are the sorted class-folder names of the
``train`` split, label ``k`` being the ``k``-th name; the ``test`` split must use
only those. Images are decoded with Pillow (any format it reads: .jpg, .png, ...):

* channels: 1 when every *training* image is grey (R = G = B at every pixel after
  conversion to RGB, e.g. mode ``L`` files), else 3 (RGB); the test split is converted
  to the same mode (``L`` uses Pillow's ITU-R 601 luma);
* size: all images, in both splits, must have the training images' size;
* standardisation: per channel with the *training* split's mean and std (computed;
  the test split uses the training statistics); a channel constant in training
  (e.g. always 0) is set to 0 in both splits.

Decoded arrays are cached as for CIFAR-10 (:mod:`layerib.data.image_folder`), in
``$XDG_CACHE_HOME/layerib/image-folder``, never in the data folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from layerib.data import image_folder
from layerib.data.dataset import ImageDataset, standardize_uint8, uint8_channel_stats
from layerib.errors import ConfigError, DataError

SPLITS = ("train", "test")
CACHE_KIND = "image-folder"


def _decoded(path: Path, split: str, classes: tuple[str, ...], mode: str,
             size: tuple[int, int] | None, cache: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(images (N, H, W, C) uint8, labels (N,) int64)`` of one split, from the cache if
    it is there. ``mode`` ``"auto"``: RGB, reduced to one channel if all grey."""
    file = image_folder.cache_dir(CACHE_KIND) / (
        f"{split}-{image_folder.cache_key(path, 'folder', split, mode)[:20]}.npz")
    arrays = image_folder.load_cache(file) if cache else None
    if arrays is not None:
        return arrays
    found = image_folder.list_images(path, split)
    items = image_folder.label_images(
        found, classes, f"class folder {{cls!r}} of the {split} split ({{name}}) is not a class "
        f"of the train split in {path}; add {{cls}}/ to train/ or remove it from {split}/")
    names = [name for name, _ in items]
    images = image_folder.decode_images(path, names, "RGB" if mode == "auto" else mode, size,
                                        "the train split's images" if size else "")
    if mode == "auto" and (np.array_equal(images[..., 0], images[..., 1])
                           and np.array_equal(images[..., 0], images[..., 2])):
        images = np.ascontiguousarray(images[..., :1])
    arrays = images, np.array([label for _, label in items], dtype=np.int64)
    if cache:
        image_folder.save_cache(file, *arrays)
    return arrays


def folder_classes(path: str | os.PathLike) -> tuple[str, ...]:
    """The class names of a ``folder:`` set: sorted class folders of its train split.

    Raises:
        DataError: no train images in ``path`` or it cannot be read.
    """
    found = image_folder.list_images(Path(path).expanduser(), "train")
    return tuple(sorted({cls for _, cls in found}))


def load_image_folder(path: str | os.PathLike, split: str = "train", *,
                      cache: bool = True) -> ImageDataset:
    """Load a split of the image set in ``PATH/<split>/<class>/<image>`` (folder or zip).

    Loading ``"test"`` also reads (or takes from the cache) the training images, for
    the class list, mode, size and statistics.

    Args:
        path: the folder or ``.zip``.
        split: ``"train"`` or ``"test"``.
        cache: read and write the decoded-array cache.

    Returns:
        :class:`ImageDataset`: images ``(N, C, H, W)`` float32 ordered by class then file
        name, C = 1 (all training images grey) or 3; labels int64 indexing ``classes``
        (the sorted train class folders); source ``"folder:<absolute path>"``.

    Raises:
        ConfigError: unknown split.
        DataError: path missing or unreadable, no images for a split, a test class not
            in train, an image that cannot be decoded or is of another size.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown image-folder split {split!r}; use 'train' or 'test'")
    path = Path(path).expanduser().absolute()
    if not path.exists():
        raise DataError(f"image folder {path} not found; pass folder:PATH with PATH a folder "
                        "or .zip holding train/<class>/<image> and test/<class>/<image>")
    classes = folder_classes(path)
    train_x, train_y = _decoded(path, "train", classes, "auto", None, cache)
    mean, std = uint8_channel_stats(np.moveaxis(train_x, -1, 1))
    if split == "train":
        x, y = train_x, train_y
    else:
        size = (train_x.shape[2], train_x.shape[1])
        x, y = _decoded(path, "test", classes, "L" if train_x.shape[-1] == 1 else "RGB",
                        size, cache)
    images = standardize_uint8(torch.from_numpy(x).permute(0, 3, 1, 2), mean, std)
    return ImageDataset(images, torch.from_numpy(y), len(classes), f"folder:{path}", classes)
