"""The ResNet-style net: unit shapes, residual blocks, batch norm under freezing, CE, size."""

import pytest
import torch

from layerib.models.conv import count_parameters
from layerib.models.layered import LayeredNet
from layerib.models.resnet import BasicBlock, resnet
from layerib.models.vgg import Unit
from test_vgg import _shapes, ce_losses, check_freezing


def test_resnet_stage_units_on_cifar_and_mnist_shapes():
    torch.manual_seed(0)
    net = resnet((3, 32, 32), channels=(4, 8, 16), widths=(12, 10), blocks_per_stage=2)
    assert isinstance(net, LayeredNet) and len(net) == 5
    assert _shapes(net, torch.randn(3, 3, 32, 32)) == [(4, 32, 32), (8, 16, 16), (16, 8, 8),
                                                       (12,), (10,)]
    assert [sum(isinstance(m, BasicBlock) for m in u) for u in net.layers[:3]] == [2, 2, 2]
    assert isinstance(net.layers[0][0], torch.nn.Conv2d)  # the stem is in unit 1
    mnist = resnet((1, 28, 28), channels=(4, 8, 16), widths=(10,))
    assert _shapes(mnist, torch.randn(2, 1, 28, 28)) == [(4, 28, 28), (8, 14, 14), (16, 7, 7),
                                                         (10,)]
    strided = resnet((3, 32, 32), channels=(4, 8), widths=(10,), stem_stride=2)
    assert _shapes(strided, torch.randn(2, 3, 32, 32)) == [(4, 16, 16), (8, 8, 8), (10,)]
    odd = resnet((1, 7, 7), channels=(2, 4, 4), widths=(10,))  # stride 2 gives ceil(H / 2)
    assert _shapes(odd, torch.randn(2, 1, 7, 7)) == [(2, 7, 7), (4, 4, 4), (4, 2, 2), (10,)]


def test_resnet_block_units():
    net = resnet((3, 32, 32), channels=(4, 8), widths=(10,), blocks_per_stage=2, unit="block")
    assert _shapes(net, torch.randn(2, 3, 32, 32)) == [(4, 32, 32), (4, 32, 32), (8, 16, 16),
                                                       (8, 16, 16), (10,)]
    assert all(isinstance(u, Unit) for u in net.layers[:4])


def test_basic_block_shortcuts():
    same, down = BasicBlock(4, 4), BasicBlock(4, 8, stride=2)
    assert isinstance(same.shortcut, torch.nn.Identity)
    assert isinstance(down.shortcut[0], torch.nn.Conv2d) and down.shortcut[0].stride == (2, 2)
    x = torch.randn(2, 4, 8, 8)
    assert down(x).shape == (2, 8, 4, 4) and (down(x) >= 0).all()
    for p in same.body.parameters():  # a zero body leaves relu(x): the identity path
        torch.nn.init.zeros_(p)
    assert torch.equal(same(x), torch.relu(x))


def test_resnet_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        resnet((3, 32))
    with pytest.raises(ValueError, match="blocks_per_stage"):
        resnet((3, 32, 32), blocks_per_stage=0)
    with pytest.raises(ValueError, match="unit must be one of"):
        resnet((3, 32, 32), unit="conv")
    with pytest.raises(ValueError, match="positive"):
        resnet((3, 32, 32), widths=())
    with pytest.raises(ValueError, match="stem_stride"):
        resnet((3, 32, 32), stem_stride=4)


def test_default_resnet_parameter_count():
    net = resnet((3, 32, 32))  # stem 64, one block per stage 64-128-256, GAP, linear
    stem = 3 * 64 * 9 + 2 * 64
    block = lambda a, b: 9 * a * b + 9 * b * b + 4 * b + ((a * b + 2 * b) if a != b else 0)
    head = 256 * 10 + 10
    assert count_parameters(net) == stem + block(64, 64) + block(64, 128) + block(128, 256) + head
    assert 1_000_000 < count_parameters(net) < 1_500_000
    assert net.feature_dims == [64 * 32 * 32, 128 * 16 * 16, 256 * 8 * 8, 10]


def test_resnet_freezing_keeps_batch_norm_fixed():
    torch.manual_seed(0)
    check_freezing(resnet((3, 16, 16), channels=(4, 8), widths=(10,)), torch.randn(32, 3, 16, 16))


def test_resnet_cross_entropy_steps_decrease_the_loss():
    torch.manual_seed(0)
    net = resnet((3, 16, 16), channels=(4, 8), widths=(10,))
    losses = ce_losses(net, torch.randn(32, 3, 16, 16), torch.arange(32) % 10)
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.3
