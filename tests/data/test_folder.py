"""``folder:PATH`` image sets (folder or zip) on tiny PNG folders written here."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from fake_data import color, write_image_folder, zip_folder
from layerib.data import folder as folder_module
from layerib.data import image_folder
from layerib.data.folder import folder_classes, load_image_folder
from layerib.errors import ConfigError, DataError

CLASSES = ("apple", "mango", "zebra")  # sorted; the folder writes them unsorted


@pytest.fixture(autouse=True)
def cache_home(tmp_path, monkeypatch):
    """Every test caches into its own folder, never into ~/.cache or a data root."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
    return tmp_path / "xdg-cache"


def _train_stats():
    """Mean and (population) std per channel of the fake train split, in [0, 1] units."""
    px = np.array([color(k, i) for k in range(3) for i in range(2)], dtype=np.float64) / 255
    return px.mean(0), px.std(0)


def test_train_split_shapes_labels_and_standardisation(tmp_path):
    src = write_image_folder(tmp_path / "src")
    d = load_image_folder(src, "train", cache=False)
    assert d.images.shape == (6, 3, 4, 6) and d.images.dtype == torch.float32  # 6 wide, 4 high
    assert d.labels.dtype == torch.int64 and d.labels.tolist() == [0, 0, 1, 1, 2, 2]
    assert d.classes == CLASSES and d.num_classes == 3 and d.source == f"folder:{src}"
    means, stds = d.images.mean(dim=(0, 2, 3)), d.images.std(dim=(0, 2, 3), unbiased=False)
    assert torch.allclose(means, torch.zeros(3), atol=1e-5)
    assert torch.allclose(stds[:2], torch.ones(2), atol=1e-5)
    assert torch.equal(d.images[:, 2], torch.zeros(6, 4, 6))  # blue is constant: 0, not NaN


def test_test_split_uses_train_statistics(tmp_path):
    src = write_image_folder(tmp_path / "src")
    Image.new("RGB", (6, 4), (255, 0, 200)).save(src / "test" / "mango" / "0001.png")
    d = load_image_folder(src, "test", cache=False)
    mean, std = _train_stats()
    k = 3  # mango, image 1
    want = [(255 / 255 - mean[0]) / std[0], (0 - mean[1]) / std[1], 0.0]  # blue: constant
    assert np.allclose(d.images[k, :, 2, 3].numpy(), want, atol=1e-5)
    assert d.labels.tolist() == [0, 0, 1, 1, 2, 2] and d.classes == CLASSES


@pytest.mark.parametrize("top", ["", "myset/"])
def test_zip_matches_folder(tmp_path, top):
    src = write_image_folder(tmp_path / "src")
    zpath = zip_folder(src, tmp_path / "set.zip", top)
    for split in ("train", "test"):
        a, b = load_image_folder(src, split), load_image_folder(zpath, split)
        assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
        assert b.source == f"folder:{zpath}"


def test_grey_images_give_one_channel_and_test_follows_train(tmp_path):
    src = write_image_folder(tmp_path / "src", mode="L", splits=("train",))
    write_image_folder(src, splits=("test",))  # colour test images: converted to L
    train, test = load_image_folder(src, "train"), load_image_folder(src, "test")
    assert train.images.shape == (6, 1, 4, 6) and test.images.shape == (6, 1, 4, 6)
    grey = np.array([color(k, i)[1] for k in range(3) for i in range(2)]) / 255
    luma = Image.new("RGB", (1, 1), color(0, 0)).convert("L").getpixel((0, 0)) / 255
    assert abs(float(test.images[0, 0, 0, 0]) - (luma - grey.mean()) / grey.std()) < 1e-5


def test_one_colour_image_makes_the_set_rgb(tmp_path):
    src = write_image_folder(tmp_path / "src", mode="L")
    Image.new("RGB", (6, 4), (1, 2, 3)).save(src / "train" / "apple" / "0005.png")
    assert load_image_folder(src, "train").images.shape == (7, 3, 4, 6)
    assert load_image_folder(src, "test").images.shape == (6, 3, 4, 6)


def test_test_class_unknown_to_train(tmp_path):
    src = write_image_folder(tmp_path / "src")
    write_image_folder(src, classes=("kiwi",), splits=("test",))
    with pytest.raises(DataError) as e:
        load_image_folder(src, "test")
    msg = str(e.value)
    assert "\n" not in msg and "class folder 'kiwi' of the test split" in msg
    assert "not a class of the train split" in msg


