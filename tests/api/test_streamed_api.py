"""``layerib.train_layerwise(..., stream=True)``: a Dataset read batch by batch through a
DataLoader trains bit-identically to the same data in memory (the batches come from the
same seeded loop)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.utils.data import Dataset, TensorDataset

import layerib
from layerib.data.streamed import DatasetRows
from layerib.errors import ConfigError


def _data(n, seed):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % 3
    x = torch.randn(n, 12, generator=g)
    x[torch.arange(n), y] += 3.0
    return x, y


def _layers():
    torch.manual_seed(0)
    return [nn.Sequential(nn.Linear(12, 16), nn.ReLU()), nn.Linear(16, 3)]


KW = dict(val_refit=False, min_steps_per_layer=10, epochs_per_layer=1, batch_size=16, readout_epochs=1,
          critic_hidden=8, mi_eval_batch_size=16, mi_restarts=1, mi_baseline=False, mi_max_steps=200, evals_per_layer=2,
          noise_var=1.0, beta=0.01)


class Items(Dataset):
    """A plain map-style Dataset (numpy-free, item by item)."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        return self.x[i], int(self.y[i])


def test_dataset_rows_load_the_indexed_items():
    x, y = _data(40, 0)
    rows = DatasetRows(TensorDataset(x, y), workers=2)
    idx = torch.tensor([5, 39, 0, 5, 7])
    assert torch.equal(rows[idx], x[idx]) and torch.equal(rows[3:11], x[3:11])
    assert rows.shape == x.shape and torch.equal(rows.subset(idx)[1:3], x[idx][1:3])
    mask = torch.zeros(40, dtype=torch.bool)
    mask[[1, 4]] = True
    assert torch.equal(rows.subset(mask)[0:2], x[mask])


@pytest.mark.parametrize("method,workers,extra", [("ib", 0, {}), ("ib", 2, {"val_fraction": 0.25}),
                                                  ("ce", 0, {"ce_epochs": 1, "infoplane_evals": 0})])
def test_streamed_dataset_trains_bit_identically(method, workers, extra):
    (x, y), (xt, yt) = _data(96, 1), _data(48, 2)
    a = layerib.train_layerwise(_layers(), (x, y), (xt, yt), method=method, **KW, **extra)
    b = layerib.train_layerwise(_layers(), Items(x, y), Items(xt, yt), method=method,
                                stream=True, workers=workers, **KW, **extra)
    assert isinstance(b.test_accuracy, float) and a.test_accuracy == b.test_accuracy
    assert a.result["layers"] == b.result["layers"]
    sa, sb = a.net.state_dict(), b.net.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_streamed_run_folder_and_bad_workers(tmp_path):
    (x, y), (xt, yt) = _data(64, 1), _data(48, 2)
    with pytest.warns(UserWarning, match="streamed data are not saved"):
        r = layerib.train_layerwise(_layers(), Items(x, y), Items(xt, yt), out=tmp_path / "run",
                                    stream=True, **KW)
    assert (tmp_path / "run" / "result.json").exists() and not (tmp_path / "run" / "data.pt").exists()
    assert not (tmp_path / "run" / "frozen-cache").exists()
    assert 0.0 <= r.test_accuracy <= 1.0
    with pytest.raises(ConfigError, match="workers"):
        layerib.train_layerwise(_layers(), (x, y), workers=-1, **KW)
