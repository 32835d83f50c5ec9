"""The airbench-style net: its units, their output shapes, its size, and the CLI's --arch."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from layerib.cli import build_train_config, make_parser
from layerib.errors import ConfigError
from layerib.models.airbench import airbench
from layerib.models.blocks import SpaceToDepth
from layerib.models.registry import build_model


def _n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_one_unit_per_block_and_the_head_with_their_output_shapes():
    net = airbench((3, 32, 32)).eval()
    assert len(net) == 4
    shapes = [tuple(f.shape[1:]) for f in net.features(torch.randn(2, 3, 32, 32))]
    assert shapes == [(64, 16, 16), (256, 8, 8), (256, 4, 4), (10,)]
    assert net.feature_dims == [64 * 16 * 16, 256 * 8 * 8, 256 * 4 * 4, 10]
    # the 2x2 patch conv sits in unit 1; every block has two 3x3 convs, two BNs, one pool
    first = net.layers[0]
    assert isinstance(first[1], nn.Conv2d) and first[1].kernel_size == (2, 2)
    for unit in net.layers[:3]:
        convs = [m for m in unit if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)]
        assert len(convs) == 2 and all(c.bias is None for c in convs)
        assert sum(isinstance(m, nn.BatchNorm2d) for m in unit) == 2
        assert sum(isinstance(m, nn.MaxPool2d) for m in unit) == 1
        assert sum(isinstance(m, nn.GELU) for m in unit) >= 2


def test_parameter_counts_as_documented():
    assert _n_params(airbench((3, 32, 32))) == 1_972_802            # widths 64/256/256
    assert _n_params(airbench((3, 32, 32), (64, 128, 128))) == 569_666  # airbench93's size


def test_dirac_init_is_the_identity_on_the_first_channels():
    conv = [m for m in airbench((3, 32, 32)).modules()
            if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)][1]  # 64 -> 64
    x = torch.randn(1, 64, 8, 8)
    assert torch.allclose(conv(x), x, atol=1e-6)
    plain = [m for m in airbench((3, 32, 32), dirac=False).modules()
             if isinstance(m, nn.Conv2d) and m.kernel_size == (3, 3)][1]
    assert not torch.allclose(plain(x), x, atol=1e-3)


def test_space_to_depth_keeps_every_value_and_the_shapes():
    net = airbench((3, 32, 32), (8, 16, 16), downsample="space_to_depth").eval()
    assert any(isinstance(m, SpaceToDepth) for m in net.modules())
    assert not any(isinstance(m, nn.MaxPool2d) for m in net.modules())
    shapes = [tuple(f.shape[1:]) for f in net.features(torch.randn(2, 3, 32, 32))]
    assert shapes == [(8, 16, 16), (16, 8, 8), (16, 4, 4), (10,)]


def test_the_cli_builds_it_by_name_with_its_params():
    cfg = build_train_config(make_parser().parse_args(
        ["train", "--out", "x", "--dataset", "cifar10", "--arch", "airbench",
         "--channels", "8,16,16", "--arch-params", "downsample=space_to_depth", "dirac=false"]))
    net = build_model(cfg.arch, (3, 32, 32), channels=cfg.channels, params=cfg.arch_params)
    assert net.feature_dims == [8 * 256, 16 * 64, 16 * 16, 10]


@pytest.mark.parametrize("shape,kw,match", [
    ((3, 30, 30), {}, "cannot be halved 3 times"),
    ((3, 32, 32), {"downsample": "avg"}, "downsample must be one of pool, space_to_depth"),
    ((32, 32), {}, "input shape"),
])
def test_bad_inputs_are_one_line_errors(shape, kw, match):
    with pytest.raises(ConfigError, match=match):
        build_model("airbench", shape, params=kw)
