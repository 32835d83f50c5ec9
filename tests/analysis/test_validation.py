"""Validation accuracy of a subset run on the training images outside its subset."""

import pytest
import torch

from layerib.analysis.validation import outside_subset_accuracy
from layerib.config import TrainConfig
from layerib.data.mnist import load_mnist
from layerib.data.subsets import stratified_subset
from layerib.errors import ConfigError, RunDirError
from layerib.runs.training import run_training


def _run(root, out, fraction, method="ib"):
    cfg = TrainConfig(dataset="mnist", method=method, train_fraction=fraction, widths=(16, 10),
                      batch_size=32, epochs_per_layer=1, min_steps_per_layer=30, ce_epochs=1,
                      readout_epochs=1, critic_hidden=16, mi_restarts=1, mi_baseline=False, mi_max_steps=200, evals_per_layer=1,
                      infoplane_evals=0, data_root=str(root), download=False, seed=3)
    run_training(cfg, out)
    return cfg


@pytest.mark.parametrize("method", ["ib", "ce"])
def test_validates_on_exactly_the_unseen_training_images(tiny_mnist, tmp_path, method):
    _run(tiny_mnist, tmp_path / "r", 0.5, method)
    res = outside_subset_accuracy(tmp_path / "r", str(tiny_mnist))
    labels = load_mnist(str(tiny_mnist), "train", download=False).labels
    assert res["n_val"] == len(labels) - len(stratified_subset(labels, 0.5, 3)) == 150
    assert res["method"] == method and res["seed"] == 3
    # unseen training images and test images come from the same distribution: accuracies
    # agree within sampling error (150 and 200 images: stderr <= 0.04 each; tolerance 3.5 sd)
    assert abs(res["val_accuracy"] - res["test_accuracy"]) < 0.2


def test_refuses_runs_with_nothing_unseen_or_unfinished(tiny_mnist, tmp_path):
    _run(tiny_mnist, tmp_path / "full", 1.0)
    with pytest.raises(ConfigError, match="whole training set"):
        outside_subset_accuracy(tmp_path / "full", str(tiny_mnist))
    with pytest.raises(RunDirError, match="no result.json"):
        outside_subset_accuracy(tmp_path / "nothing", str(tiny_mnist))
