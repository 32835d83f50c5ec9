"""Issue 15, item 3: the label critic's input normalisation and the stage's scale records."""

import dataclasses

import pytest
import torch

from layerib.config import TrainConfig
from layerib.ib.layerwise import train_layer
from layerib.ib.objective import IBObjective, trainer_settings
from layerib.mi.critics import LabelCritic, LabelHeadsCritic, normalise_batch
from layerib.models.mlp import mlp


@pytest.mark.parametrize("cls", [LabelCritic, LabelHeadsCritic])
def test_normalised_label_critics_ignore_the_scale_of_l(cls):
    torch.manual_seed(0)
    l = torch.relu(torch.randn(32, 6))
    shift = torch.randn(1, 6)
    rms, std, raw = (cls(6, 3, 16, input_norm=m) for m in ("rms", "standard", "none"))
    assert torch.allclose(rms.class_scores(l), rms.class_scores(250.0 * l), atol=1e-5)
    assert torch.allclose(std.class_scores(l), std.class_scores(1e-3 * l + shift), atol=1e-4)
    assert not torch.allclose(raw.class_scores(l), raw.class_scores(250.0 * l), atol=1e-2)


def test_normalise_batch_values_and_zero_rows():
    l = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
    assert torch.allclose(normalise_batch(l, "rms"), l / 12.5 ** 0.5)
    assert torch.equal(normalise_batch(l, "none"), l)
    assert not normalise_batch(torch.zeros(4, 3), "rms").any()
    assert not normalise_batch(torch.ones(4, 3), "standard").any()
    with pytest.raises(ValueError, match="input_norm must be one of"):
        normalise_batch(l, "layer")


def test_rms_critic_gives_no_gradient_along_the_scale_of_l():
    # d/da I_Y(a l) = <dI_Y/dl, l> / a: zero for the scale-invariant estimate
    torch.manual_seed(0)
    prior = torch.full((3,), 1 / 3)
    obj = IBObjective(6, prior, beta=0.0, noise_var=1.0, y_bound="infonce",
                      settings=trainer_settings(16, 0.01, "rms"))
    l = torch.relu(torch.randn(48, 6)).requires_grad_(True)
    l_ = l.detach()
    y = torch.arange(48) % 3
    iy, _, _ = obj.layer_objective(l, y, l.detach())
    (g,) = torch.autograd.grad(iy, l)
    assert abs(float((g * l_).sum())) < 1e-5 * float(g.norm() * l_.norm())


def test_stage_records_carry_the_output_scale_and_dead_units():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(128) % 4
    x = torch.randn(128, 8, generator=g)
    net = mlp((8,), (16, 4))
    cfg = TrainConfig(widths=(16, 4), batch_size=32, epochs_per_layer=1, min_steps_per_layer=8,
                      critic_hidden=8, beta=1e-2, mi_eval_batch_size=32, evals_per_layer=2)
    s = dataclasses.replace(cfg, y_input_norm="rms")
    records = []
    train_layer(net.layers[0], 1, x, y, torch.full((4,), 0.25), s, g, heldout=(x, y),
                on_eval=records.append)
    with torch.no_grad():
        l = net.layers[0](x)
    r = records[-1]
    assert r["test_output_rms"] == pytest.approx(float(l.pow(2).mean().sqrt()), rel=1e-5)
    assert r["test_unit_std"] == pytest.approx(float(l.std(0).mean()), rel=1e-5)
    assert r["test_dead_units"] == float((l.abs().amax(0) == 0).float().mean())


def test_alternating_layer_first_is_the_joint_update():
    # with the InfoNCE label bound, the q-free AA-MINE term and one critic step, stepping the
    # layer before the critic's update is what the joint update does (issue 15: the order is
    # what lets the layer's output run away under the alternating update)
    g0 = torch.Generator().manual_seed(0)
    y = torch.arange(128) % 4
    x = torch.randn(128, 8, generator=g0)
    cfg = TrainConfig(widths=(16, 4), batch_size=32, epochs_per_layer=1, min_steps_per_layer=12,
                      critic_hidden=8, beta=1e-2)
    weights = {}
    for name, extra in {"joint": dict(critic_update="joint"),
                        "layer_first": dict(critic_update="alternating", layer_first=True),
                        "alternating": dict(critic_update="alternating")}.items():
        torch.manual_seed(0)
        net = mlp((8,), (16, 4))
        s = dataclasses.replace(cfg, **extra)
        train_layer(net.layers[0], 1, x, y, torch.full((4,), 0.25), s,
                    torch.Generator().manual_seed(1))
        weights[name] = net.layers[0].state_dict()
    for k, v in weights["joint"].items():
        assert torch.allclose(v, weights["layer_first"][k], atol=1e-5), k
    assert any(not torch.allclose(v, weights["alternating"][k], atol=1e-5)
               for k, v in weights["joint"].items())
