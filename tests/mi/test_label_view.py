"""The label critic's pooled view of conv maps (``y_pool``, :class:`~layerib.mi.critics.MapPool`)."""

from __future__ import annotations

import pytest
import torch

from layerib.config import TrainConfig, validate
from layerib.errors import ConfigError
from layerib.ib.layerwise import train_layer, validation_score
from layerib.ib.objective import label_estimator, trainer_settings
from layerib.mi.critics import MapPool, label_view


def test_map_pool_averages_each_channel_over_the_grid():
    g = torch.Generator().manual_seed(0)
    maps = torch.randn(5, 3, 8, 6, generator=g)
    view = MapPool((3, 8, 6), 2)
    out = view(maps.flatten(1))
    assert view.out_dim == 3 * 2 * 2 and out.shape == (5, 12)
    # cell (0, 0) of channel 1 is the mean of its 4 x 3 block, and channel order is kept
    assert torch.allclose(out.reshape(5, 3, 2, 2)[:, 1, 0, 0], maps[:, 1, :4, :3].mean((1, 2)))
    assert torch.allclose(out.reshape(5, 3, 2, 2)[:, 2, 1, 1], maps[:, 2, 4:, 3:].mean((1, 2)))


def test_map_pool_grid_is_capped_by_the_map_and_rejects_bad_shapes():
    assert MapPool((4, 2, 3), 8).grid == (2, 3)  # never more cells than the map has
    x = torch.randn(2, 4 * 2 * 3)
    assert torch.equal(MapPool((4, 2, 3), 8)(x), x)  # a 1 x 1-cell pool is the identity
    with pytest.raises(ValueError, match="C, H, W"):
        MapPool((16,), 2)
    with pytest.raises(ValueError, match="k >= 1"):
        MapPool((4, 2, 3), 0)


def test_label_view_pools_maps_only():
    assert label_view((64, 16, 16), 0) is None
    assert label_view((512,), 4) is None  # vector outputs are read as they are
    assert label_view((64, 16, 16), 4).out_dim == 64 * 16


@pytest.mark.parametrize("critic", ["concat", "heads"])
def test_label_critic_reads_the_view(critic):
    prior = torch.full((3,), 1 / 3)
    view = MapPool((2, 4, 4), 1)
    torch.manual_seed(0)
    est = label_estimator(32, prior, trainer_settings(8, 0.01), "infonce", critic, view=view)
    first = est.critic.in_u if critic == "concat" else est.critic.net[0]
    assert first.in_features == 2  # the critic's input is the view's (2 channel means)
    maps = torch.randn(6, 2, 4, 4)
    shuffled = maps.flatten(2)[:, :, torch.randperm(16)].reshape(6, 2, 4, 4)
    # a 1 x 1 pool sees only channel means: moving pixels within a channel changes nothing
    a = est.critic.class_scores(maps.flatten(1))
    b = est.critic.class_scores(shuffled.flatten(1))
    assert a.shape == (6, 3) and torch.allclose(a, b, atol=1e-6)


def _conv_toy(n=192, seed=0):
    # 3 classes; the class sets which quadrant of channel 0 is bright
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = 0.3 * torch.randn(n, 1, 8, 8, generator=g)
    for c in range(3):
        r, s = divmod(c, 2)
        x[y == c, 0, 4 * r:4 * r + 4, 4 * s:4 * s + 4] += 1.5
    return x, y, g


def _unit():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU())


@pytest.mark.parametrize("pool", [0, 2])
def test_a_conv_stage_trains_through_the_pooled_view(pool):
    x, y, g = _conv_toy()
    prior = torch.full((3,), 1 / 3)
    cfg = TrainConfig(batch_size=64, epochs_per_layer=2, min_steps_per_layer=40,
                      critic_hidden=16, beta=1e-3, y_pool=pool, lr_critic=3e-3)
    unit = _unit()
    before = [p.detach().clone() for p in unit.parameters()]
    obj = train_layer(unit, 1, x, y, prior, cfg, g)
    first = obj.i_y.critic.in_u
    assert first.in_features == (4 * 2 * 2 if pool else 4 * 8 * 8)
    assert any(not torch.equal(a, b) for a, b in zip(before, unit.parameters()))
    # the critic, trained through the view, classifies held-in rows above chance (1/3)
    assert validation_score(unit, obj, (x, y), "accuracy") > 0.6


def test_pool_zero_is_the_flattened_critic_bit_for_bit():
    # y_pool=0 builds exactly the critic of before (same parameters, same training)
    x, y, _ = _conv_toy()
    prior = torch.full((3,), 1 / 3)
    out = []
    for kw in ({}, {"y_pool": 0}):
        cfg = TrainConfig(batch_size=64, epochs_per_layer=1, min_steps_per_layer=10,
                          critic_hidden=8, beta=1e-3, **kw)
        unit = _unit()
        train_layer(unit, 1, x, y, prior, cfg, torch.Generator().manual_seed(3))
        out.append(torch.cat([p.detach().flatten() for p in unit.parameters()]))
    assert torch.equal(out[0], out[1])


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_y_pool_must_be_a_non_negative_integer(bad):
    with pytest.raises(ConfigError, match="y_pool must be an integer >= 0"):
        validate(TrainConfig(y_pool=bad))
