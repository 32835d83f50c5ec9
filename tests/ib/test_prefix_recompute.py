"""Layer stages on a recomputed frozen prefix: the same result as the cache without
augmentation; with augmentation (crop + flip) layer-wise training runs and differs."""

from __future__ import annotations

import json

import torch

from layerib.config import TrainConfig
from layerib.runs.training import run_training

from fake_data import write_conv_npz




def _cfg(data, **kw):
    return TrainConfig(dataset=data, arch="conv", channels=(2,), widths=(8, 3), batch_size=32,
                       min_steps_per_layer=12, epochs_per_layer=1, readout_epochs=1,
                       critic_hidden=8, mi_eval_batch_size=16, mi_restarts=1, mi_baseline=False, mi_max_steps=200,
                       evals_per_layer=2, noise_var=1.0, beta=0.01, **kw)


def test_recomputed_prefix_equals_the_cache_without_augmentation(tmp_path):
    data = write_conv_npz(tmp_path / "d.npz")
    a = run_training(_cfg(data, frozen_cache="memory"), tmp_path / "mem")
    b = run_training(_cfg(data, frozen_cache="recompute"), tmp_path / "re")
    assert a["test_accuracy"] == b["test_accuracy"]
    assert [la["i_x_nats"] for la in a["layers"]] == [la["i_x_nats"] for la in b["layers"]]
    assert (tmp_path / "mem" / "metrics.jsonl").read_text() == (tmp_path / "re" / "metrics.jsonl").read_text()
    ma = torch.load(tmp_path / "mem" / "model.pt")["net"]
    mb = torch.load(tmp_path / "re" / "model.pt")["net"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)


def test_layerwise_training_with_augmentation(tmp_path):
    data = write_conv_npz(tmp_path / "d.npz")
    plain = run_training(_cfg(data), tmp_path / "plain")
    aug = run_training(_cfg(data, augment="crop_flip"), tmp_path / "aug")
    assert json.loads((tmp_path / "aug" / "config.json").read_text())["config"]["augment"] == "crop_flip"
    ma = torch.load(tmp_path / "plain" / "model.pt")["net"]
    mb = torch.load(tmp_path / "aug" / "model.pt")["net"]
    assert any(not torch.equal(ma[k], mb[k]) for k in ma)  # the augmented batches were used
    assert 0.0 <= aug["test_accuracy"] <= 1.0 and len(aug["layers"]) == len(plain["layers"])
