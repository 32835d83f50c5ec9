"""Fashion-MNIST (Xiao et al. 2017) from IDX files in ``<root>/FashionMNIST/raw/``.

The same four file names and format as MNIST (:mod:`layerib.data.idx`); 28x28 grey
images of 10 clothing classes, 60000 train and 10000 test.
"""

from __future__ import annotations

import dataclasses
import os

from layerib.data.dataset import ImageDataset
from layerib.data.idx import IdxSpec, load_idx

#: md5 of the upstream ``.gz`` files, as in torchvision's ``FashionMNIST.resources``.
FASHION_MNIST_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
#: torchvision's ``FashionMNIST.mirrors``; read at each call, so tests may monkeypatch it.
FASHION_MNIST_MIRRORS = ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"]
#: Pixel mean and std of the 60000 training images scaled to [0, 1]: 0.2860 / 0.3530, the
#: values in common use (e.g. chatflip/CalculationMeanStd; a training mean of 72.94 on the
#: 0..255 scale, 72.94 / 255 = 0.2860). Not recomputed here: no copy on this machine.
FASHION_MNIST_MEAN, FASHION_MNIST_STD = 0.2860, 0.3530
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                         "Shirt", "Sneaker", "Bag", "Ankle boot")

FASHION_MNIST = IdxSpec(name="Fashion-MNIST", folder="FashionMNIST",
                        mirrors=tuple(FASHION_MNIST_MIRRORS), md5=FASHION_MNIST_MD5,
                        mean=FASHION_MNIST_MEAN, std=FASHION_MNIST_STD,
                        classes=FASHION_MNIST_CLASSES)


def load_fashion_mnist(data_root: str | os.PathLike | None = None, split: str = "train",
                       download: bool = True) -> ImageDataset:
    """Load a Fashion-MNIST split as standardised float tensors.

    Args:
        data_root: folder holding ``FashionMNIST/raw/``; None uses ``$LAYERIB_DATA_ROOT``
            or the per-user cache folder.
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).
        download: fetch missing files from :data:`FASHION_MNIST_MIRRORS` (md5 checked).

    Returns:
        :class:`ImageDataset`, images ``(N, 1, 28, 28)`` float32 standardised with
        mean 0.2860 and std 0.3530, and the 10 class names.

    Raises:
        ConfigError: unknown split.
        DataError: files missing (and not downloadable), corrupt, or inconsistent.
    """
    spec = dataclasses.replace(FASHION_MNIST, mirrors=tuple(FASHION_MNIST_MIRRORS))
    return load_idx(spec, data_root, split, download)
