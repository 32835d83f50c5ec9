"""Lossless downsampling (space-to-depth): invertible, and the nets build with it."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from layerib.errors import ConfigError
from layerib.models.blocks import SpaceToDepth, downsample_layer, downsampled_channels
from layerib.models.registry import build_model


@pytest.mark.parametrize("factor", [1, 2, 4])
def test_space_to_depth_is_inverted_by_pixel_shuffle(factor):
    x = torch.randn(3, 5, 8, 8)
    y = SpaceToDepth(factor)(x)
    assert y.shape == (3, 5 * factor * factor, 8 // factor, 8 // factor)
    assert torch.equal(F.pixel_shuffle(y, factor), x)  # every value kept, in place
    assert torch.equal(y, F.pixel_unshuffle(x, factor))


def test_space_to_depth_puts_each_window_in_channels():
    x = torch.arange(16.).reshape(1, 1, 4, 4)
    y = SpaceToDepth(2)(x)
    assert y[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left 2x2 window


def test_max_pool_loses_what_space_to_depth_keeps():
    x = torch.randn(2, 3, 4, 4)
    assert downsample_layer("pool")(x).numel() * 4 == x.numel()
    assert downsample_layer("space_to_depth")(x).numel() == x.numel()
    assert downsampled_channels("space_to_depth", 3) == 12 and downsampled_channels("pool", 3) == 3


def test_bad_factor_odd_map_and_kind_are_one_line_errors():
    with pytest.raises(ValueError, match="factor must be >= 1"):
        SpaceToDepth(0)
    with pytest.raises(ValueError, match="7x7 map is not divisible by 2"):
        SpaceToDepth(2)(torch.zeros(1, 1, 7, 7))
    with pytest.raises(ValueError, match="downsample must be one of"):
        downsample_layer("avg")


@pytest.mark.parametrize("arch,channels", [("vgg", (8, 8, 16, 16)), ("airbench", (8, 16, 16))])
def test_the_nets_build_and_run_with_space_to_depth(arch, channels):
    pool = build_model(arch, (3, 32, 32), channels=channels)
    s2d = build_model(arch, (3, 32, 32), channels=channels,
                      params={"downsample": "space_to_depth"}).eval()
    assert not any(isinstance(m, nn.MaxPool2d) for m in s2d.modules() if m is not s2d)
    assert s2d(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    if arch == "vgg":  # the pool ends a unit: its output keeps 4x the numbers
        assert [d * 4 for d in pool.feature_dims[:-1]] == s2d.feature_dims[:-1]


def test_vgg_rejects_an_unknown_downsample():
    with pytest.raises(ConfigError, match="vgg: downsample must be one of"):
        build_model("vgg", (3, 32, 32), params={"downsample": "avg"})
