"""The CE recipe options: Nesterov SGD and label smoothing (``ce_optimizer``, ``label_smoothing``)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from layerib.config import TrainConfig
from layerib.data.mnist import ImageDataset
from layerib.errors import ConfigError
from layerib.ib.callbacks import CallbackList
from layerib.ib.endtoend import CEOptions, ce_optimizer, ce_stage
from layerib.ib.stage import StageSpec
from layerib.ib.trainers import EndToEndCE, resolve_settings
from layerib.models.mlp import mlp


def _toy(n=192):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 3
    x = torch.randn(n, 6, generator=g) * 0.3
    x[torch.arange(n), y] += 2.0
    return x, y


def test_nesterov_is_sgd_with_nesterov_momentum_and_the_weight_decay():
    opt = ce_optimizer([nn.Parameter(torch.zeros(3))],
                       CEOptions(8, 0.1, weight_decay=5e-4, optimizer="nesterov"))
    group = opt.param_groups[0]
    assert isinstance(opt, torch.optim.SGD) and group["nesterov"] and group["momentum"] == 0.9
    assert group["weight_decay"] == 5e-4 and group["lr"] == 0.1
    assert isinstance(ce_optimizer([nn.Parameter(torch.zeros(3))], CEOptions(8, 0.1)),
                      torch.optim.Adam)
    with pytest.raises(ValueError, match="CE optimizer must be one of adam, nesterov"):
        ce_optimizer([nn.Parameter(torch.zeros(3))], CEOptions(8, 0.1, optimizer="lion"))


def test_label_smoothing_is_the_loss_the_stage_minimises():
    """One SGD step (no momentum yet at step 1) moves the weights by -lr * the gradient of the
    smoothed cross-entropy, which differs from the plain one's."""
    x, y = _toy(32)
    torch.manual_seed(0)
    start = nn.Linear(6, 3)
    moved = {}
    for ls in (0.0, 0.3):
        model = nn.Linear(6, 3)
        model.load_state_dict(start.state_dict())
        ce_stage(model, x, y, torch.Generator().manual_seed(0),
                 CEOptions(32, 0.5, optimizer="nesterov", label_smoothing=ls),
                 StageSpec("ce", 1), CallbackList())
        ref = nn.Linear(6, 3)
        ref.load_state_dict(start.state_dict())
        loss = F.cross_entropy(ref(x[torch.randperm(32, generator=torch.Generator().manual_seed(0))]),
                               y[torch.randperm(32, generator=torch.Generator().manual_seed(0))],
                               label_smoothing=ls)
        loss.backward()
        # Nesterov's first step: lr * (1 + momentum) * gradient
        assert torch.allclose(model.weight, start.weight - 0.5 * 1.9 * ref.weight.grad, atol=1e-6)
        moved[ls] = model.weight.detach().clone()
    assert not torch.allclose(moved[0.0], moved[0.3])


def test_a_ce_run_with_the_recipe_learns():
    x, y = _toy()
    cfg = TrainConfig(method="ce", widths=(16, 3), batch_size=32, ce_epochs=4,
                      min_steps_per_layer=1, ce_optimizer="nesterov", label_smoothing=0.2,
                      lr_layer=0.05, lr_schedule="cosine", val_fraction=0, infoplane_evals=0,
                      mi_restarts=1, mi_baseline=False, mi_max_steps=20, mi_eval_batch_size=32)
    torch.manual_seed(0)
    fitted = EndToEndCE(mlp((6,), (16, 3)), resolve_settings(cfg, len(y))).fit(
        ImageDataset(x, y, 3, "toy"), ImageDataset(x, y, 3, "toy"))
    assert fitted.result["test_accuracy"] > 0.9


@pytest.mark.parametrize("kw,match", [(dict(ce_optimizer="sgd"), "ce_optimizer must be one of"),
                                      (dict(label_smoothing=1.0), r"label_smoothing must be in \[0, 1\)")])
def test_bad_recipe_settings_are_one_line_errors(kw, match):
    with pytest.raises(ConfigError, match=match):
        TrainConfig(**kw)
