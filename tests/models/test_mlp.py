import pytest
import torch

from layerib.models.mlp import mlp


def test_features_and_shapes():
    net = mlp((1, 28, 28), (32, 16, 10))
    x = torch.randn(5, 1, 28, 28)
    feats = net.features(x)
    assert [f.shape for f in feats] == [(5, 32), (5, 16), (5, 10)]
    assert torch.equal(feats[-1], net(x))
    assert (feats[0] >= 0).all() and (feats[1] >= 0).all()  # ReLU on hidden layers
    assert (feats[2] < 0).any()  # no nonlinearity on the last layer


def test_freeze_and_prefix():
    net = mlp((4,), (3, 2))
    net.freeze(1)
    assert net.is_frozen(1) and not net.is_frozen(2)
    x = torch.randn(2, 4)
    assert torch.equal(net.prefix(1)(x), net.features(x)[0])
    with pytest.raises(ValueError, match="do not exist"):
        net.prefix(3)
