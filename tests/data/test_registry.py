"""The data-set registry: names, the one-line unknown-name error, and load_dataset for
every kind, on tiny files written here."""

import pickle

import numpy as np
import pytest
import torch

from fake_data import write_cifar100, write_idx_set, write_image_folder, zip_folder
from layerib.data import dataset, kmnist, mnist
from layerib.data.cifar10 import CIFAR10_CLASSES
from layerib.data.registry import DATASETS, check_dataset_name, dataset_forms, load_dataset
from layerib.errors import ConfigError, DataError

FORMS = "mnist, fashion-mnist, kmnist, cifar10, cifar100, digits, folder:PATH, npz:PATH"


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


def test_registered_names_and_forms():
    assert list(DATASETS) == ["mnist", "fashion-mnist", "kmnist", "cifar10", "cifar100", "digits"]
    assert ", ".join(dataset_forms()) == FORMS
    for name in (*DATASETS, "folder:/data/x", "npz:rel/set.npz", "folder:C:/x"):
        check_dataset_name(name)


@pytest.mark.parametrize("name, hint", [("imagenet", ""), ("MNIST", " (did you mean 'mnist'?)"),
                                        ("fashion_mnist", " (did you mean 'fashion-mnist'?)"),
                                        ("zip:/x", ""), ("", "")])
def test_unknown_name_is_one_line_config_error_listing_forms(name, hint):
    with pytest.raises(ConfigError) as e:
        check_dataset_name(name)
    assert str(e.value) == f"unknown dataset {name!r}{hint}; use one of {FORMS}"
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset(name, "train")  # never a silent fallback


def test_prefix_without_path_and_not_a_string():
    with pytest.raises(ConfigError, match="dataset 'npz:' lacks a path; write npz:PATH"):
        check_dataset_name("npz:")
    with pytest.raises(ConfigError, match="dataset must be a string, got NoneType"):
        check_dataset_name(None)


def test_bad_split_and_cifar_source(tiny_mnist):
    with pytest.raises(ConfigError, match="unknown split 'valid' for dataset 'mnist'"):
        load_dataset("mnist", "valid", data_root=tiny_mnist)
    with pytest.raises(ConfigError, match="unknown CIFAR-10 source 'web'"):
        load_dataset("mnist", "train", data_root=tiny_mnist, cifar_source="web")


def test_mnist_is_load_mnist(tiny_mnist):
    a = load_dataset("mnist", "test", data_root=tiny_mnist, download=False)
    b = mnist.load_mnist(tiny_mnist, "test", download=False)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.source == b.source and a.num_classes == 10


@pytest.mark.parametrize("name, folder", [("fashion-mnist", "FashionMNIST"),
                                          ("kmnist", "KMNIST")])
def test_idx_sets(tmp_path, name, folder):
    write_idx_set(tmp_path / folder / "raw")
    d = load_dataset(name, "train", data_root=tmp_path, download=False)
    assert d.images.shape == (30, 1, 28, 28) and d.num_classes == 10


def test_offline_through_the_registry(tmp_path, monkeypatch):
    monkeypatch.setattr(kmnist, "KMNIST_MIRRORS", [(tmp_path / "none").as_uri() + "/"])
    with pytest.raises(DataError, match="KMNIST not found in .*KMNIST/raw and download failed"):
        load_dataset("kmnist", "train", data_root=tmp_path / "root")


def test_cifar10_standardised_with_classes(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    batch = {b"labels": list(range(10)), b"data": rng.integers(0, 256, (10, 3072), np.uint8)}
    for name in ("test_batch", *(f"data_batch_{i}" for i in range(1, 6))):
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": [c.encode() for c in CIFAR10_CLASSES]}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    d = load_dataset("cifar10", "test", data_root=tmp_path, download=False,
                     cifar_source="batches")
    assert d.images.shape == (10, 3, 32, 32) and d.images.dtype == torch.float32
    assert d.num_classes == 10 and d.classes == CIFAR10_CLASSES and d.source == "python-batches"
    assert d.images.abs().max() < 3  # standardised, not raw 0..255


def test_cifar100(tmp_path):
    write_cifar100(tmp_path)
    d = load_dataset("cifar100", "test", data_root=tmp_path, download=False)
    assert d.images.shape == (15, 3, 32, 32) and d.num_classes == 100


def test_folder_and_zip(tmp_path):
    src = write_image_folder(tmp_path / "src")
    zpath = zip_folder(src, tmp_path / "set.zip")
    a, b = load_dataset(f"folder:{src}", "test"), load_dataset(f"folder:{zpath}", "test")
    assert a.images.shape == (6, 3, 4, 6) and a.classes == ("apple", "mango", "zebra")
    assert torch.equal(a.images, b.images) and b.source == f"folder:{zpath}"
    with pytest.raises(DataError, match="image folder .*absent not found"):
        load_dataset(f"folder:{tmp_path / 'absent'}", "train")


def test_npz_relative_path_gives_absolute_source(tmp_path, monkeypatch):
    np.savez(tmp_path / "s.npz", x_train=np.eye(4), y_train=np.arange(4), x_test=np.eye(4)[:2],
             y_test=np.arange(2))
    monkeypatch.chdir(tmp_path)
    d = load_dataset("npz:s.npz", "test")
    assert d.images.shape == (2, 4) and d.num_classes == 4 and d.source == f"npz:{tmp_path}/s.npz"


def test_image_dataset_moved_and_reexported():
    assert mnist.ImageDataset is dataset.ImageDataset
    d = mnist.ImageDataset(torch.zeros(2, 1, 2, 2), torch.zeros(2, dtype=torch.int64), 3, "x")
    assert len(d) == 2 and d.classes == ()  # the four-argument form still works
