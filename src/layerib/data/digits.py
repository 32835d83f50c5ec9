"""scikit-learn's 8x8 handwritten digits (the UCI optical-recognition test set), no download.

1797 grey images of 8x8 pixels with values 0..16, ten classes (about 180 each), bundled
with scikit-learn as ``sklearn/datasets/data/digits.csv.gz`` (what
``sklearn.datasets.load_digits`` reads). The set has no train/test split of its own;
ours is fixed: a stratified draw of :data:`DIGITS_TRAIN_FRACTION` of the images with
seed :data:`DIGITS_SPLIT_SEED` (:func:`layerib.data.subsets.stratified_subset`) is the
training split (1348 images), the other 449 the test split; the same on every machine.
Pixels are scaled to [0, 1] and standardised with the training split's mean and std.

The file is read through its path in the installed scikit-learn (found without importing
it): importing ``sklearn.datasets`` costs about a second, which every layerib process
would pay, since the data registry imports this module. ``tests/data/test_digits.py``
checks that the values equal ``load_digits``'s.
"""

from __future__ import annotations

import gzip
import importlib.util
from pathlib import Path

import numpy as np
import torch

from layerib.data.dataset import ImageDataset, standardize
from layerib.data.subsets import stratified_subset
from layerib.errors import ConfigError, DataError

#: Share of the 1797 images in the fixed training split (stratified): 1348 train, 449 test.
DIGITS_TRAIN_FRACTION = 0.75
#: Seed of the fixed train/test split (never a run's seed).
DIGITS_SPLIT_SEED = 0


def digits_file() -> Path:
    """Path of ``digits.csv.gz`` in the installed scikit-learn (not imported).

    Raises:
        DataError: scikit-learn is not installed or lacks the file.
    """
    spec = importlib.util.find_spec("sklearn")
    path = (Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data" / "digits.csv.gz"
            if spec is not None and spec.submodule_search_locations else None)
    if path is None or not path.is_file():
        raise DataError("scikit-learn's bundled digits.csv.gz was not found; install "
                        "scikit-learn (pip install scikit-learn) to use dataset digits")
    return path


def load_digits(split: str = "train") -> ImageDataset:
    """Load one split of the 8x8 digits as standardised float tensors.

    Args:
        split: ``"train"`` (1348 images) or ``"test"`` (449), the fixed stratified split
            of the module doc.

    Returns:
        :class:`ImageDataset`: images float32 ``(N, 1, 8, 8)``, pixels / 16 standardised
        with the training split's mean and std; labels int64 ``(N,)`` in 0..9.

    Raises:
        ConfigError: unknown split.
        DataError: the bundled file is missing (scikit-learn not installed).

    Example:
        >>> d = load_digits("test")
        >>> tuple(d.images.shape), d.num_classes
        ((449, 1, 8, 8), 10)
    """
    if split not in ("train", "test"):
        raise ConfigError(f"unknown split {split!r} for dataset 'digits'; use 'train' or 'test'")
    path = digits_file()
    with gzip.open(path, "rt") as f:
        data = np.loadtxt(f, delimiter=",")
    images = torch.as_tensor(data[:, :-1].reshape(-1, 1, 8, 8) / 16.0)
    labels = torch.as_tensor(data[:, -1].astype(np.int64))
    train = torch.zeros(len(labels), dtype=torch.bool)
    train[stratified_subset(labels, DIGITS_TRAIN_FRACTION, DIGITS_SPLIT_SEED)] = True
    mean, std = images[train].mean().item(), images[train].std(unbiased=False).item()
    rows = train if split == "train" else ~train
    return ImageDataset(standardize(images[rows], [mean], [std]), labels[rows], 10,
                        f"scikit-learn digits ({path})", tuple(str(d) for d in range(10)))
