"""The information-plane hook of end-to-end training: when it records, what, and that it only watches."""

import json
import math

import pytest
import torch

from layerib.config import TrainConfig
from layerib.errors import ConfigError
from layerib.ib.infoplane import InfoPlaneRecorder, eval_steps
from layerib.models.mlp import mlp
from layerib.runs.training import run_training

TINY = dict(method="ce", widths=(32, 16, 10), batch_size=64, min_steps_per_layer=6, ce_epochs=1,
            readout_epochs=1, critic_hidden=16, mi_eval_batch_size=50, infoplane_critic_steps=5,
            download=False)


@pytest.mark.parametrize("total,n,expected", [
    (18, 3, [0, 6, 12, 18]), (10, 4, [0, 2, 5, 8, 10]), (2, 5, [0, 1, 2]), (7, 0, [])])
def test_eval_steps(total, n, expected):
    assert eval_steps(total, n) == expected
    if n:
        assert len(eval_steps(total, n)) == min(n, total) + 1


def _records(out):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["stage"] == "infoplane"]


def test_ce_run_records_every_layer_at_every_evaluation_and_only_watches(tiny_mnist, tmp_path):
    base = dict(data_root=str(tiny_mnist), **TINY, val_fraction=0.0)
    run_training(TrainConfig(infoplane_evals=0, **base), tmp_path / "off")
    cfg = TrainConfig(infoplane_evals=3, **base)
    run_training(cfg, tmp_path / "on")
    assert _records(tmp_path / "off") == []
    recs = _records(tmp_path / "on")
    steps = eval_steps(18, 3)  # 300 images / 64 = 4 steps an epoch; at least 6 x 3 layers = 18 steps
    assert len(recs) == len(steps) * 3
    assert sorted({(r["step"], r["layer"]) for r in recs}) == [(s, k) for s in steps for k in (1, 2, 3)]
    for r in recs:
        assert r["noise_var"] == cfg.noise_var and r["eval_batch_size"] == 50
        assert all(math.isfinite(r[k]) for k in ("test_i_x_nats", "test_i_y_nats",
                                                 "test_i_x_stderr", "test_i_y_stderr"))
        assert r["test_i_x_nats"] <= math.log(50) + 1e-6  # InfoNCE ceiling ln B
    # the recorder draws from its own generators: the trained net is the same bit for bit
    off = torch.load(tmp_path / "off" / "model.pt")["net"]
    on = torch.load(tmp_path / "on" / "model.pt")["net"]
    assert all(torch.equal(off[k], on[k]) for k in off)


def test_recorder_restores_train_mode_and_sees_structure():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(200) % 4
    x = torch.randn(200, 8, generator=g) * 0.1
    x[torch.arange(200), y] += 3.0  # the class is written in the input: I(Y; L_1) well above 0
    net = mlp((8,), (16, 4)).train()
    recs = []
    s = TrainConfig(noise_var=0.1, batch_size=50, mi_eval_batch_size=50, infoplane_critic_steps=200,
                    critic_hidden=32, lr_critic=3e-3, ema_rate=0.01, y_bound="infonce")
    rec = InfoPlaneRecorder.for_net(net, (x, y), (x, y), torch.full((4,), 0.25), recs.append, s,
                                    steps=[0, 5], steps_per_epoch=1)
    rec(3)
    assert recs == []  # not an evaluation step
    rec(5)
    assert net.training and [r["layer"] for r in recs] == [1, 2] and recs[0]["epoch"] == 5
    assert recs[0]["test_i_y_nats"] > 0.5 * math.log(4)  # H(Y) = ln 4


def test_recorder_features_in_chunks_equal_one_pass():
    """The recorder computes outputs a chunk of rows at a time into preallocated tensors (its
    memory bound); every layer's rows equal one pass over the whole set: bit for bit when one
    chunk holds every row, else to float32 rounding (a 1-row chunk is a matrix-vector
    product, another kernel)."""
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(1000, 8, generator=g), torch.arange(1000) % 4
    net = mlp((8,), (16, 12, 4)).eval()
    rec = InfoPlaneRecorder.for_net(net, (x, y), (x, y), None, lambda r: None, TrainConfig())
    with torch.no_grad():
        whole = [f.flatten(1) for f in net.features(x)]
    for chunk in (None, 1, 77, 1000, 4096):
        parts = rec._features(x, chunk=chunk)
        assert [p.shape for p in parts] == [(1000, 16), (1000, 12), (1000, 4)]
        same = torch.equal if chunk in (1000, 4096) else (
            lambda a, b: torch.allclose(a, b, rtol=1e-5, atol=1e-6))
        assert all(same(p, w) for p, w in zip(parts, whole)), chunk


def test_negative_infoplane_evals_is_a_config_error():
    with pytest.raises(ConfigError, match="infoplane_evals must be an integer >= 0"):
        TrainConfig(infoplane_evals=-1)


def test_cli_flags_reach_the_config():
    from layerib.cli import build_train_config, make_parser
    args = make_parser().parse_args(["train", "--method", "ce", "--out", "x", "--infoplane-evals",
                                     "0", "--infoplane-critic-steps", "7"])
    cfg = build_train_config(args)
    assert cfg.infoplane_evals == 0 and cfg.infoplane_critic_steps == 7
