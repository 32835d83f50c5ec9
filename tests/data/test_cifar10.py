"""Tests of layerib.data.cifar10 on tiny files written here in the exact on-disk formats.

No network: downloads are replaced by a fake that writes a locally built archive, and
"offline" is simulated by making urlopen fail. The real JPEG copy is checked only when
$LAYERIB_DATA_ROOT holds cifar10-jpeg.zip.
"""

import io
import os
import pickle
import tarfile
import urllib.error
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PIL_Image

from layerib.data import cifar10
from layerib.data.cifar10 import (
    CIFAR10_CLASSES, CIFAR10_MEAN, CIFAR10_STD, KNOWN_ZIP_SHA256, CIFAR10Data, cache_dir, check_archive,
    load_cifar10,
    load_cifar10_batches, load_cifar10_image_folder, normalize_cifar10)
from layerib.errors import ConfigError, DataError

N_PER_BATCH = 20


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Every test caches into its own folder, never into ~/.cache or a data root."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"


def _batch(seed: int, n: int = N_PER_BATCH) -> dict:
    rng = np.random.default_rng(seed)
    return {b"batch_label": f"batch {seed}".encode(),
            b"labels": [int(v) for v in (np.arange(n) + seed) % 10],
            b"data": rng.integers(0, 256, size=(n, 3072), dtype=np.uint8),
            b"filenames": [f"img_{seed}_{i}.png".encode() for i in range(n)]}


