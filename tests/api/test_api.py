"""The public API: your own net and data through layerib.train_layerwise and measure_layers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import layerib
from layerib.models.registry import as_layered
from layerib.errors import ConfigError


def _digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    x = (d.data / 16.0).astype(np.float32)  # 8x8 grey levels 0..16 -> [0, 1]
    y = d.target.astype(np.int64)
    perm = np.random.default_rng(0).permutation(len(y))  # a fixed split: 1437 train, 360 test
    tr, te = perm[:1437], perm[1437:]
    return (x[tr], y[tr]), (x[te], y[te])


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


FAST = dict(min_steps_per_layer=300, epochs_per_layer=1, critic_hidden=64, noise_var=1.0,
            mi_restarts=1, mi_baseline=False, mi_max_steps=200, evals_per_layer=2, mi_eval_batch_size=128, infoplane_evals=0,
            ce_epochs=40)


def test_exports():
    assert {"train_layerwise", "measure_layers", "InfoPlaneRecorder", "MIResult",
            "TrainResult", "LayerMI", "TrainConfig"} <= set(layerib.__all__)


@pytest.mark.parametrize("method", ["ib", "ce"])
def test_digits_sequential_reaches_95_percent(method):
    train, test = _digits()
    res = layerib.train_layerwise(_net(), train, test, method=method, **FAST)
    assert isinstance(res, layerib.TrainResult)
    assert res.test_accuracy >= 0.95, res.test_accuracy
    assert len(res.layers) == 2 and all(isinstance(r, layerib.LayerMI) for r in res.layers)
    assert [r.width for r in res.layers] == [32, 10]
    for r in res.layers:
        assert math.isfinite(r.i_x.value) and math.isfinite(r.i_x_truth) and r.i_y is not None
    assert res.settings.method == method and res.settings.noise_var == 1.0
    logits = res.predict(torch.as_tensor(test[0]))
    assert logits.shape == (len(test[1]), 10)
    assert (logits.argmax(1).numpy() == test[1]).mean() == pytest.approx(res.test_accuracy)


def test_run_folder_resumes_after_a_kill_and_renders(tmp_path, monkeypatch):
    from layerib.cli import main
    train, test = _digits()
    out = tmp_path / "run"
    monkeypatch.setenv("LAYERIB_TEST_KILL_AT", "layer2:50")
    import layerib.runs.checkpoint as ck

    class _Stop(Exception):
        pass

    def stop(where):
        if where == "layer2:50":
            raise _Stop
    monkeypatch.setattr(ck, "kill_point", stop)
    with pytest.raises(_Stop):
        layerib.train_layerwise(_net(), train, test, out=out, checkpoint_every=25, **FAST)
    assert (out / "checkpoint.pt").exists() and not (out / "result.json").exists()
    monkeypatch.undo()
    resumed = layerib.train_layerwise(_net(), train, test, out=out, checkpoint_every=25, **FAST)
    fresh = layerib.train_layerwise(_net(), train, test, **FAST)
    assert resumed.test_accuracy == fresh.test_accuracy  # bit-identical on CPU
    assert [r.i_x.value for r in resumed.layers] == [r.i_x.value for r in fresh.layers]
    assert (out / "result.json").exists() and (out / "net.pt").exists()
    assert main(["report", str(out), "--out", str(tmp_path / "r.html")]) == 0
    assert "Per-layer mutual information" in (tmp_path / "r.html").read_text()
    assert main(["estimate", "--run", str(out), "--steps", "20", "--batch-size", "64",
                 "--n-train", "400", "--n-test", "300", "--no-progress", "--no-baseline"]) == 0
    assert (out / "estimate.json").exists()


def test_bad_inputs_are_one_line_config_errors():
    train, test = _digits()
    with pytest.raises(ConfigError, match="unknown config key"):
        layerib.train_layerwise(_net(), train, test, betta=1)
    with pytest.raises(ConfigError, match="train_layerwise takes your layers"):
        layerib.train_layerwise(_net(), train, test, dataset="mnist")
    with pytest.raises(ConfigError, match="labels must be integers"):
        layerib.train_layerwise(_net(), (train[0], train[1] + 0.5), test)
    with pytest.raises(ConfigError, match=r"layer 1 \(Linear\) fails on the input, of shape "
                                          r"\(2, 64\) .*make its input size match"):
        layerib.train_layerwise(nn.Sequential(nn.Linear(63, 10)), train, test)
    with pytest.raises(ConfigError, match=r"layer 2 \(Linear \+ ReLU\) fails on the output of "
                                          r"layer 1, of shape \(2, 8\)"):
        as_layered([nn.Linear(64, 8), nn.Sequential(nn.Linear(9, 4), nn.ReLU())],
                           torch.as_tensor(train[0][:2]))


class _SmallConv(nn.Module):
    """Defined only here: a conv block, then a linear layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
        self.fc = nn.Linear(4 * 4 * 4, 10)

    def forward(self, x):
        return self.fc(self.conv(x.view(-1, 1, 8, 8)).flatten(1))


def test_measure_layers_matches_the_monte_carlo_truth():
    train, test = _digits()
    torch.manual_seed(0)
    model = _SmallConv()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    x, y = torch.as_tensor(train[0]), torch.as_tensor(train[1])
    for _ in range(100):  # brief CE training
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    data = (np.concatenate([train[0], test[0]]), np.concatenate([train[1], test[1]]))
    res = layerib.measure_layers(model, data, ["conv", "fc"], noise_var=1.0)
    assert [r.name for r in res] == ["conv", "fc"] and [r.width for r in res] == [64, 10]
    for r in res:
        # the mixture critic's family holds the optimal critic: the one-fit neural cross-check's
        # interval holds the Monte-Carlo truth and is within 10 % of it where the truth < ln B - 1
        if r.i_x_truth < r.i_x.ln_batch - 1:
            assert abs(r.relative_error) <= 0.10, str(r)
            assert r.i_x.low <= r.i_x_truth <= r.i_x.high, str(r)
        assert r.i_y is not None and r.i_y.value > 0.5, str(r)
        assert "nats" in str(r) and str(r).startswith(f"{r.name}: I(X;L+eps) = {r.i_x_truth:.3f} +- ")
        assert "Monte Carlo over" in str(r) and "neural check" in str(r) and r.i_x_nats == r.i_x_truth
        assert set(r.flag_reasons) == set(r.flags)
    with pytest.raises(ConfigError, match="no module named 'nope'"):
        layerib.measure_layers(model, data, ["nope"], noise_var=1.0)


def test_infoplane_recorder_in_a_users_loop_is_rendered(tmp_path):
    from layerib.cli import main
    train, test = _digits()
    model = _net()
    x, y = torch.as_tensor(train[0]), torch.as_tensor(train[1])
    xt, yt = torch.as_tensor(test[0]), torch.as_tensor(test[1])
    rec = layerib.InfoPlaneRecorder.for_model(model, ["0", "2"], (x, y), (xt, yt),
                                              out=tmp_path / "plane", noise_var=1.0,
                                              infoplane_critic_steps=20, mi_eval_batch_size=100)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(31):
        if step % 10 == 0:
            rec.record(step)
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    lines = (tmp_path / "plane" / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 * 2
    assert main(["report", str(tmp_path / "plane"), "--out", str(tmp_path / "p.html")]) == 0
    assert "Information plane" in (tmp_path / "p.html").read_text()
