"""Bad input to ``layerib train``: a one-line error, exit status 2, no traceback, nothing written.

One table of bad paths, data files, values and config files, each with the text
its error must contain; then the run-folder cases that need more set-up (a
folder that is not writable, a disk that fills while writing).
"""

from __future__ import annotations

import errno
import gzip
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import write_idx
from layerib.runs.checkpoint import CHECKPOINT, load_checkpoint
from layerib.cli import build_train_config, main, make_parser
from layerib.runs.folder import MetricsLog

TINY = ["--epochs-per-layer", "1", "--min-steps-per-layer", "8", "--readout-epochs", "1",
        "--batch-size", "64", "--widths", "32,16,10", "--critic-hidden", "16",
        "--mi-restarts", "1", "--mi-baseline", "false", "--mi-max-steps", "200", "--mi-eval-batch-size", "50", "--beta", "0.01",
        "--noise-var", "0.5", "--checkpoint-every", "4", "--val-fraction", "0", "--no-progress"]
RAW = Path("MNIST") / "raw"


def _argv(data, out, *extra, offline=True):
    return (["train", "--method", "ib", "--data-root", str(data), "--out", str(out), *TINY]
            + (["--offline"] if offline else []) + list(extra))


def _rewrite(data, name, array, magic):
    (data / RAW / f"{name}.gz").unlink()
    write_idx(data / RAW / name, array, magic)


def _images(n=300, size=28):
    return np.zeros((n, size, size), dtype=np.uint8)


def _yaml(tmp, text):
    path = tmp / "bad.yaml"
    path.write_text(text)
    return ["--config", str(path)]


def _truncate(data, name="train-images-idx3-ubyte"):
    path = data / RAW / f"{name}.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[: len(raw) // 2]))
    return []


def _same_config_dir(tmp, data, out, checkpoint: bytes | None = None, config: str | None = None):
    out.mkdir()
    cfg = build_train_config(make_parser().parse_args(_argv(data, out)))
    (out / "config.json").write_text(config if config is not None
                                     else json.dumps({"config": cfg.to_dict()}))
    if checkpoint is not None:
        (out / CHECKPOINT).write_bytes(checkpoint)
    return []


def _mirror_with_wrong_file(tmp, data, monkeypatch):
    """A download mirror (a file:// URL) whose train-images file has the wrong md5."""
    mirror = tmp / "mirror"
    mirror.mkdir()
    (mirror / "train-images-idx3-ubyte.gz").write_bytes(gzip.compress(b"not mnist"))
    (data / RAW / "train-images-idx3-ubyte.gz").unlink()
    monkeypatch.setattr("layerib.data.mnist.MNIST_MIRRORS", [mirror.as_uri() + "/"])
    return []


