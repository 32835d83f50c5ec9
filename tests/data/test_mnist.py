"""MNIST IDX reader, loader errors, stratified subsets, and the real files when present."""

import gzip
import hashlib

import numpy as np
import pytest
import torch

from conftest import make_tiny_mnist, write_idx
from layerib.data.mnist import load_mnist, read_idx
from layerib.data.subsets import stratified_subset
from layerib.errors import ConfigError, DataError


def test_reads_gzipped_and_plain_idx(tmp_path):
    arr = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    assert np.array_equal(read_idx(write_idx(tmp_path / "a", arr, 2051)), arr)
    assert np.array_equal(read_idx(write_idx(tmp_path / "b", arr, 2051, compress=False)), arr)


def test_tiny_mnist_loads_standardised(tiny_mnist):
    d = load_mnist(tiny_mnist, "train", download=False)
    assert d.images.shape == (300, 1, 28, 28) and d.images.dtype == torch.float32
    assert d.labels.dtype == torch.int64 and set(d.labels.tolist()) == set(range(10))


def test_missing_files_name_folder_and_files(tmp_path):
    with pytest.raises(DataError, match=r"MNIST/raw.*train-images-idx3-ubyte\.gz"):
        load_mnist(tmp_path, "train", download=False)


def test_truncated_file(tiny_mnist):
    path = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    data = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(data[:1000]))
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_mnist(tiny_mnist, "train", download=False)


def test_not_gzip_and_wrong_magic(tiny_mnist):
    path = tiny_mnist / "MNIST" / "raw" / "train-images-idx3-ubyte.gz"
    path.write_bytes(b"this is not gzip at all")
    with pytest.raises(DataError, match="cannot read"):
        load_mnist(tiny_mnist, "train", download=False)
    path.unlink()
    write_idx(path.with_name("train-images-idx3-ubyte"), np.zeros((2, 28, 28)), 1234, compress=False)
    with pytest.raises(DataError, match="magic number 1234"):
        load_mnist(tiny_mnist, "train", download=False)


def test_labels_out_of_range_and_mismatch(tmp_path):
    root = make_tiny_mnist(tmp_path)
    raw = root / "MNIST" / "raw"
    write_idx(raw / "t10k-labels-idx1-ubyte", np.full(200, 12), 2049)
    with pytest.raises(DataError, match="outside 0..9"):
        load_mnist(root, "test", download=False)
    write_idx(raw / "t10k-labels-idx1-ubyte", np.zeros(7), 2049)
    with pytest.raises(DataError, match="do not belong together"):
        load_mnist(root, "test", download=False)


def test_unknown_split(tiny_mnist):
    with pytest.raises(ConfigError, match="unknown MNIST split"):
        load_mnist(tiny_mnist, "valid")


def test_stratified_subset_is_seeded_and_balanced():
    labels = torch.arange(60000) % 10
    a, b = stratified_subset(labels, 0.01, 3), stratified_subset(labels, 0.01, 3)
    assert torch.equal(a, b) and len(a) == 600
    assert torch.bincount(labels[a]).tolist() == [60] * 10
    assert not torch.equal(a, stratified_subset(labels, 0.01, 4))
    assert torch.equal(stratified_subset(labels, 1.0, 0), torch.arange(60000))
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(ConfigError, match="outside"):
            stratified_subset(labels, bad, 0)


SHA256_UNCOMPRESSED_LABELS_HEAD = [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]


def test_real_mnist(real_data_root):
    train = load_mnist(real_data_root, "train", download=False)
    test = load_mnist(real_data_root, "test", download=False)
    assert train.images.shape == (60000, 1, 28, 28) and test.images.shape == (10000, 1, 28, 28)
    assert train.labels[:10].tolist() == SHA256_UNCOMPRESSED_LABELS_HEAD
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert abs(float(train.images.mean())) < 1e-3 and abs(float(train.images.std()) - 1) < 1e-3
    raw = real_data_root / "MNIST" / "raw" / "t10k-labels-idx1-ubyte.gz"
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == \
        "fc607395669ec21321ea83e4b82c0544b7e8e63ff5b34337c06bc0a17cc0da3c"
