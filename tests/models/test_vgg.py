"""The VGG-style net: unit shapes, bad shapes, batch norm under freezing, CE, parameter count."""

import pytest
import torch

from layerib.ib.endtoend import train_cross_entropy
from layerib.config import TrainConfig
from layerib.ib.layerwise import forward_cached, train_layer
from layerib.models.conv import count_parameters
from layerib.models.layered import LayeredNet
from layerib.models.vgg import Unit, default_pools, vgg


def _shapes(net, x):
    feats = net.features(x)
    assert [f.flatten(1).shape[1] for f in feats] == net.feature_dims
    return [tuple(f.shape[1:]) for f in feats]


def test_vgg_block_units_on_cifar_shapes():
    torch.manual_seed(0)
    net = vgg((3, 32, 32), channels=(4, 4, 8, 8, 16, 16), widths=(12, 10))
    assert isinstance(net, LayeredNet) and len(net) == 5  # three two-conv units, two FC
    assert _shapes(net, torch.randn(3, 3, 32, 32)) == [(4, 16, 16), (8, 8, 8), (16, 4, 4),
                                                       (12,), (10,)]
    assert net.feature_dims == [1024, 512, 256, 12, 10]
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in u) for u in net.layers[:3]]
    assert convs == [2, 2, 2]
    assert all(isinstance(m, torch.nn.BatchNorm2d) for m in (net.layers[0][1], net.layers[0][4]))


def test_vgg_conv_units_and_mnist_shapes():
    net = vgg((3, 32, 32), channels=(4, 4, 8, 8, 16, 16), widths=(10,), unit="conv")
    assert _shapes(net, torch.randn(2, 3, 32, 32)) == [
        (4, 32, 32), (4, 16, 16), (8, 16, 16), (8, 8, 8), (16, 8, 8), (16, 4, 4), (10,)]
    mnist = vgg((1, 28, 28), channels=(4, 4, 8, 8), widths=(10,), pool_after=(2, 4))
    assert _shapes(mnist, torch.randn(2, 1, 28, 28)) == [(4, 14, 14), (8, 7, 7), (10,)]
    # a unit may hold convs without a pool at the end: the last conv closes it
    odd = vgg((1, 28, 28), channels=(4, 8, 8), widths=(10,), pool_after=(1,))
    assert _shapes(odd, torch.randn(2, 1, 28, 28)) == [(4, 14, 14), (8, 14, 14), (10,)]
    assert default_pools(6) == (2, 4, 6) and default_pools(3) == (2, 3)
    plain = vgg((1, 28, 28), channels=(4,), widths=(10,), batch_norm=False)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.modules())
    assert plain.layers[0][0].bias is not None


def test_vgg_rejects_bad_shapes():
    with pytest.raises(ValueError, match=r"input 28x28 cannot be halved 3 times"):
        vgg((1, 28, 28), channels=(4, 4, 8, 8, 16, 16))  # 28 -> 14 -> 7 -> 3.5
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        vgg((784,))
    with pytest.raises(ValueError, match="distinct convs 1..2"):
        vgg((3, 32, 32), channels=(4, 4), pool_after=(3,))
    with pytest.raises(ValueError, match="unit must be one of"):
        vgg((3, 32, 32), channels=(4,), unit="pair")
    with pytest.raises(ValueError, match="positive"):
        vgg((3, 32, 32), channels=(), widths=(10,))


def test_default_vgg_parameter_count():
    net = vgg((3, 32, 32))  # 64-64-128-128-256-256, pools after 2, 4, 6, one linear layer
    chans = [3, 64, 64, 128, 128, 256, 256]
    conv = sum(9 * a * b for a, b in zip(chans[:-1], chans[1:]))  # no bias under BN
    bn = sum(2 * c for c in chans[1:])
    assert count_parameters(net) == conv + bn + (256 * 4 * 4 * 10 + 10) == 1_187_274
    assert net.feature_dims == [64 * 16 * 16, 128 * 8 * 8, 256 * 4 * 4, 10]


def stage_settings(steps: int) -> TrainConfig:
    return TrainConfig(beta=0.1, noise_var=100.0, batch_size=16, epochs_per_layer=1,
                       min_steps_per_layer=steps, lr_layer=1e-2, critic_hidden=8,
                       evals_per_layer=1, mi_eval_batch_size=16, critic_update="joint")


def bn_state(unit):
    return [t.detach().clone() for m in unit.modules() if isinstance(m, torch.nn.BatchNorm2d)
            for t in (m.running_mean, m.running_var, m.weight)]


def check_freezing(net: LayeredNet, x: torch.Tensor):
    """Train unit 1, freeze it, train unit 2 on its cached output: unit 1 is a fixed
    function (eval-mode BN, running stats unmoved, even after ``net.train()``)."""
    y, prior = torch.arange(len(x)) % 10, torch.full((10,), 0.1)
    g = torch.Generator().manual_seed(0)
    u1, u2 = net.layers[0], net.layers[1]
    stats0 = bn_state(u1)
    train_layer(u1, 1, x, y, prior, stage_settings(3), g)
    stats1 = bn_state(u1)
    assert all(not torch.equal(a, b) for a, b in zip(stats0, stats1))  # trained in train mode
    net.freeze(1)
    assert net.is_frozen(1) and not u1.training
    with torch.no_grad():
        out_a, out_b = u1(x[:5]), u1(x[:5])
    assert torch.equal(out_a, out_b)
    h = forward_cached(u1, x)
    u2_stats = bn_state(u2)
    train_layer(u2, 2, h, y, prior, stage_settings(3), g)
    assert all(torch.equal(a, b) for a, b in zip(stats1, bn_state(u1)))
    assert all(not torch.equal(a, b) for a, b in zip(u2_stats, bn_state(u2)))
    net.train()  # e.g. what train_cross_entropy does first: the frozen unit stays in eval
    assert not u1.training and u2.training
    with torch.no_grad():
        net(x[:5])
    assert all(torch.equal(a, b) for a, b in zip(stats1, bn_state(u1)))
    with torch.no_grad():
        assert torch.equal(u1(x[:5]), out_a)
    u1.requires_grad_(True)  # unfrozen: train mode is allowed again
    assert u1.train().training


def test_vgg_freezing_keeps_batch_norm_fixed():
    torch.manual_seed(0)
    check_freezing(vgg((3, 32, 32), channels=(4, 8), widths=(10,), unit="conv"),
                   torch.randn(32, 3, 32, 32))


def ce_losses(net, x, y, steps: int = 8) -> list[float]:
    losses = []
    train_cross_entropy(net, x, y, steps=steps, batch_size=len(x), lr=1e-2,
                        g=torch.Generator().manual_seed(0),
                        on_epoch=lambda e, st, loss: losses.append(loss))
    return losses


def test_vgg_cross_entropy_steps_decrease_the_loss():
    torch.manual_seed(0)
    net = vgg((3, 16, 16), channels=(4, 8), widths=(16, 10))
    x, y = torch.randn(32, 3, 16, 16), torch.arange(32) % 10
    losses = ce_losses(net, x, y)
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.3
    assert not net.training and isinstance(net.layers[0], Unit)