# id -> (set-up returning extra argv (args: tmp, data, out, monkeypatch), expected error text)
CASES = {
    # values on the command line
    "noise-var 0": (lambda t, d, o, m: ["--noise-var", "0"], "noise-var must be a finite number > 0"),
    "negative beta": (lambda t, d, o, m: ["--beta", "-1"], "beta must be a finite number >= 0"),
    "train-fraction 1.5": (lambda t, d, o, m: ["--train-fraction", "1.5"], "train-fraction must be in (0, 1]"),
    "batch size 1": (lambda t, d, o, m: ["--batch-size", "1"], "batch sizes must be at least 2"),
    "lr 0": (lambda t, d, o, m: ["--lr-layer", "0"], "lr_layer must be a finite number > 0"),
    "checkpoint-every -1": (lambda t, d, o, m: ["--checkpoint-every", "-1"], "checkpoint_every must be an integer >= 0"),
    "zero width": (lambda t, d, o, m: ["--widths", "32,0,10"], "widths must be positive integers"),
    "widths not numbers": (lambda t, d, o, m: ["--widths", "3,a"], "--widths: must be comma-separated integers"),
    "seed not an int": (lambda t, d, o, m: ["--seed", "abc"], "--seed: invalid int value"),
    "grad-clip 0": (lambda t, d, o, m: ["--grad-clip", "0"], "grad_clip must be None or > 0"),
    "ema-rate 2": (lambda t, d, o, m: ["--ema-rate", "2"], "ema_rate must be in (0, 1]"),
    "unknown method": (lambda t, d, o, m: ["--method", "sgd"], "--method: invalid choice"),
    "device tpu": (lambda t, d, o, m: ["--device", "tpu"], "device must be cpu, cuda or auto"),
    # config files
    "unknown key": (lambda t, d, o, m: _yaml(t, "betta: 1\n"), "unknown config key(s) betta"),
    "beta a string": (lambda t, d, o, m: _yaml(t, "beta: high\n"), "beta must be a finite number >= 0"),
    "widths a number": (lambda t, d, o, m: _yaml(t, "widths: 5\n"), "widths must be positive integers"),
    "device a number": (lambda t, d, o, m: _yaml(t, "device: 5\n"), "device must be a string"),
    "download not bool": (lambda t, d, o, m: _yaml(t, "download: 'yes'\n"), "download must be true or false"),
    "seed a bool": (lambda t, d, o, m: _yaml(t, "seed: true\n"), "seed must be an integer >= 0"),
    "evals 0": (lambda t, d, o, m: _yaml(t, "evals_per_layer: 0\n"), "evals_per_layer must be an integer >= 1"),
    "x_bound js": (lambda t, d, o, m: _yaml(t, "x_bound: js\n"), "x_bound must be one of dv, nwj, infonce"),
    "config a list": (lambda t, d, o, m: _yaml(t, "- beta\n"), "must hold a mapping of config keys"),
    "config not YAML": (lambda t, d, o, m: _yaml(t, "beta: [1,\n"), "is not valid YAML"),
    "config missing": (lambda t, d, o, m: ["--config", str(t / "nope.yaml")], "cannot read --config"),
    # data folders and files
    "data folder empty": (lambda t, d, o, m: ["--data-root", str(t)], "MNIST file train-images-idx3-ubyte(.gz) not found"),
    "labels file missing": (lambda t, d, o, m: (d / RAW / "t10k-labels-idx1-ubyte.gz").unlink() or [],
                            "MNIST file t10k-labels-idx1-ubyte(.gz) not found"),
    "not gzip": (lambda t, d, o, m: (d / RAW / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b junk") and [],
                 "cannot read"),
    "truncated data": (lambda t, d, o, m: _truncate(d), "is truncated or corrupt"),
    "truncated header": (lambda t, d, o, m: (d / RAW / "train-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(b"\x00\x00")) and [], "is truncated (2 bytes)"),
    "wrong magic": (lambda t, d, o, m: _rewrite(d, "train-images-idx3-ubyte", _images(), 2052) or [],
                    "has magic number 2052, not an MNIST IDX file"),
    "wrong shape": (lambda t, d, o, m: _rewrite(d, "train-images-idx3-ubyte", _images(size=20), 2051) or [],
                    "holds images of shape (20, 20), expected (28, 28)"),
    "label out of range": (lambda t, d, o, m: _rewrite(d, "t10k-labels-idx1-ubyte",
                                                       np.full(200, 12), 2049) or [],
                           "has label 12, outside 0..9"),
    "label count": (lambda t, d, o, m: _rewrite(d, "train-labels-idx1-ubyte", np.zeros(299), 2049) or [],
                    "the two files do not belong together"),
    "checksum mismatch": (lambda t, d, o, m: _mirror_with_wrong_file(t, d, m), "md5 mismatch"),
    # run folders
    "out is a file": (lambda t, d, o, m: o.write_text("x") and [], "is a file, not a folder"),
    "out inside a file": (lambda t, d, o, m: o.write_text("x") and ["--out", str(o / "run")],
                          "is a file, not a folder"),
    "finished run": (lambda t, d, o, m: (o.mkdir(), (o / "result.json").write_text("{}")) and [],
                     "already holds a finished run"),
    "another config's run": (lambda t, d, o, m: _same_config_dir(
        t, d, o, config=json.dumps({"config": {"seed": 7}})), "holds a different run (config differs in"),
    "not a run folder": (lambda t, d, o, m: (o.mkdir(), (o / "notes.txt").write_text("x")) and [],
                         "holds no layerib run (no config.json)"),
    "unreadable config.json": (lambda t, d, o, m: _same_config_dir(t, d, o, config="{junk"),
                               "config.json; pass --force"),
    "corrupt checkpoint": (lambda t, d, o, m: _same_config_dir(t, d, o, checkpoint=b"junk"),
                           "cannot read checkpoint"),
    "resume without run": (lambda t, d, o, m: ["--resume"], "holds no run to resume"),
    "resume, no checkpoint": (lambda t, d, o, m: _same_config_dir(t, d, o) + ["--resume"],
                              "has no checkpoint yet"),
    "resume and force": (lambda t, d, o, m: ["--resume", "--force"], "--resume and --force contradict"),
}


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else b"")
            for p in sorted(root.rglob("*"))}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_table(case, tiny_mnist, tmp_path, monkeypatch, capsys):
    setup, message = CASES[case]
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    out = tmp_path / "out"
    extra = setup(scratch, tiny_mnist, out, monkeypatch)
    offline = case != "checksum mismatch"
    before = _tree(tmp_path)
    try:
        rc = main(_argv(tiny_mnist, out, *extra, offline=offline))
    except SystemExit as e:  # argparse's usage errors
        rc = e.code
    err = capsys.readouterr().err
    assert rc == 2, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "error:" in err and message in err, err
    after = _tree(tmp_path)
    assert after == before, sorted(set(after) ^ set(before))  # nothing written, nothing left


def test_table_has_at_least_twenty_cases():
    assert len(CASES) >= 20


def _has_chattr(path: Path) -> bool:
    if shutil.which("chattr") is None:
        return False
    ok = subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode == 0
    if ok:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    return ok


def test_run_folder_not_writable(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "ro"
    out.mkdir()
    if os.geteuid() != 0:
        out.chmod(0o500)
    elif not _has_chattr(out):
        pytest.skip("running as root without chattr: no way to make a folder read-only")
    else:
        subprocess.run(["chattr", "+i", str(out)], check=True)
    try:
        assert main(_argv(tiny_mnist, out / "run")) == 2
        err = capsys.readouterr().err
        assert "is not writable; choose a writable --out" in err and err.count("\n") == 1
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(out)], capture_output=True)
        out.chmod(0o700)
    assert list(out.iterdir()) == []


