"""The CLI end to end on a tiny fake MNIST, and its one-line errors for bad input."""

import json
import subprocess
import sys

import pytest

from layerib.cli import main
from fake_data import FAST_TRAIN_ARGS as FAST

RESULT_FIELDS = {"test_accuracy", "method", "dataset", "train_fraction", "beta", "noise_var",
                 "seed", "wall_seconds", "config", "layers"}


@pytest.mark.parametrize("method", ["ib", "iy", "ce"])
def test_train_writes_complete_result(tiny_mnist, tmp_path, method, capsys):
    out = tmp_path / f"run_{method}"
    rc = main(["train", "--method", method, "--data-root", str(tiny_mnist), "--out", str(out),
               "--beta", "0.01", "--noise-var", "0.5", *FAST])
    assert rc == 0
    res = json.loads((out / "result.json").read_text())
    assert RESULT_FIELDS <= set(res)
    assert 0.0 <= res["test_accuracy"] <= 1.0 and res["method"] == method
    assert res["beta"] == (0.01 if method == "ib" else 0.0) and res["noise_var"] == 0.5
    assert res["config"]["widths"] == [32, 16, 10] and res["config"]["seed"] == 0
    assert [layer["index"] for layer in res["layers"]] == [1, 2, 3]
    for layer in res["layers"]:
        assert {"i_y_nats", "i_x_nats", "batch_size"} <= set(layer)
        assert layer["i_x"]["n_batches"] >= 2  # a held-out average, not one batch
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics and metrics[-1]["stage"] == "final"
    assert "test accuracy" in capsys.readouterr().out


def test_refuses_to_overwrite_a_finished_run(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--method", "ce", "--data-root", str(tiny_mnist), "--out", str(out), *FAST]
    assert main(args) == 0
    capsys.readouterr()
    assert main(args) == 2
    assert "already holds a finished run" in capsys.readouterr().err
    assert main(args + ["--force"]) == 0


def _corrupt(root):
    (root / "MNIST" / "raw" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b junk")
    return root


@pytest.mark.parametrize("extra,message", [
    (["--noise-var", "0"], "noise-var must be a finite number > 0"),
    (["--noise-var", "-1"], "noise-var must be a finite number > 0"),
    (["--beta", "-0.5"], "beta must be a finite number >= 0"),
    (["--train-fraction", "0"], "train-fraction must be in"),
    (["--train-fraction", "1.5"], "train-fraction must be in"),
    (["--batch-size", "0"], "batch_size must be an integer >= 1"),
    (["--device", "tpu"], "device must be cpu, cuda or auto"),
    (["--data-root", "{empty}"], "MNIST file train-images-idx3-ubyte"),
    (["--data-root", "{corrupt}"], "cannot read"),
])
def test_bad_input_one_line_error_exit_2(tiny_mnist, tmp_path, capsys, extra, message):
    (tmp_path / "empty").mkdir()
    extra = [e.replace("{empty}", str(tmp_path / "empty"))
              .replace("{corrupt}", str(_corrupt(tiny_mnist))) for e in extra]
    out = tmp_path / "out"
    argv = ["train", "--data-root", str(tiny_mnist), "--out", str(out), *FAST, *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("layerib: error:") and message in err and "\n" not in err
    assert not out.exists()  # nothing half-written


def test_workers_stream_the_same_run(tiny_mnist, tmp_path, capsys):
    """--workers 1 reads every batch through a DataLoader worker: the same run as --workers 0."""
    args = ["train", "--method", "ib", "--data-root", str(tiny_mnist), "--beta", "0.01",
            "--noise-var", "0.5", "--val-fraction", "0.2", "--val-refit", "false", *FAST]
    assert main(args + ["--out", str(tmp_path / "w0")]) == 0
    assert main(args + ["--out", str(tmp_path / "w1"), "--workers", "1"]) == 0
    a, b = (json.loads((tmp_path / k / "result.json").read_text()) for k in ("w0", "w1"))
    assert a["config"]["workers"] == 0 and b["config"]["workers"] == 1
    assert a["test_accuracy"] == b["test_accuracy"] and a["train_accuracy"] == b["train_accuracy"]
    assert a["layers"] == b["layers"] and a["n_val"] == b["n_val"] > 0
    import torch
    sa, sb = (torch.load(tmp_path / k / "model.pt", weights_only=False)["net"] for k in ("w0", "w1"))
    assert all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("extra,message", [
    (["--workers", "1"], "--workers 1 streams the data, which val_refit does not do yet"),
    (["--workers", "2", "--val-refit", "true", "--method", "ce"], "pass --val-refit false"),
    (["--workers", "-1"], "--workers must be an integer >= 0"),
])
def test_workers_with_val_refit_one_line_error_exit_2(tiny_mnist, tmp_path, capsys, extra, message):
    out = tmp_path / "out"
    assert main(["train", "--data-root", str(tiny_mnist), "--out", str(out), *FAST, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("layerib: error:") and message in err and "\n" not in err
    assert not out.exists()


def test_unknown_dataset_and_config_key(tmp_path, capsys):
    assert main(["train", "--dataset", "imagenet", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "unknown dataset 'imagenet'" in err and "fashion-mnist" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "o").exists()
    cfg = tmp_path / "c.yaml"
    cfg.write_text("betta: 1\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "unknown config key(s) betta" in capsys.readouterr().err


def test_boolean_flags_read_true_false_in_help(capsys):
    """Every boolean config field's flag shows ``{true,false}``, not its upper-cased name."""
    from dataclasses import fields

    from layerib.config import TrainConfig

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    help_text = capsys.readouterr().out
    booleans = [f.name for f in fields(TrainConfig) if str(f.type) == "bool" and f.name != "download"]
    assert "val_refit" in booleans
    for name in booleans:
        flag = "--" + name.replace("_", "-")
        assert f"{flag} {{true,false}}" in help_text and name.upper() not in help_text


def test_python_dash_m_runs(tiny_mnist, tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "layerib", "train", "--method", "iy",
                           "--data-root", str(tiny_mnist), "--out", str(out), *FAST],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    assert json.loads((out / "result.json").read_text())["method"] == "iy"


def test_real_mnist_one_percent_quick(real_data_root, tmp_path):
    """A short run on the real MNIST 1% (CI sets LAYERIB_DATA_ROOT): learns something."""
    out = tmp_path / "real"
    rc = main(["train", "--method", "ib", "--train-fraction", "0.01", "--data-root",
               str(real_data_root), "--out", str(out), "--min-steps-per-layer", "60",
               "--readout-epochs", "1", "--mi-restarts", "1", "--mi-baseline", "false", "--mi-max-steps", "200", "--no-progress", "--offline"])
    assert rc == 0
    res = json.loads((out / "result.json").read_text())
    assert res["n_train"] + res["n_val"] == 600 and res["n_val"] == 120  # the default split
    assert res["n_test"] == 10000 and set(res["refit"]) == {"layer1", "layer2", "layer3", "readout"}
    assert res["test_accuracy"] > 0.5  # chance is 0.1; the full default run is far higher
