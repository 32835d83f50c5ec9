"""Validation accuracy of a subset run on the training images it never saw.

A run on a fraction of a training set (MNIST with ``--train-fraction 0.01``: the paper's
600 images) leaves the other training images (59400) unseen: a validation set from the
same distribution as the training subset, disjoint from it and from the test set. This
is how the Table 1 preset's MNIST 1 % schedule was chosen (docs/results/table1.md, early_stopping.md): settings
are compared by this accuracy, never by the test accuracy.
"""

from __future__ import annotations

from pathlib import Path

import torch

from layerib.analysis.runs import read_json
from layerib.data.registry import load_dataset
from layerib.data.subsets import stratified_subset
from layerib.errors import ConfigError, RunDirError
from layerib.runs.estimation import load_run


@torch.inference_mode()
def outside_subset_accuracy(run_dir: str | Path, data_root: str | None = None,
                            chunk: int = 8192) -> dict:
    """Accuracy of a finished run on the training images outside its subset.

    The subset is re-drawn exactly as training drew it
    (:func:`layerib.data.subsets.stratified_subset` with the run's fraction and seed);
    the prediction is the run's read-out on its last layer (for CE runs, the net's own
    output), as for its test accuracy.

    Args:
        run_dir: a finished run folder of ``layerib train`` (``model.pt``, ``result.json``).
        data_root: folder holding the run's data set (None: ``$LAYERIB_DATA_ROOT`` or the cache).

    Returns:
        ``{"run", "method", "seed", "train_fraction", "n_val", "val_accuracy",
        "test_accuracy"}``; accuracies are fractions in [0, 1].

    Raises:
        RunDirError: no finished run in ``run_dir`` (missing or unreadable files).
        ConfigError: the run used the whole training set (nothing unseen).
    """
    run_dir = Path(run_dir)
    result = read_json(run_dir / "result.json")
    if result is None:
        raise RunDirError(f"{run_dir} has no result.json; pass a finished run of layerib train")
    net, cfg = load_run(run_dir)
    fraction = cfg["train_fraction"]
    if fraction >= 1.0:
        raise ConfigError(f"{run_dir} trained on the whole training set: no training images are "
                          "left to validate on; use runs with --train-fraction < 1")
    state = torch.load(run_dir / "model.pt", map_location="cpu", weights_only=True)
    head = torch.nn.Identity()
    if state.get("head") is not None:
        w = state["head"]["weight"]
        head = torch.nn.Linear(w.shape[1], w.shape[0])
        head.load_state_dict(state["head"])
    train = load_dataset(cfg["dataset"], "train", data_root=data_root, download=False,
                         cifar_source=cfg.get("cifar_source", "auto"))
    unseen = torch.ones(len(train.labels), dtype=torch.bool)
    unseen[stratified_subset(train.labels, fraction, cfg["seed"])] = False
    x, y = train.images[unseen], train.labels[unseen]
    pred = torch.cat([head(net(x[i:i + chunk])).argmax(1) for i in range(0, len(x), chunk)])
    return {"run": str(run_dir), "method": cfg["method"], "seed": cfg["seed"],
            "train_fraction": fraction, "n_val": len(y),
            "val_accuracy": (pred == y).float().mean().item(),
            "test_accuracy": result["test_accuracy"]}