def _enospc(*_a, **_k):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_disk_full_while_writing_config(tiny_mnist, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(os, "fsync", _enospc)
    out = tmp_path / "run"
    assert main(_argv(tiny_mnist, out)) == 2
    err = capsys.readouterr().err
    assert "No space left on device" in err and err.count("\n") == 1 and "Traceback" not in err
    assert list(out.iterdir()) == []  # no partial config.json, no temporary file


def test_disk_full_while_writing_a_checkpoint(tiny_mnist, tmp_path, monkeypatch, capsys):
    real_save, calls = torch.save, []

    def save(obj, f, *a, **k):
        calls.append(1)
        if len(calls) == 3:  # the third checkpoint: half written, then the disk is full
            f.write(b"partial")
            _enospc()
        return real_save(obj, f, *a, **k)

    monkeypatch.setattr(torch, "save", save)
    out = tmp_path / "run"
    assert main(_argv(tiny_mnist, out)) == 2
    err = capsys.readouterr().err
    assert "checkpoint.pt: No space left on device" in err and err.count("\n") == 1
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt", "config.json", "metrics.jsonl"]
    ck = load_checkpoint(out / CHECKPOINT)  # the previous one, intact
    assert (ck["done"], ck["stage"], ck["step"]) == (1, "layer1", 8)
    monkeypatch.undo()
    assert main(_argv(tiny_mnist, out, "--resume")) == 0  # space again: it carries on
    assert (out / "result.json").exists()


def test_disk_full_while_appending_metrics_leaves_no_partial_line(tmp_path, monkeypatch):
    log = MetricsLog(tmp_path / "metrics.jsonl")
    log.write({"step": 1})
    good = (tmp_path / "metrics.jsonl").read_bytes()
    real_open = open

    class Full:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, text):
            self.f.write(text[:5])
            self.f.flush()
            _enospc()

    monkeypatch.setattr("builtins.open", lambda *a, **k: Full(real_open(*a, **k)))
    with pytest.raises(Exception, match="No space left on device"):
        log.write({"step": 2})
    monkeypatch.undo()
    assert (tmp_path / "metrics.jsonl").read_bytes() == good
