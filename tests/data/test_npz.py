"""``npz:PATH`` sets: standardisation with training statistics, and one-line errors."""

import numpy as np
import pytest
import torch

from layerib.data.npz import load_npz
from layerib.errors import ConfigError, DataError


def _good(rng=None) -> dict:
    rng = rng or np.random.default_rng(0)
    x_train = rng.normal(3.0, 2.0, size=(40, 5))
    x_train[:, 4] = 1.5  # a constant feature
    return {"x_train": x_train, "y_train": np.arange(40) % 3,
            "x_test": rng.normal(3.0, 2.0, size=(10, 5)), "y_test": np.array([2] + [0] * 9)}


def _save(tmp_path, arrays, name="set.npz"):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_vectors_standardised_per_feature_with_train_statistics(tmp_path):
    a = _good()
    path = _save(tmp_path, a)
    train, test = load_npz(path, "train"), load_npz(path, "test")
    assert train.images.shape == (40, 5) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64 and train.labels.tolist() == a["y_train"].tolist()
    assert train.num_classes == test.num_classes == 3  # max label 2 + 1
    assert train.source == f"npz:{path}" and test.source == f"npz:{path}"
    assert torch.allclose(train.images[:, :4].mean(0), torch.zeros(4), atol=1e-6)
    assert torch.allclose(train.images[:, :4].std(0, unbiased=False), torch.ones(4), atol=1e-5)
    assert torch.equal(train.images[:, 4], torch.zeros(40))  # constant: 0, no NaN
    mean, std = a["x_train"].mean(0), a["x_train"].std(0)
    want = (a["x_test"][:, :4] - mean[:4]) / std[:4]
    assert np.allclose(test.images[:, :4].numpy(), want, atol=1e-5)
    assert torch.equal(test.images[:, 4], torch.zeros(10))


def test_uint8_images_scaled_then_standardised_per_channel(tmp_path):
    rng = np.random.default_rng(1)
    x_train = rng.integers(0, 256, size=(30, 2, 4, 3), dtype=np.uint8)
    x_test = rng.integers(0, 256, size=(6, 2, 4, 3), dtype=np.uint8)
    path = _save(tmp_path, {"x_train": x_train, "y_train": np.arange(30, dtype=np.uint8) % 2,
                            "x_test": x_test, "y_test": np.ones(6, np.int32)})
    train, test = load_npz(path, "train"), load_npz(path, "test")
    assert train.images.shape == (30, 2, 4, 3) and train.num_classes == 2
    f = x_train / 255.0
    mean, std = f.mean(axis=(0, 2, 3)), f.std(axis=(0, 2, 3))
    want = (x_test / 255.0 - mean[None, :, None, None]) / std[None, :, None, None]
    assert np.allclose(test.images.numpy(), want, atol=1e-5)
    assert torch.allclose(train.images.mean(dim=(0, 2, 3)), torch.zeros(2), atol=1e-5)


def test_grey_images_get_a_channel_axis(tmp_path):
    x = np.random.default_rng(2).random((8, 5, 5)).astype(np.float32)
    path = _save(tmp_path, {"x_train": x, "y_train": np.arange(8) % 2, "x_test": x[:3],
                            "y_test": np.zeros(3, int)})
    assert load_npz(path, "test").images.shape == (3, 1, 5, 5)


def _bad(tmp_path, **changes):
    a = _good()
    a.update(changes)
    return _save(tmp_path, {k: v for k, v in a.items() if v is not None})


BAD = {
    "missing key": (dict(y_test=None), r"lacks key\(s\) y_test"),
    "float labels": (dict(y_train=np.zeros(40)), "y_train has dtype float64; store integer"),
    "bool x": (dict(x_test=np.zeros((10, 5), bool)), "x_test has dtype bool"),
    "string x": (dict(x_train=np.array(["a"] * 40)), "x_train has dtype <U1"),
    "1-D x": (dict(x_train=np.zeros(40)), r"x_train has shape \(40,\); want \(N, D\)"),
    "2-D labels": (dict(y_test=np.zeros((10, 1), int)), r"y_test has shape \(10, 1\)"),
    "lengths": (dict(y_train=np.zeros(39, int)), "x_train has 40 items but y_train has 39"),
    "empty": (dict(x_test=np.zeros((0, 5)), y_test=np.zeros(0, int)), "x_test has no items"),
    "nan": (dict(x_train=np.full((40, 5), np.nan)), "x_train has 200 non-finite values"),
    "inf": (dict(x_test=np.full((10, 5), np.inf)), "x_test has 50 non-finite values"),
    "negative label": (dict(y_test=-np.ones(10, int)), "y_test has negative label -1"),
    "item shapes": (dict(x_test=np.zeros((10, 6))), r"x_test items have shape \(6,\)"),
    # a stray label would silently add classes the net cannot learn
    "test-only label": (dict(y_test=np.array([5] + [0] * 9)),
                        r"y_test has label\(s\) 5 that y_train never takes"),
    "label gap": (dict(y_train=np.where(np.arange(40) % 3 == 2, 7, np.arange(40) % 3),
                       y_test=np.zeros(10, int)),
                  r"y_train never takes label\(s\) 2, 3, 4, 5, 6 of 0..7; .*np.unique"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_arrays_one_line_error_naming_key(tmp_path, case):
    changes, message = BAD[case]
    path = _bad(tmp_path, **changes)
    with pytest.raises(DataError, match=message) as e:
        load_npz(path, "train")
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_object_array_is_refused_without_unpickling(tmp_path):
    a = _good()
    a["y_train"] = np.array([object()] * 40, dtype=object)
    path = _save(tmp_path, a)
    with pytest.raises(DataError, match="y_train cannot be read"):
        load_npz(path, "train")


def test_not_an_npz_missing_file_and_bad_split(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="junk.npz is not a .npz archive .no zip header"):
        load_npz(tmp_path / "junk.npz")
    (tmp_path / "trunc.npz").write_bytes(b"PK\x03\x04garbage")  # a zip header, then junk
    with pytest.raises(DataError, match="cannot read .*trunc.npz as a .npz file"):
        load_npz(tmp_path / "trunc.npz")
    np.save(tmp_path / "one.npy", np.zeros(3))
    with pytest.raises(DataError, match="holds one array, not a .npz archive"):
        load_npz(tmp_path / "one.npy")
    with pytest.raises(DataError, match="npz file .*absent.npz not found"):
        load_npz(tmp_path / "absent.npz")
    with pytest.raises(ConfigError, match="unknown npz split 'all'"):
        load_npz(_save(tmp_path, _good()), "all")
