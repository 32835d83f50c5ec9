"""`layerib train --dataset npz:FILE --model MODULE:FACTORY` and `layerib estimate --run` on
conv and --model runs, end to end on tiny files the test writes."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest

from layerib.cli import main

FAST = ["--batch-size", "32", "--min-steps-per-layer", "20", "--epochs-per-layer", "1",
        "--readout-epochs", "1", "--critic-hidden", "8", "--mi-eval-batch-size", "32",
        "--mi-restarts", "1", "--mi-baseline", "false", "--mi-max-steps", "200", "--evals-per-layer", "1", "--noise-var", "1", "--no-progress"]
EST = ["--steps", "10", "--batch-size", "16", "--n-train", "60", "--n-test", "40",
       "--mc-samples", "64", "--no-baseline", "--no-progress"]


def _npz(path, shape, n_train=96, n_test=48, seed=0):
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = np.arange(n) % 3
        x = rng.normal(size=(n, *shape)).astype(np.float32)
        x.reshape(n, -1)[np.arange(n), y] += 3.0  # the class is written in the input
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
    np.savez(path, **arrays)
    return path


def test_train_npz_with_a_users_model_then_estimate(tmp_path, monkeypatch, capsys):
    (tmp_path / "mynets.py").write_text(textwrap.dedent('''
        from torch import nn

        def layers(input_shape):
            d = 1
            for s in input_shape:
                d *= s
            return [nn.Sequential(nn.Flatten(), nn.Linear(d, 16), nn.ReLU()), nn.Linear(16, 3)]
    '''))
    monkeypatch.syspath_prepend(str(tmp_path))
    data = _npz(tmp_path / "d.npz", (12,))
    out = tmp_path / "run"
    assert main(["train", "--dataset", f"npz:{data}", "--model", "mynets:layers", "--out",
                 str(out), *FAST, "--min-steps-per-layer", "100", "--beta", "0.01",
                 "--val-fraction", "0"]) == 0  # 19 validation rows of 96 stop the read-out too soon
    printed = capsys.readouterr().out
    assert "Monte-Carlo truth" in printed and "test accuracy" in printed
    res = json.loads((out / "result.json").read_text())
    assert res["config"]["model"] == "mynets:layers" and len(res["layers"]) == 2
    assert res["test_accuracy"] > 0.6
    assert main(["estimate", "--run", str(out), *EST]) == 0
    est = json.loads((out / "estimate.json").read_text())
    assert [e["width"] for e in est["layers"]] == [16, 3]
    assert main(["estimate", "--run", str(out), *EST]) == 2  # exists: refuse without --force
    assert "pass --force" in capsys.readouterr().err
    assert main(["estimate", "--run", str(out), "--force", *EST]) == 0


def test_estimate_on_a_conv_run(tmp_path):
    data = _npz(tmp_path / "img.npz", (3, 8, 8))
    out = tmp_path / "conv"
    assert main(["train", "--dataset", f"npz:{data}", "--arch", "conv", "--channels", "2",
                 "--widths", "8,3", "--out", str(out), *FAST]) == 0
    assert main(["estimate", "--run", str(out), *EST]) == 0
    est = json.loads((out / "estimate.json").read_text())
    assert [e["width"] for e in est["layers"]] == [2 * 4 * 4, 8, 3]


@pytest.mark.parametrize("spec,match", [
    ("nosuchmodule_xyz:layers", "cannot import nosuchmodule_xyz"),
    ("json:nosuchfactory", "has no function 'nosuchfactory'"),
    ("not a spec", "model must be PACKAGE.MODULE:FACTORY")])
def test_bad_model_is_one_line(tmp_path, capsys, spec, match):
    data = _npz(tmp_path / "d.npz", (12,))
    assert main(["train", "--dataset", f"npz:{data}", "--model", spec, "--out",
                 str(tmp_path / "o"), *FAST]) == 2
    err = capsys.readouterr().err
    assert match in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_yaml_float_without_dot_is_a_number(tmp_path):
    from layerib.cli import build_train_config, make_parser
    cfg = tmp_path / "c.yaml"
    cfg.write_text("beta: 1e-3\nnoise_var: 1e2\n")
    c = build_train_config(make_parser().parse_args(["train", "--config", str(cfg), "--out", "x"]))
    assert c.beta == 1e-3 and c.noise_var == 100.0


def test_help_is_generated_from_the_config_comments(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for title in ("data:", "model:", "IB objective:", "estimators:", "schedule:", "run:"):
        assert title in out
    assert "sigma^2 of the measuring noise" in out and "--model MODEL" in out
