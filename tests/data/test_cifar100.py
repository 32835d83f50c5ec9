"""CIFAR-100 on tiny python batches written here in the official format (pickle protocol 2).

Downloads use a local ``file://`` URL (monkeypatched URL list and md5); "offline" is a
URL that does not exist.
"""

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from fake_data import cifar100_batch, md5, write_cifar100
from layerib.data import cifar100
from layerib.data.cifar100 import CIFAR100_MEAN, CIFAR100_STD, load_cifar100
from layerib.errors import ConfigError, DataError


def test_train_and_test_shapes_labels_classes(tmp_path):
    batches = write_cifar100(tmp_path)
    for split, n in (("train", 40), ("test", 15)):
        d = load_cifar100(tmp_path, split, download=False)
        assert d.images.shape == (n, 3, 32, 32) and d.images.dtype == torch.float32
        assert d.labels.dtype == torch.int64 and d.labels.tolist() == batches[split][b"fine_labels"]
        assert d.num_classes == 100 and d.classes[:2] == ("class00", "class01")
        assert d.source == f"cifar100-python:{tmp_path / 'cifar-100-python'}"


def test_pixel_layout_and_standardisation(tmp_path):
    batches = write_cifar100(tmp_path)
    d = load_cifar100(tmp_path, "train", download=False)
    row = batches["train"][b"data"][5]  # 1024 R, then G, then B, each row-major 32x32
    for c, h, w in [(0, 0, 0), (1, 5, 7), (2, 31, 30)]:
        want = (row[c * 1024 + h * 32 + w] / 255.0 - CIFAR100_MEAN[c]) / CIFAR100_STD[c]
        assert abs(float(d.images[5, c, h, w]) - want) < 1e-5


def test_missing_files_one_line(tmp_path):
    with pytest.raises(DataError) as e:
        load_cifar100(tmp_path, "test", download=False)
    msg = str(e.value)
    assert "\n" not in msg and "cifar-100-python: test, meta" in msg
    assert "cifar-100-python.tar.gz" in msg


def test_bad_meta_labels_and_shape(tmp_path):
    write_cifar100(tmp_path / "a", n_names=99)
    with pytest.raises(DataError, match="does not list 100 b'fine_label_names'"):
        load_cifar100(tmp_path / "a", "train", download=False)
    write_cifar100(tmp_path / "b")
    bad = cifar100_batch(3, 10) | {b"fine_labels": [100] * 10}
    (tmp_path / "b" / "cifar-100-python" / "test").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match="labels outside 0..99"):
        load_cifar100(tmp_path / "b", "test", download=False)
    bad = cifar100_batch(3, 10) | {b"data": np.zeros((10, 1024), dtype=np.uint8)}
    (tmp_path / "b" / "cifar-100-python" / "test").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match=r"test has wrong shape.*\(10, 1024\)"):
        load_cifar100(tmp_path / "b", "test", download=False)
    (tmp_path / "b" / "cifar-100-python" / "test").write_bytes(b"\x80\x02garbage")
    with pytest.raises(DataError, match="corrupt or truncated CIFAR-100 file .*cifar-100-python"):
        load_cifar100(tmp_path / "b", "test", download=False)


def _archive(src: Path, dest: Path, extra: tarfile.TarInfo | None = None) -> Path:
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src / "cifar-100-python", arcname="cifar-100-python")
        if extra is not None:
            tar.addfile(extra, io.BytesIO(b"x" * extra.size))
    return dest


def test_md5_checked_download_from_local_url(tmp_path, monkeypatch):
    batches = write_cifar100(tmp_path / "src")
    archive = _archive(tmp_path / "src", tmp_path / "cifar-100-python.tar.gz")
    monkeypatch.setattr(cifar100, "CIFAR100_URLS", [archive.as_uri()])
    monkeypatch.setattr(cifar100, "CIFAR100_MD5", md5(archive))
    root = tmp_path / "root"
    d = load_cifar100(root, "test", download=True)
    assert d.labels.tolist() == batches["test"][b"fine_labels"]
    assert sorted(p.name for p in root.iterdir()) == ["cifar-100-python",
                                                      "cifar-100-python.tar.gz"]
    assert load_cifar100(root, "train", download=True).images.shape[0] == 40  # no re-download


def test_download_with_wrong_md5_or_offline(tmp_path, monkeypatch):
    write_cifar100(tmp_path / "src")
    archive = _archive(tmp_path / "src", tmp_path / "cifar-100-python.tar.gz")
    monkeypatch.setattr(cifar100, "CIFAR100_URLS", [archive.as_uri()])  # real md5: mismatch
    with pytest.raises(DataError, match="md5 mismatch"):
        load_cifar100(tmp_path / "root", "train", download=True)
    assert not list((tmp_path / "root").iterdir())
    monkeypatch.setattr(cifar100, "CIFAR100_URLS", [(tmp_path / "nothing.tar.gz").as_uri()])
    with pytest.raises(DataError) as e:
        load_cifar100(tmp_path / "root", "train", download=True)
    msg = str(e.value)
    assert "\n" not in msg and "CIFAR-100 not found in" in msg and "download failed" in msg


def test_download_refuses_path_traversal(tmp_path, monkeypatch):
    write_cifar100(tmp_path / "src")
    evil = tarfile.TarInfo("cifar-100-python/../../evil.txt")
    evil.size = 4
    archive = _archive(tmp_path / "src", tmp_path / "evil.tar.gz", evil)
    monkeypatch.setattr(cifar100, "CIFAR100_URLS", [archive.as_uri()])
    monkeypatch.setattr(cifar100, "CIFAR100_MD5", md5(archive))
    root = tmp_path / "a" / "root"
    with pytest.raises(DataError, match="cannot extract"):
        load_cifar100(root, "test", download=True)
    assert not list(tmp_path.rglob("evil.txt")) and not (root / "cifar-100-python").exists()


def test_unknown_split(tmp_path):
    with pytest.raises(ConfigError, match="unknown CIFAR-100 split 'valid'"):
        load_cifar100(tmp_path, "valid")