def test_image_of_other_size_names_file_and_fix(tmp_path):
    src = write_image_folder(tmp_path / "src")
    Image.new("RGB", (5, 5)).save(src / "train" / "mango" / "0001.png")
    with pytest.raises(DataError) as e:
        load_image_folder(src, "train", cache=False)
    msg = str(e.value)
    assert "\n" not in msg and "train/mango/0001.png" in msg and "is 5x5, not 6x4" in msg
    assert "resize all images to 6x4" in msg
    Image.new("RGB", (6, 4)).save(src / "train" / "mango" / "0001.png")
    Image.new("RGB", (8, 8)).save(src / "test" / "zebra" / "0000.png")
    with pytest.raises(DataError, match="test/zebra/0000.png .* is 8x8, not 6x4 like the train"):
        load_image_folder(src, "test", cache=False)


def test_not_an_image_missing_path_empty_split_and_bad_split(tmp_path):
    src = write_image_folder(tmp_path / "src", splits=("train",))
    (src / "train" / "apple" / "0001.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read or decode train/apple/0001.png"):
        load_image_folder(src, "train")
    with pytest.raises(DataError, match="image folder .*nowhere not found"):
        load_image_folder(tmp_path / "nowhere", "train")
    (src / "train" / "apple" / "0001.png").unlink()
    with pytest.raises(DataError, match="no images for split 'test'"):
        load_image_folder(src, "test")
    with pytest.raises(ConfigError, match="unknown image-folder split 'val'"):
        load_image_folder(src, "val")


def test_hidden_files_are_skipped_and_classes_are_listed(tmp_path):
    src = write_image_folder(tmp_path / "src")
    (src / "train" / ".DS_Store").write_bytes(b"x")
    (src / "train" / "apple" / "notes.txt").write_text("x")
    (src / "__MACOSX" / "train" / "ghost").mkdir(parents=True)
    assert folder_classes(src) == CLASSES
    assert len(load_image_folder(src, "train")) == 6


def test_cache_outside_data_root_reused_and_invalidated(tmp_path, monkeypatch):
    src = write_image_folder(tmp_path / "src")
    before = sorted(src.rglob("*"))
    first = load_image_folder(src, "test")
    assert sorted(src.rglob("*")) == before  # nothing written into the data folder
    assert len(list(image_folder.cache_dir("image-folder").glob("*.npz"))) == 2  # train + test

    def no_decode(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")
    monkeypatch.setattr(image_folder, "decode_images", no_decode)
    second = load_image_folder(src, "test")
    assert torch.equal(first.images, second.images) and torch.equal(first.labels, second.labels)
    Image.new("RGB", (6, 4), (9, 9, 9)).save(src / "test" / "apple" / "0000.png")
    with pytest.raises(AssertionError, match="decoded again"):
        load_image_folder(src, "test")


REAL_ZIP = Path(os.environ.get("LAYERIB_DATA_ROOT", "/nonexistent")) / "cifar10-jpeg.zip"


@pytest.mark.slow
@pytest.mark.skipif(not REAL_ZIP.is_file(), reason="set LAYERIB_DATA_ROOT to a folder holding "
                                                   "cifar10-jpeg.zip")
def test_real_cifar10_jpeg_zip_as_a_folder_set(monkeypatch):
    """The training statistics computed here are those the data README states for this copy
    (means 0.4913 / 0.4821 / 0.4465, stds 0.2452 / 0.2428 / 0.2606); about a minute."""
    seen = {}
    real = folder_module.uint8_channel_stats

    def spy(x):
        seen["stats"] = real(x)
        return seen["stats"]
    monkeypatch.setattr(folder_module, "uint8_channel_stats", spy)
    d = load_image_folder(REAL_ZIP, "test")
    assert d.images.shape == (10000, 3, 32, 32) and d.num_classes == 10
    assert d.classes[0] == "airplane" and torch.bincount(d.labels).tolist() == [1000] * 10
    mean, std = seen["stats"]
    assert np.allclose(mean, [0.4913, 0.4821, 0.4465], atol=1e-4)
    assert np.allclose(std, [0.2452, 0.2428, 0.2606], atol=1e-4)
