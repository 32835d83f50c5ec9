"""The CIFAR-10 conv-net: shapes, the net factory, layer-wise freezing, crop + flip."""

import pytest
import torch

from layerib.config import TrainConfig
from layerib.ib.layerwise import forward_cached, train_layer
from layerib.models.conv import conv_net
from layerib.runs.training import build_net
from layerib.models.layered import LayeredNet
from layerib.data.augment import crop_flip


def test_conv_net_shapes_and_feature_dims():
    torch.manual_seed(0)
    net = conv_net((3, 32, 32), channels=(4, 8), widths=(16, 10))
    assert isinstance(net, LayeredNet) and len(net) == 4
    assert net.feature_dims == [4 * 16 * 16, 8 * 8 * 8, 16, 10]
    feats = net.features(torch.randn(5, 3, 32, 32))
    assert [tuple(f.shape) for f in feats] == [(5, 4, 16, 16), (5, 8, 8, 8), (5, 16), (5, 10)]
    assert (feats[0] >= 0).all() and (feats[2] >= 0).all()  # ReLU blocks / hidden FC
    assert (feats[3] < 0).any()  # the last layer is linear
    assert [f.flatten(1).shape[1] for f in feats] == net.feature_dims


def test_conv_net_rejects_bad_shapes():
    with pytest.raises(ValueError, match="cannot be halved 3 times"):
        conv_net((3, 20, 20), channels=(4, 4, 4))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        conv_net((784,))


def test_build_net_follows_arch():
    mlp_net = build_net(TrainConfig(widths=(8, 10)), (1, 28, 28))
    assert mlp_net.feature_dims == [8, 10]
    conv = build_net(TrainConfig(dataset="cifar10", arch="conv", channels=(2,), widths=(6, 10)),
                     (3, 32, 32))
    assert conv.feature_dims == [2 * 16 * 16, 6, 10]
    assert isinstance(conv.layers[0][0], torch.nn.Conv2d)


def _settings(steps: int) -> TrainConfig:
    return TrainConfig(beta=0.1, noise_var=100.0, batch_size=16, epochs_per_layer=1,
                       min_steps_per_layer=steps, lr_layer=1e-2, critic_hidden=8,
                       evals_per_layer=1, mi_eval_batch_size=16)


def test_layerwise_training_trains_one_block_and_freezes_it():
    """Block 1 changes while trained, then is frozen; training block 2 leaves it unchanged."""
    torch.manual_seed(0)
    net = conv_net((3, 32, 32), channels=(4, 8), widths=(16, 10))
    x, y = torch.randn(64, 3, 32, 32), torch.arange(64) % 10
    prior = torch.full((10,), 0.1)
    g = torch.Generator().manual_seed(0)
    before = [p.detach().clone() for p in net.parameters()]
    train_layer(net.layers[0], 1, x, y, prior, _settings(4), g)
    after1 = [p.detach().clone() for p in net.parameters()]
    n1 = len(list(net.layers[0].parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(before[:n1], after1[:n1]))  # block 1 trained
    assert all(torch.equal(a, b) for a, b in zip(before[n1:], after1[n1:]))  # others untouched
    net.freeze(1)
    assert net.is_frozen(1) and not net.is_frozen(2) and not net.layers[0].training
    h = forward_cached(net.layers[0], x)
    assert h.shape == (64, 4, 16, 16)
    train_layer(net.layers[1], 2, h, y, prior, _settings(4), g)
    after2 = [p.detach().clone() for p in net.parameters()]
    assert all(torch.equal(a, b) for a, b in zip(after1[:n1], after2[:n1]))  # frozen block kept
    n2 = n1 + len(list(net.layers[1].parameters()))
    assert all(not torch.equal(a, b) for a, b in zip(after1[n1:n2], after2[n1:n2]))


def test_crop_flip_shifts_and_flips_each_image():
    x = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).reshape(2, 3, 8, 8) + 1
    out = crop_flip(x, torch.Generator().manual_seed(0), pad=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    for b in range(2):  # each output is some padded crop of its own image, maybe mirrored
        padded = torch.nn.functional.pad(x[b], (2, 2, 2, 2))
        found = any(torch.equal(out[b], v[:, i:i + 8, j:j + 8])
                    for v in (padded, padded.flip(-1)) for i in range(5) for j in range(5))
        assert found
    # over many draws both flips and several offsets occur, all from the seeded generator
    many = crop_flip(x[:1].expand(64, -1, -1, -1), torch.Generator().manual_seed(1), pad=2)
    assert len({tuple(m.flatten()[:20].tolist()) for m in many}) > 5
    again = crop_flip(x[:1].expand(64, -1, -1, -1), torch.Generator().manual_seed(1), pad=2)
    assert torch.equal(many, again)