def _write_batches(root: Path, names=CIFAR10_CLASSES) -> dict[str, dict]:
    """The official layout: Python-2-style pickles (bytes keys, protocol 2)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    batches = {f"data_batch_{i}": _batch(i) for i in range(1, 6)} | {"test_batch": _batch(9)}
    meta = {b"num_cases_per_batch": N_PER_BATCH, b"num_vis": 3072,
            b"label_names": [n.encode() for n in names]}
    for name, obj in [*batches.items(), ("batches.meta", meta)]:
        (folder / name).write_bytes(pickle.dumps(obj, protocol=2))
    return batches


def test_batches_train_shape_dtype_and_pixel_layout(tmp_path):
    batches = _write_batches(tmp_path)
    d = load_cifar10_batches(tmp_path, "train")
    assert isinstance(d, CIFAR10Data) and d.source == "python-batches"
    assert d.images.shape == (5 * N_PER_BATCH, 3, 32, 32) and d.images.dtype == torch.uint8
    assert d.labels.shape == (5 * N_PER_BATCH,) and d.labels.dtype == torch.int64
    want = np.concatenate([batches[f"data_batch_{i}"][b"labels"] for i in range(1, 6)])
    assert d.labels.tolist() == want.tolist()
    row = batches["data_batch_2"][b"data"][3]  # 1024 R, then G, then B, each row-major
    img = d.images[N_PER_BATCH + 3]
    for c, h, w in [(0, 0, 0), (1, 5, 7), (2, 31, 30)]:
        assert img[c, h, w] == row[c * 1024 + h * 32 + w]
    assert d.classes == CIFAR10_CLASSES


def test_batches_test_split(tmp_path):
    batches = _write_batches(tmp_path)
    d = load_cifar10_batches(tmp_path, "test")
    assert d.images.shape == (N_PER_BATCH, 3, 32, 32)
    assert d.labels.tolist() == batches["test_batch"][b"labels"]


def test_batches_meta_with_other_class_order_is_rejected(tmp_path):
    _write_batches(tmp_path, names=CIFAR10_CLASSES[::-1])
    with pytest.raises(DataError, match="batches.meta.*standard CIFAR-10 order"):
        load_cifar10_batches(tmp_path, "test")


def test_truncated_batch_names_the_file(tmp_path):
    _write_batches(tmp_path)
    f = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    f.write_bytes(f.read_bytes()[:5000])
    with pytest.raises(DataError, match="corrupt or truncated.*data_batch_3"):
        load_cifar10_batches(tmp_path, "train")


def test_wrong_shape_batch_names_the_file(tmp_path):
    _write_batches(tmp_path)
    bad = _batch(0) | {b"data": np.zeros((N_PER_BATCH, 1024), dtype=np.uint8)}
    (tmp_path / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError, match=r"test_batch has wrong shape.*\(20, 1024\)"):
        load_cifar10_batches(tmp_path, "test")


def test_missing_batches_name_folder_and_files(tmp_path):
    with pytest.raises(DataError, match="cifar-10-batches-py: test_batch, batches.meta.*download"):
        load_cifar10_batches(tmp_path, "test")


def _archive_bytes(src: Path, extra: tarfile.TarInfo | None = None) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        tar.add(src / "cifar-10-batches-py", arcname="cifar-10-batches-py")
        if extra is not None:
            tar.addfile(extra, io.BytesIO(b"x" * extra.size))
    return buf.getvalue()


def _fake_download(payload: bytes, calls: list):
    def fake(urls, dest, md5=None, sha256=None):
        calls.append((urls, md5))
        Path(dest).write_bytes(payload)
        return Path(dest)
    return fake


def test_download_fetches_checks_and_extracts(tmp_path, monkeypatch):
    batches = _write_batches(tmp_path / "src")
    calls = []
    payload = _archive_bytes(tmp_path / "src")
    monkeypatch.setattr(cifar10, "download_file", _fake_download(payload, calls))
    root = tmp_path / "root"
    root.mkdir()
    d = load_cifar10_batches(root, "test", download=True)
    assert calls == [(["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"],
                      "c58f30108f718f92721af3b95e74349a")]
    assert d.labels.tolist() == batches["test_batch"][b"labels"]
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_download_refuses_path_traversal(tmp_path, monkeypatch):
    _write_batches(tmp_path / "src")
    evil = tarfile.TarInfo("cifar-10-batches-py/../../evil.txt")
    evil.size = 4
    payload = _archive_bytes(tmp_path / "src", evil)
    monkeypatch.setattr(cifar10, "download_file", _fake_download(payload, []))
    root = tmp_path / "a" / "root"
    root.mkdir(parents=True)
    with pytest.raises(DataError, match="cannot extract"):
        load_cifar10_batches(root, "test", download=True)
    assert not list(tmp_path.rglob("evil.txt"))
    assert not (root / "cifar-10-batches-py").exists()


def test_download_offline_raises_data_error(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")
    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(DataError, match="could not download cifar-10-python.tar.gz"):
        load_cifar10_batches(tmp_path, "train", download=True)


# --- image folder / zip ------------------------------------------------------------------

def _color(label: int, i: int) -> tuple[int, int, int]:
    return (25 * label, 100 + 40 * i, 7)


def _write_image_folder(root: Path, classes=CIFAR10_CLASSES, per_class: int = 2) -> Path:
    """``train/<class>/i.png`` (lossless) and ``test/<class>/i.jpg``, solid colours."""
    for split, ext in (("train", "png"), ("test", "jpg")):
        for label, name in enumerate(classes):
            (root / split / name).mkdir(parents=True)
            for i in range(per_class):
                img = PIL_Image.new("RGB", (32, 32), _color(label % 10, i))
                img.save(root / split / name / f"{i:04d}.{ext}", quality=95)
    return root


def _zip_folder(folder: Path, dest: Path, top: str = "") -> Path:
    with zipfile.ZipFile(dest, "w") as z:
        for f in sorted(folder.rglob("*")):
            z.write(f, top + f.relative_to(folder).as_posix())
    return dest


def _check_tiny(d: CIFAR10Data, exact: bool) -> None:
    assert d.source == "jpeg-image-folder"
    assert d.images.shape == (20, 3, 32, 32) and d.images.dtype == torch.uint8
    assert d.labels.dtype == torch.int64 and d.labels.tolist() == [k // 2 for k in range(20)]
    for k in range(20):
        want = torch.tensor(_color(k // 2, k % 2), dtype=torch.int16)
        got = d.images[k, :, 16, 16].to(torch.int16)
        assert (got == want).all() if exact else (got - want).abs().max() <= 3


@pytest.mark.parametrize("top", ["", "cifar10-jpeg/"])
def test_zip_loads_labels_in_class_order(tmp_path, top):
    src = _write_image_folder(tmp_path / "src")
    data_root = tmp_path / "data"
    data_root.mkdir()
    zpath = _zip_folder(src, data_root / "cifar10-jpeg.zip", top)
    _check_tiny(load_cifar10_image_folder(zpath, "train"), exact=True)
    _check_tiny(load_cifar10_image_folder(zpath, "test"), exact=False)


def test_folder_matches_zip(tmp_path):
    src = _write_image_folder(tmp_path / "src")
    zpath = _zip_folder(src, tmp_path / "c.zip")
    a, b = load_cifar10_image_folder(src, "train"), load_cifar10_image_folder(zpath, "train")
    _check_tiny(a, exact=True)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)


def test_cache_is_written_outside_data_root_and_reused(tmp_path, cache_home, monkeypatch):
    data_root = tmp_path / "data"
    data_root.mkdir()
    zpath = _zip_folder(_write_image_folder(tmp_path / "src"), data_root / "cifar10-jpeg.zip")
    before = sorted(data_root.rglob("*"))
    first = load_cifar10_image_folder(zpath, "train")
    assert sorted(data_root.rglob("*")) == before  # nothing written into the data root
    assert cache_dir() == cache_home / "layerib" / "cifar10"
    assert [p.suffix for p in cache_dir().iterdir()] == [".npz"]  # no temp file left

    def no_decode(*args):
        raise AssertionError("decoded again despite the cache")
    monkeypatch.setattr(cifar10, "_decode_all", no_decode)
    second = load_cifar10_image_folder(zpath, "train")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    os.utime(zpath, ns=(0, 0))  # a changed source must be decoded again
    with pytest.raises(AssertionError, match="decoded again"):
        load_cifar10_image_folder(zpath, "train")


def test_corrupt_cache_is_rebuilt(tmp_path):
    zpath = _zip_folder(_write_image_folder(tmp_path / "src"), tmp_path / "c.zip")
    load_cifar10_image_folder(zpath, "train")
    (cache_file,) = cache_dir().iterdir()
    cache_file.write_bytes(b"PK\x03\x04 truncated")
    _check_tiny(load_cifar10_image_folder(zpath, "train"), exact=True)


def test_unknown_class_folder(tmp_path):
    src = _write_image_folder(tmp_path / "src", classes=CIFAR10_CLASSES[:9] + ("kitten",))
    with pytest.raises(DataError, match="unknown class folder 'kitten'"):
        load_cifar10_image_folder(src, "train", cache=False)


def test_empty_split(tmp_path):
    src = _write_image_folder(tmp_path / "src")
    zpath = tmp_path / "train-only.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        z.write(src / "train" / "cat" / "0000.png", "train/cat/0000.png")
    with pytest.raises(DataError, match="no images for split 'test'"):
        load_cifar10_image_folder(zpath, "test")


def test_image_of_wrong_size_or_not_an_image(tmp_path):
    src = _write_image_folder(tmp_path / "src")
    PIL_Image.new("RGB", (16, 16)).save(src / "train" / "dog" / "0001.png")
    with pytest.raises(DataError, match="0001.png.*32x32"):
        load_cifar10_image_folder(src, "train", cache=False)
    (src / "train" / "dog" / "0001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read or decode train/dog/0001.png"):
        load_cifar10_image_folder(src, "train", cache=False)


def test_not_a_zip_and_missing_path(tmp_path):
    (tmp_path / "bad.zip").write_bytes(b"garbage")
    with pytest.raises(DataError, match="cannot read .*bad.zip"):
        load_cifar10_image_folder(tmp_path / "bad.zip", "train")
    with pytest.raises(DataError, match="not found"):
        load_cifar10_image_folder(tmp_path / "nothing.zip", "train")


# --- load_cifar10 and normalize_cifar10 -------------------------------------------------------

def test_auto_prefers_batches_then_zip_then_folder(tmp_path, monkeypatch):
    root = tmp_path / "root"
    src = _write_image_folder(root / "cifar10-jpeg")
    monkeypatch.setenv("LAYERIB_DATA_ROOT", str(root))
    assert load_cifar10(split="train").source == "jpeg-image-folder"  # the folder
    _zip_folder(src, root / "cifar10-jpeg.zip")
    assert load_cifar10(root, "train").images.shape[0] == 20  # the zip
    _write_batches(root)
    assert load_cifar10(root, "test").source == "python-batches"
    assert load_cifar10(root, "test", source="folder").source == "jpeg-image-folder"


def test_load_cifar10_errors(tmp_path):
    with pytest.raises(DataError, match="no CIFAR-10 in .*cifar-10-batches-py.*cifar10-jpeg.zip"
                                        ".*download=True"):
        load_cifar10(tmp_path, "train")
    with pytest.raises(DataError, match="cifar-10-batches-py: data_batch_1"):
        load_cifar10(tmp_path, "train", source="batches")
    with pytest.raises(ConfigError, match="unknown CIFAR-10 source 'web'"):
        load_cifar10(tmp_path, source="web")
    with pytest.raises(ConfigError, match="unknown CIFAR-10 split 'val'"):
        load_cifar10(tmp_path, split="val")


def test_normalize_cifar10():
    mean = torch.tensor(CIFAR10_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(CIFAR10_STD).view(1, 3, 1, 1)
    x = torch.full((2, 3, 4, 4), 255, dtype=torch.uint8)
    y = normalize_cifar10(x)
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert torch.allclose(y, ((1 - mean) / std).expand_as(y))
    assert torch.allclose(normalize_cifar10(torch.zeros(3, 2, 2, dtype=torch.uint8)),
                          (-mean / std)[0].expand(3, 2, 2))
    with pytest.raises(ConfigError, match="want uint8"):
        normalize_cifar10(x.float())


# --- the real JPEG copy (opt in: LAYERIB_DATA_ROOT holds cifar10-jpeg.zip) -----------------

REAL_ZIP = Path(os.environ.get("LAYERIB_DATA_ROOT", "/nonexistent")) / "cifar10-jpeg.zip"


@pytest.mark.skipif(not ("LAYERIB_DATA_ROOT" in os.environ and REAL_ZIP.is_file()),
                    reason="set LAYERIB_DATA_ROOT to a folder holding cifar10-jpeg.zip")
def test_real_jpeg_zip_test_split():
    d = load_cifar10_image_folder(REAL_ZIP, "test", cache=False)
    assert d.images.shape == (10000, 3, 32, 32) and d.source == "jpeg-image-folder"
    assert torch.bincount(d.labels, minlength=10).tolist() == [1000] * 10
    # The README gives training-set means 0.4913/0.4821/0.4465; the test split's differ
    # by < 0.004 on the original files, so 0.01 catches channel-order or scaling bugs.
    means = (d.images.to(torch.float64) / 255).mean(dim=(0, 2, 3))
    assert (means - torch.tensor([0.4913, 0.4821, 0.4465], dtype=torch.float64)).abs().max() < 0.01


def test_an_unknown_zip_is_named_and_a_known_one_passes(tmp_path, cache_home, monkeypatch):
    zpath = _zip_folder(_write_image_folder(tmp_path / "src"), tmp_path / "cifar10-jpeg.zip")
    with pytest.warns(UserWarning, match=r"cifar10-jpeg.zip: sha256 \w+\.\.\. is not that of a known copy"):
        load_cifar10_image_folder(zpath, "train")
    digest = check_archive_quiet(zpath)
    monkeypatch.setitem(KNOWN_ZIP_SHA256, digest, "this test's copy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_archive(zpath) == digest
        assert check_archive(tmp_path / "src") is None  # a folder has no archive digest


def check_archive_quiet(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return check_archive(path)


@pytest.mark.skipif(not os.environ.get("LAYERIB_DATA_ROOT"), reason="needs $LAYERIB_DATA_ROOT")
def test_the_shared_jpeg_copy_is_the_known_one():
    zpath = Path(os.environ["LAYERIB_DATA_ROOT"]) / "cifar10-jpeg.zip"
    if not zpath.is_file():
        pytest.skip("no cifar10-jpeg.zip in $LAYERIB_DATA_ROOT")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_archive(zpath) in KNOWN_ZIP_SHA256
