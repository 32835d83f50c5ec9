"""The frozen-output cache on disk (ib/cache.py): rows read back exactly, training on it
bit-identical to the in-memory cache, ``auto`` choosing by the budget, files removed; the
run's denormal flushing switched off again after it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from layerib.config import TrainConfig
from layerib.errors import ConfigError
from layerib.ib.cache import DiskRows, FrozenCache, as_tensor, chunk_rows
from layerib.runs.training import run_training

from fake_data import write_conv_npz
from test_prefix_recompute import _cfg


def test_disk_rows_index_like_the_tensor(tmp_path):
    x = torch.randn(50, 3, 4, 2)
    rows = DiskRows.write(tmp_path / "r.f32", x.split(7))
    assert len(rows) == 50 and rows.shape == x.shape and rows.ndim == 4
    idx = torch.tensor([49, 0, 3, 3, 17])
    assert torch.equal(rows[idx], x[idx])
    assert torch.equal(rows[10:23], x[10:23]) and torch.equal(rows[5], x[5])
    assert torch.equal(rows.flatten(1)[idx], x.flatten(1)[idx])
    assert torch.equal(as_tensor(rows), x) and rows[48:60].shape == (2, 3, 4, 2)
    with pytest.raises(IndexError):
        rows[torch.tensor([50])]


def test_cache_chooses_memory_then_disk_by_budget(tmp_path):
    layer = torch.nn.Linear(8, 16)
    x = torch.randn(64, 8)
    cache = FrozenCache("auto", budget_mb=64 * 16 * 4 * 1.5 / 2**20, folder=tmp_path / "c")
    a = cache.forward(layer, x)  # 4 KiB: within the budget
    b = cache.forward(layer, x)  # the second would exceed it: on disk
    assert isinstance(a, torch.Tensor) and isinstance(b, DiskRows)
    assert torch.equal(a, as_tensor(b)) and cache.n_files == 1 and b.path.exists()
    assert isinstance(FrozenCache("disk", 1e6, tmp_path / "d").forward(layer, x), DiskRows)
    assert isinstance(FrozenCache("memory", 0, tmp_path / "m").forward(layer, x), torch.Tensor)
    cache.close()
    assert not (tmp_path / "c").exists()


def test_chunk_rows_by_size():
    assert chunk_rows(torch.empty(10, 784)) == 4096  # MNIST: as before
    assert chunk_rows(torch.empty(10, 3, 32, 32)) == (1 << 24) // (3 * 32 * 32 * 4)
    assert chunk_rows(torch.empty(10, 10 ** 8)) == 1


@pytest.mark.parametrize("disk", [dict(frozen_cache="disk"), dict(cache_budget_mb=0.0)])
def test_training_on_the_disk_cache_equals_memory(tmp_path, disk):
    data = write_conv_npz(tmp_path / "d.npz")
    a = run_training(_cfg(data, frozen_cache="memory", val_fraction=0.25, patience=0), tmp_path / "mem")
    b = run_training(_cfg(data, val_fraction=0.25, patience=0, **disk), tmp_path / "disk")
    assert a["test_accuracy"] == b["test_accuracy"] and a["train_accuracy"] == b["train_accuracy"]
    assert [la["i_x_nats"] for la in a["layers"]] == [la["i_x_nats"] for la in b["layers"]]
    assert [la["i_y_nats"] for la in a["layers"]] == [la["i_y_nats"] for la in b["layers"]]
    assert (tmp_path / "mem" / "metrics.jsonl").read_text() == (tmp_path / "disk" / "metrics.jsonl").read_text()
    ma = torch.load(tmp_path / "mem" / "model.pt")["net"]
    mb = torch.load(tmp_path / "disk" / "model.pt")["net"]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    assert not (tmp_path / "disk" / "frozen-cache").exists()  # removed at the end


def test_ce_features_on_disk_equal_memory(tmp_path):
    data = write_conv_npz(tmp_path / "d.npz")
    kw = dict(method="ce", ce_epochs=1, infoplane_evals=0)
    a = run_training(_cfg(data, frozen_cache="memory", **kw), tmp_path / "mem")
    b = run_training(_cfg(data, frozen_cache="disk", **kw), tmp_path / "disk")
    assert a["layers"] == b["layers"] and a["test_accuracy"] == b["test_accuracy"]


def test_disk_with_augmentation_is_refused():
    with pytest.raises(ConfigError, match="frozen_cache"):
        TrainConfig(augment="crop_flip", frozen_cache="disk")
    with pytest.raises(ConfigError, match="cache_budget_mb"):
        TrainConfig(cache_budget_mb=-1.0)


def test_flush_denormal_is_reset_after_the_run(tmp_path):
    data = write_conv_npz(tmp_path / "d.npz")
    run_training(_cfg(data, flush_denormal=True), tmp_path / "run")
    assert float(torch.tensor([1e-39]) * 2.0) > 0.0  # denormals are kept again
    with pytest.raises(ConfigError, match="flush_denormal"):
        TrainConfig(flush_denormal="yes")
