"""Test helpers: tiny data sets written in the exact on-disk formats the loaders read.

* :func:`write_idx_set`: the four IDX files of an MNIST-like set in ``<root>/<folder>/raw/``;
* :func:`write_cifar100`: ``cifar-100-python/{train,test,meta}`` as Python-2-style pickles;
* :func:`write_image_folder`: ``<root>/<split>/<class>/<i>.png``; :func:`zip_folder`;
* :func:`write_conv_npz`: an ``npz:`` set of 3 x 8 x 8 images in 3 separable classes;
* :data:`FAST_TRAIN_ARGS`: ``layerib train`` flags for a run of a few seconds on the tiny MNIST.
"""

from __future__ import annotations

import hashlib
import pickle
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import write_idx

#: ``layerib train`` flags for a run of a few seconds on ``conftest.make_tiny_mnist``'s data.
FAST_TRAIN_ARGS = ["--epochs-per-layer", "1", "--min-steps-per-layer", "6", "--ce-epochs", "1",
                   "--readout-epochs", "1", "--batch-size", "64", "--widths", "32,16,10",
                   "--critic-hidden", "16", "--mi-restarts", "1", "--mi-baseline", "false",
                   "--mi-max-steps", "200", "--mi-eval-batch-size", "50", "--infoplane-evals", "2",
                   "--infoplane-critic-steps", "5", "--no-progress", "--offline"]

IDX_NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte")


def md5(path: Path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def write_idx_set(raw: Path, n_train: int = 30, n_test: int = 20, seed: int = 0,
                  size: int = 28) -> dict[str, np.ndarray]:
    """The four gzipped IDX files in ``raw``; returns the arrays written, by split."""
    rng = np.random.default_rng(seed)
    raw.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix, n in (("train", "train", n_train), ("test", "t10k", n_test)):
        images = rng.integers(0, 256, size=(n, size, size), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        write_idx(raw / f"{prefix}-images-idx3-ubyte", images, 2051)
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", labels, 2049)
        out[split], out[f"{split}_labels"] = images, labels
    return out


def cifar100_batch(seed: int, n: int, label_max: int = 99) -> dict:
    rng = np.random.default_rng(seed)
    fine = [int(v) for v in (np.arange(n) * 7 + seed) % (label_max + 1)]
    return {b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)],
            b"batch_label": f"batch {seed}".encode(),
            b"fine_labels": fine,
            b"coarse_labels": [v // 5 for v in fine],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)}


def write_cifar100(root: Path, n_train: int = 40, n_test: int = 15,
                   n_names: int = 100) -> dict[str, dict]:
    """The official layout ``root/cifar-100-python/{train,test,meta}`` (pickle protocol 2)."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    batches = {"train": cifar100_batch(1, n_train), "test": cifar100_batch(2, n_test)}
    meta = {b"fine_label_names": [f"class{k:02d}".encode() for k in range(n_names)],
            b"coarse_label_names": [f"super{k:02d}".encode() for k in range(20)]}
    for name, obj in [*batches.items(), ("meta", meta)]:
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    return batches


def color(label: int, i: int) -> tuple[int, int, int]:
    """The solid colour of image ``i`` of class ``label``; blue is constant (7)."""
    return (40 * label + 10, 30 + 50 * i, 7)


def write_image_folder(root: Path, classes=("zebra", "apple", "mango"), per_class: int = 2,
                       size: tuple[int, int] = (6, 4), splits=("train", "test"),
                       mode: str = "RGB") -> Path:
    """``root/<split>/<class>/<i>.png``, solid colours (:func:`color`, or its red level
    for mode ``"L"``), ``size`` = (width, height). Label order is the sorted class names."""
    for split in splits:
        for label, name in enumerate(sorted(classes)):
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                c = color(label, i)
                img = Image.new(mode, size, c if mode == "RGB" else c[1])
                img.save(root / split / name / f"{i:04d}.png")
    return root


def zip_folder(folder: Path, dest: Path, top: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, top + f.relative_to(folder).as_posix())
    return dest


def write_conv_npz(path: Path, n_train: int = 96, n_test: int = 48, seed: int = 0) -> str:
    """``x_train, y_train, x_test, y_test`` of 3-channel 8 x 8 images, 3 classes (class c
    brightens row c of channel 0 by 3); returns the ``npz:PATH`` data set name."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 3
        x = rng.normal(size=(n, 3, 8, 8)).astype(np.float32)
        x[np.arange(n), 0, y, :] += 3.0
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    np.savez(path, **arrays)
    return f"npz:{path}"
