"""Standardisation helpers of layerib.data.dataset."""

import numpy as np
import torch

from layerib.data.dataset import standardize, standardize_uint8, uint8_channel_stats


def test_uint8_channel_stats_match_numpy():
    x = np.random.default_rng(0).integers(0, 256, size=(50, 3, 7, 5), dtype=np.uint8)
    mean, std = uint8_channel_stats(x)
    f = x / 255.0
    assert np.allclose(mean, f.mean(axis=(0, 2, 3)), atol=1e-12)
    assert np.allclose(std, f.std(axis=(0, 2, 3)), atol=1e-12)


def test_standardize_uint8_in_chunks_and_zero_std():
    x = np.random.default_rng(1).integers(0, 256, size=(600, 2, 64, 64), dtype=np.uint8)
    x[:, 1] = 9  # constant channel
    mean, std = uint8_channel_stats(x)
    assert std[1] == 0
    y = standardize_uint8(x, mean, std)  # 600 images > one chunk of 2**22 values
    assert y.dtype == torch.float32 and y.shape == x.shape
    assert torch.equal(y[:, 1], torch.zeros(600, 64, 64))
    want = (x[:, 0] / 255.0 - mean[0]) / std[0]
    assert np.allclose(y[:, 0].numpy(), want, atol=1e-5)


def test_standardize_features_along_dim_1():
    x = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    y = standardize(x, [2.0, 5.0], [1.0, 0.0])
    assert torch.equal(y, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
