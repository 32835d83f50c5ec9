"""The conv auxiliary head as the label critic (``y_critic="convhead"``): it learns I(Y; L)
on a separable task, and a layer trains through it."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from layerib.config import TrainConfig
from layerib.data.mnist import ImageDataset
from layerib.errors import ConfigError
from layerib.ib.callbacks import Records
from layerib.ib.objective import label_estimator, trainer_settings
from layerib.ib.trainers import LayerwiseTrainer, resolve_settings
from layerib.mi.critics import CRITICS, TRAINER_Y_CRITICS, ConvHeadCritic, MapPool
from layerib.models.layered import LayeredNet


def _maps(n=256, seed=0):
    """Four classes: a bright 2x2 patch in channel c of a (4, 8, 8) map at a random place,
    plus noise (what a conv and a global pool can detect wherever it is)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 4
    x = torch.randn(n, 4, 8, 8, generator=g) * 0.5
    rows, cols = torch.randint(0, 7, (2, n), generator=g)
    for k in range(n):
        x[k, y[k], rows[k]:rows[k] + 2, cols[k]:cols[k] + 2] += 2.0
    return x, y


def test_convhead_is_a_registered_trainer_label_critic():
    assert TRAINER_Y_CRITICS["convhead"] == "convhead"
    assert CRITICS["convhead"].kinds == frozenset({"labels"})
    with pytest.raises(ConfigError, match="pass --y-pool K"):
        TrainConfig(y_critic="convhead")
    assert TrainConfig(y_critic="convhead", y_pool=4).y_critic == "convhead"


def test_the_critic_learns_i_y_on_separable_maps():
    """InfoNCE over the classes with the exact prior: from about 0 at initialisation to most
    of ln 4 = 1.39 nats (the classes are separable) after 150 Adam steps of the head."""
    x, y = _maps()
    torch.manual_seed(0)
    est = label_estimator(4 * 8 * 8, torch.full((4,), 0.25), trainer_settings(16, 0.01),
                          critic="convhead", view=MapPool((4, 8, 8), 8))
    assert isinstance(est.critic, ConvHeadCritic) and est.critic.map_shape == (4, 8, 8)
    l = x.flatten(1)
    with torch.no_grad():
        before = float(est.eval().value(l, y))
    est.train()
    opt = torch.optim.Adam(est.parameters(), lr=1e-2)
    g = torch.Generator().manual_seed(1)
    for _ in range(150):
        idx = torch.randperm(len(y), generator=g)[:64]
        loss = -est.objective(l[idx], y[idx])[0]
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = float(est.eval().value(l, y))
    assert abs(before) < 0.3 and after > 1.0 and after <= math.log(4) + 1e-6


def test_a_conv_layer_trains_through_the_conv_head():
    """Method iy with the conv head: the layer's training I(Y; L) rises over its stage."""
    x, y = _maps(320)
    torch.manual_seed(0)
    net = LayeredNet([nn.Sequential(nn.Conv2d(4, 4, 3, padding=1), nn.ReLU()),
                      nn.Sequential(nn.Flatten(), nn.Linear(4 * 64, 4))], [4 * 64, 4])
    cfg = TrainConfig(method="iy", y_critic="convhead", y_pool=8, critic_hidden=8, batch_size=32,
                      epochs_per_layer=4, min_steps_per_layer=40, readout_epochs=1,
                      evals_per_layer=4, val_fraction=0, lr_layer=1e-2, lr_critic=1e-2,
                      mi_restarts=1, mi_baseline=False, mi_max_steps=30, mi_eval_batch_size=64)
    data = ImageDataset(x, y, 4, "toy")
    recs = Records()
    fitted = LayerwiseTrainer(net, resolve_settings(cfg, len(y))).fit(data, data, callbacks=[recs])
    i_y = [r["train_i_y_nats"] for r in recs.records if r["stage"] == "layer" and r["layer"] == 1]
    assert len(i_y) == 4 and i_y[-1] > i_y[0] + 0.3 and i_y == sorted(i_y)
    assert fitted.result["test_accuracy"] > 0.5  # chance is 0.25
