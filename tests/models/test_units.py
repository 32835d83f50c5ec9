"""Where a flat net is cut into layer-wise units: a parametric layer starts a unit, normalisation,
activations, pooling, dropout and flatten join the unit before them; the units are described."""

from __future__ import annotations

import doctest

import pytest
import torch
from torch import nn

import layerib.models.layered as layered_mod
import layerib.models.units as units_mod
from layerib.errors import ConfigError
from layerib.models.registry import as_layered
from layerib.models.units import describe_unit, group_units, starts_unit


def _block(c_in: int, c_out: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]


def test_flat_conv_bn_relu_pool_is_one_unit_per_block():
    flat = nn.Sequential(*_block(1, 16), *_block(16, 32), nn.Flatten(), nn.Dropout(0.1),
                         nn.Linear(32 * 7 * 7, 10))
    net = as_layered(flat, torch.zeros(2, 1, 28, 28))
    assert len(net) == 3 and net.feature_dims == [16 * 14 * 14, 32 * 7 * 7, 10]
    assert net.unit_descriptions == ["Conv2d(1, 16, 3) + BatchNorm2d + ReLU + MaxPool2d",
                                     "Conv2d(16, 32, 3) + BatchNorm2d + ReLU + MaxPool2d + Flatten"
                                     " + Dropout",
                                     "Linear(1568, 10)"]
    assert net.layers[0][0] is flat[0] and net.layers[0][1] is flat[1]  # the user's modules, not copies
    # the same layers given as blocks: the same units
    blocks = as_layered([nn.Sequential(*_block(1, 16)), nn.Sequential(*_block(16, 32), nn.Flatten()),
                         nn.Linear(32 * 7 * 7, 10)], torch.zeros(2, 1, 28, 28))
    assert blocks.unit_descriptions[0] == net.unit_descriptions[0] and len(blocks) == 3


def test_mlp_linear_relu_linear_is_two_units_and_described():
    net = as_layered(nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10)),
                     torch.zeros(2, 1, 8, 8))
    assert len(net) == 2 and net.feature_dims == [32, 10]
    assert net.unit_descriptions == ["Flatten + Linear(64, 32) + ReLU", "Linear(32, 10)"]
    assert net.describe() == "unit 1: Flatten + Linear(64, 32) + ReLU\nunit 2: Linear(32, 10)"


@pytest.mark.parametrize("joiner", [nn.BatchNorm1d(8), nn.LayerNorm(8), nn.GroupNorm(2, 8),
                                    nn.InstanceNorm1d(8, affine=True), nn.RMSNorm(8), nn.PReLU(),
                                    nn.GELU(), nn.AdaptiveAvgPool1d(4), nn.AlphaDropout(0.1),
                                    nn.Identity()])
def test_normalisation_activation_pooling_dropout_join_the_unit_before(joiner):
    assert not starts_unit(joiner)
    units = group_units([nn.Linear(4, 8), joiner, nn.Linear(8, 2)])
    assert len(units) == 2 and list(units[0])[1] is joiner


@pytest.mark.parametrize("starter", [nn.Linear(4, 8), nn.Conv1d(1, 2, 3), nn.Conv3d(1, 2, (1, 3, 3)),
                                     nn.Sequential(nn.Linear(2, 2)), nn.Embedding(5, 3),
                                     nn.MultiheadAttention(4, 2)])
def test_parametric_layers_and_blocks_start_a_unit(starter):
    assert starts_unit(starter)


def test_a_net_of_only_norms_and_activations_is_a_config_error():
    with pytest.raises(ConfigError, match="no layer starts a layer-wise unit .*nothing to train"):
        as_layered(nn.Sequential(nn.BatchNorm1d(4), nn.ReLU()), torch.zeros(2, 4))


def test_describe_opens_nested_blocks_and_shows_non_square_kernels():
    unit = nn.Sequential(nn.Sequential(nn.Conv2d(3, 8, (1, 3)), nn.ReLU()), nn.Linear(2, 2))
    assert describe_unit(unit) == "Conv2d(3, 8, (1, 3)) + ReLU + Linear(2, 2)"


def test_units_are_logged(caplog):
    with caplog.at_level("INFO", logger="layerib.models.registry"):
        as_layered(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)), torch.zeros(2, 4))
    assert "2 layer-wise units" in caplog.text and "unit 1: Linear(4, 3) + ReLU" in caplog.text


def test_docstring_examples_run():
    for mod in (units_mod, layered_mod):
        failed, attempted = doctest.testmod(mod)[:2]
        assert attempted > 0 and failed == 0, mod.__name__
