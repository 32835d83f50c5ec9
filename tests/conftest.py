"""Shared fixtures: a tiny MNIST in the torchvision layout, written by the tests."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import pytest
import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


def write_idx(path: Path, array: np.ndarray, magic: int, compress: bool = True) -> Path:
    """Write ``array`` (uint8) as an IDX file with the given magic number."""
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        with gzip.open(path, "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    return path


def make_tiny_mnist(root: Path, n_train: int = 300, n_test: int = 200, seed: int = 0) -> Path:
    """A learnable fake MNIST: each class is a bright 4x4 block at its own place, plus noise."""
    rng = np.random.default_rng(seed)
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for split, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        rng.shuffle(labels)
        images = rng.integers(0, 60, size=(n, 28, 28))
        for k, c in enumerate(labels):
            r, col = 2 + 6 * (c // 4), 2 + 6 * (c % 4)
            images[k, r:r + 4, col:col + 4] = 250
        write_idx(raw / f"{split}-images-idx3-ubyte", images, 2051)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels, 2049)
    return root


@pytest.fixture
def tiny_mnist(tmp_path) -> Path:
    """A data root holding a tiny fake MNIST (300 train, 200 test images)."""
    return make_tiny_mnist(tmp_path / "data")


@pytest.fixture
def real_data_root() -> Path:
    """The real data root from $LAYERIB_DATA_ROOT (skips when unset or without MNIST)."""
    root = os.environ.get("LAYERIB_DATA_ROOT")
    if not root or not (Path(root) / "MNIST" / "raw").is_dir():
        pytest.skip("LAYERIB_DATA_ROOT with MNIST/raw is not set")
    return Path(root)
