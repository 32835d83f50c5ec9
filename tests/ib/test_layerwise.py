"""Layer-wise training: earlier layers stay frozen; the read-out sees only frozen features."""

import copy

import pytest
import torch

from layerib.config import TrainConfig
from layerib.ib.endtoend import accuracy, fit_readout
from layerib.ib.layerwise import forward_cached, train_layer
from layerib.models.mlp import mlp
from layerib.ib.layerwise import stage_steps


def _toy(n=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 8, generator=g) * 0.3
    x[torch.arange(n), y] += 2.0
    return x, y, g


def test_training_layer_two_leaves_layer_one_unchanged():
    x, y, g = _toy()
    net = mlp((8,), (16, 12, 4))
    prior = torch.full((4,), 0.25)
    cfg = TrainConfig(widths=(16, 12, 4), batch_size=64, epochs_per_layer=2,
                      min_steps_per_layer=20, critic_hidden=16, beta=1e-2)
    steps, _ = stage_steps(cfg, len(x))
    train_layer(net.layers[0], 1, x, y, prior, cfg, g)
    net.freeze(1)
    before = copy.deepcopy(net.layers[0].state_dict())
    layer2_before = copy.deepcopy(net.layers[1].state_dict())
    h = forward_cached(net.layers[0], x)
    records = []
    train_layer(net.layers[1], 2, h, y, prior, cfg, g, heldout=(h, y), on_eval=records.append)
    for k, v in net.layers[0].state_dict().items():
        assert torch.equal(v, before[k]), k
    assert any(not torch.equal(v, layer2_before[k]) for k, v in net.layers[1].state_dict().items())
    assert records and records[-1]["layer"] == 2 and records[-1]["step"] == steps
    assert len(records) == min(cfg.evals_per_layer, steps)


def test_readout_sees_only_frozen_features():
    x, y, g = _toy()
    net = mlp((8,), (16, 4))
    for i in (1, 2):
        net.freeze(i)
    state = copy.deepcopy(net.state_dict())
    feats = forward_cached(net, x)
    assert not feats.requires_grad
    readout = fit_readout(feats, y, 4, steps=50, batch_size=64, lr=1e-2, g=g)
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    assert readout.in_features == 4 and 0.0 <= accuracy(readout, feats, y) <= 1.0


def _one_step(update: str, seed: int = 0):
    """One training step of layer 1 on the toy data; returns (layer, critics, start state)."""
    x, y, _ = _toy()
    torch.manual_seed(seed)
    net = mlp((8,), (16, 4))
    prior = torch.full((4,), 0.25)
    cfg = TrainConfig(widths=(16, 4), batch_size=256, epochs_per_layer=1, min_steps_per_layer=1,
                      critic_hidden=16, beta=0.5, noise_var=0.1, critic_update=update)
    assert stage_steps(cfg, len(x))[0] == 1
    torch.manual_seed(seed + 1)  # the critics' initialisation
    obj = train_layer(net.layers[0], 1, x, y, prior, cfg, torch.Generator().manual_seed(7))
    return net.layers[0], obj


def test_joint_update_gives_the_critic_the_same_step_as_alternating():
    """With the q-free AA-MINE critic the Lagrangian's critic gradient is that of I(Y;L) alone,
    so after one step both schemes leave identical critics (the layers' steps differ only in
    which critic they see: alternating uses the already-updated one)."""
    layer_a, obj_a = _one_step("alternating")
    layer_j, obj_j = _one_step("joint")
    for (k, a), (_, j) in zip(obj_a.named_parameters(), obj_j.named_parameters()):
        assert torch.allclose(a, j, atol=1e-6), k
    assert all(torch.isfinite(p).all() for p in layer_j.parameters())


@pytest.mark.parametrize("update", ["alternating", "joint"])
def test_both_updates_learn_the_labels(update):
    x, y, g = _toy(512)
    net = mlp((8,), (16, 4))
    prior = torch.full((4,), 0.25)
    cfg = TrainConfig(widths=(16, 4), batch_size=64, epochs_per_layer=1, min_steps_per_layer=600,
                      critic_hidden=32, beta=1e-2, critic_update=update, evals_per_layer=1)
    records = []
    train_layer(net.layers[0], 1, x, y, prior, cfg, g, heldout=(x, y), on_eval=records.append)
    # 4 equiprobable, well-separated classes: I(Y;L) -> ln 4 = 1.386 nats; a step-0 critic gives ~0
    print(update, records[-1]["test_i_y_nats"])
    assert records[-1]["test_i_y_nats"] > 1.0, records[-1]


@pytest.mark.parametrize("y_critic", ["concat", "heads"])
def test_joint_lagrangian_gives_the_label_critic_the_gradient_of_i_y_alone(y_critic):
    """The exactness behind critic_update='joint': with the q-free AA-MINE critic, the
    Lagrangian's gradient w.r.t. every critic parameter equals that of the critic's own
    objective (I(Y;L)'s InfoNCE bound), and no AA-MINE parameter gets a gradient."""
    from layerib.ib.objective import IBObjective, trainer_settings
    x, y, g = _toy()
    torch.manual_seed(0)
    obj = IBObjective(16, torch.full((4,), 0.25), beta=0.7, noise_var=0.1,
                      settings=trainer_settings(16, 0.01), y_bound="infonce", y_critic=y_critic)
    assert obj.q_free
    l = mlp((8,), (16, 4)).layers[0](x[:64]).flatten(1)
    z = l + obj.sample_noise(l, g)
    params = list(obj.parameters())
    surrogate, _, _ = obj.critic_objective(l, y[:64], z)
    g_critic = torch.autograd.grad(surrogate, params, allow_unused=True)
    lagrangian, _, _ = obj.layer_objective(l, y[:64], z)
    g_joint = torch.autograd.grad(lagrangian, params, allow_unused=True, retain_graph=True)
    for (name, _), a, b in zip(obj.named_parameters(), g_critic, g_joint):
        if name.startswith("i_y."):
            assert a is not None and b is not None and torch.allclose(a, b, atol=1e-6), name
        else:  # the AA-MINE critic's q(z): cancels, never trained
            assert b is None or not b.abs().max() > 0, name
    g_layer = torch.autograd.grad(lagrangian, l)[0]
    assert g_layer.abs().max() > 0
