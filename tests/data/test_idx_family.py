"""The IDX family (MNIST, Fashion-MNIST, KMNIST) on tiny IDX files written here.

Downloads use a local ``file://`` mirror (monkeypatched mirror list and md5 values);
"offline" is a mirror that does not exist.
"""

import gzip

import numpy as np
import pytest
import torch

from fake_data import IDX_NAMES, md5, write_idx_set
from layerib.data import fashion_mnist, idx, kmnist, mnist
from layerib.errors import ConfigError, DataError

# (module, loader, folder under the data root, mirrors attribute, md5 dict, mean, std)
SETS = {
    "mnist": (mnist, mnist.load_mnist, "MNIST", "MNIST_MIRRORS", mnist.MNIST_MD5, 0.1307, 0.3081),
    "fashion-mnist": (fashion_mnist, fashion_mnist.load_fashion_mnist, "FashionMNIST",
                      "FASHION_MNIST_MIRRORS", fashion_mnist.FASHION_MNIST_MD5, 0.2860, 0.3530),
    "kmnist": (kmnist, kmnist.load_kmnist, "KMNIST", "KMNIST_MIRRORS", kmnist.KMNIST_MD5,
               0.1918, 0.3483),
}
NAMES = {"mnist": "MNIST", "fashion-mnist": "Fashion-MNIST", "kmnist": "KMNIST"}


@pytest.fixture(params=list(SETS))
def idx_set(request):
    return request.param, *SETS[request.param]


def test_loads_shapes_labels_and_own_standardisation(tmp_path, idx_set):
    _, _, load, folder, _, _, mean, std = idx_set
    written = write_idx_set(tmp_path / folder / "raw")
    for split, n in (("train", 30), ("test", 20)):
        d = load(tmp_path, split, download=False)
        assert d.images.shape == (n, 1, 28, 28) and d.images.dtype == torch.float32
        assert d.labels.dtype == torch.int64 and d.labels.tolist() == (np.arange(n) % 10).tolist()
        assert d.num_classes == 10 and len(d.classes) == 10
        assert d.source == f"idx:{tmp_path / folder / 'raw'}"
        want = (written[split].astype(np.float32) / 255.0 - mean) / std
        assert np.allclose(d.images[:, 0].numpy(), want, atol=1e-6)


def test_class_names():
    assert fashion_mnist.FASHION_MNIST_CLASSES[0] == "T-shirt/top"
    assert fashion_mnist.FASHION_MNIST_CLASSES[9] == "Ankle boot"
    assert kmnist.KMNIST_CLASSES == ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")


def test_missing_files_one_line_naming_folder_and_four_files(tmp_path, idx_set):
    key, _, load, folder, *_ = idx_set
    with pytest.raises(DataError) as e:
        load(tmp_path, "train", download=False)
    msg = str(e.value)
    assert "\n" not in msg and f"{NAMES[key]} file train-images-idx3-ubyte(.gz) not found" in msg
    assert str(tmp_path / folder / "raw") in msg
    assert all(f"{name}.gz" in msg for name in IDX_NAMES)


def test_offline_download_is_one_line_data_error(tmp_path, monkeypatch, idx_set):
    key, module, load, folder, mirrors, *_ = idx_set
    monkeypatch.setattr(module, mirrors, [(tmp_path / "no-such-mirror").as_uri() + "/"])
    with pytest.raises(DataError) as e:
        load(tmp_path / "root", "test", download=True)
    msg = str(e.value)
    assert "\n" not in msg and f"{NAMES[key]} not found in" in msg and "download failed" in msg
    assert f"{folder}/raw" in msg and all(f"{name}.gz" in msg for name in IDX_NAMES)


def test_md5_checked_download_from_local_mirror(tmp_path, monkeypatch, idx_set):
    _, module, load, folder, mirrors, md5s, mean, std = idx_set
    mirror = tmp_path / "mirror"
    written = write_idx_set(mirror, n_train=12, n_test=8)
    monkeypatch.setattr(module, mirrors, [(tmp_path / "dead").as_uri() + "/",
                                          mirror.as_uri() + "/"])  # the first one fails
    for name in IDX_NAMES:
        monkeypatch.setitem(md5s, f"{name}.gz", md5(mirror / f"{name}.gz"))
    root = tmp_path / "root"
    d = load(root, "test", download=True)
    assert d.images.shape == (8, 1, 28, 28)
    want = (written["test"].astype(np.float32) / 255.0 - mean) / std
    assert np.allclose(d.images[:, 0].numpy(), want, atol=1e-6)
    raw = root / folder / "raw"
    assert sorted(p.name for p in raw.iterdir()) == ["t10k-images-idx3-ubyte.gz",
                                                     "t10k-labels-idx1-ubyte.gz"]


def test_download_with_wrong_md5_leaves_nothing(tmp_path, monkeypatch, idx_set):
    _, module, load, folder, mirrors, *_ = idx_set
    mirror = tmp_path / "mirror"
    write_idx_set(mirror)  # the real md5 values do not match these files
    monkeypatch.setattr(module, mirrors, [mirror.as_uri() + "/"])
    with pytest.raises(DataError, match="md5 mismatch"):
        load(tmp_path / "root", "train", download=True)
    assert not list((tmp_path / "root" / folder / "raw").iterdir())


def test_plain_files_and_bad_contents(tmp_path, idx_set):
    _, _, load, folder, *_ = idx_set
    raw = tmp_path / folder / "raw"
    write_idx_set(raw)
    path = raw / "t10k-images-idx3-ubyte.gz"
    path.with_suffix("").write_bytes(gzip.decompress(path.read_bytes()))  # plain copy wins
    path.unlink()
    assert load(tmp_path, "test", download=False).images.shape == (20, 1, 28, 28)
    write_idx_set(tmp_path / "small" / folder / "raw", size=14)
    with pytest.raises(DataError, match=r"shape \(14, 14\), expected \(28, 28\)"):
        load(tmp_path / "small", "train", download=False)


def test_label_out_of_range(tmp_path):
    from conftest import write_idx
    raw = tmp_path / "KMNIST" / "raw"
    write_idx_set(raw)
    write_idx(raw / "train-labels-idx1-ubyte", np.full(30, 10), 2049)
    with pytest.raises(DataError, match="outside 0..9"):
        kmnist.load_kmnist(tmp_path, "train", download=False)


def test_unknown_split_and_reexports():
    with pytest.raises(ConfigError, match="unknown Fashion-MNIST split 'val'"):
        fashion_mnist.load_fashion_mnist(split="val")
    assert mnist.read_idx is idx.read_idx and mnist.MNIST_FILES is idx.IDX_FILES
