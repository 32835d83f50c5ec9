"""Checkpoints and resume: a run killed anywhere and resumed ends exactly as an uninterrupted one.

The SIGKILL test runs ``layerib train`` in forked child processes (and its last
resume as ``python -m layerib train`` in a fresh interpreter) on a tiny fake
MNIST; the test-only hook ``LAYERIB_TEST_KILL_AT`` (:mod:`layerib.runs.checkpoint`)
makes the process SIGKILL itself at a chosen point. The in-process tests stop a
run at a point by raising from the same hook, which covers more points cheaply.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import layerib.runs.checkpoint as checkpoint_mod
from layerib.runs.checkpoint import CHECKPOINT, KILL_ENV, load_checkpoint
from layerib.config import TrainConfig
from layerib.runs.training import run_training

SRC = str(Path(__file__).resolve().parents[2] / "src")
# 300 training images, batches of 64: 4 steps an epoch, 12 steps per layer and read-out
TINY = ["--epochs-per-layer", "1", "--min-steps-per-layer", "12", "--readout-epochs", "1",
        "--batch-size", "64", "--widths", "32,16,10", "--critic-hidden", "16",
        "--mi-restarts", "1", "--mi-baseline", "false", "--mi-max-steps", "200", "--mi-eval-batch-size", "50", "--beta", "0.01",
        "--noise-var", "0.5", "--lr-layer", "0.01", "--lr-readout", "0.05",
        "--checkpoint-every", "4", "--val-fraction", "0", "--no-progress", "--offline"]


TIMING = ("wall_seconds", "report_seconds", "report_cpu_seconds")


def _without_wall_time(path: Path) -> str:
    """result.json's text without its timing lines (the only run-dependent fields)."""
    return "".join(line for line in path.read_text().splitlines(keepends=True)
                   if not any(f'"{k}"' in line for k in TIMING))


def _argv(data, out, extra=()):
    cfg = Path(data) / "tiny.yaml"  # keys without a flag of their own
    cfg.write_text("evals_per_layer: 2\n")
    return ["train", "--method", "ib", "--data-root", str(data), "--out", str(out),
            "--config", str(cfg), *TINY, *extra]


def _train(data, out, kill_at=None, extra=()):
    """``python -m layerib train`` in a fresh interpreter; returns the CompletedProcess."""
    env = {**os.environ, "PYTHONPATH": SRC, "OMP_NUM_THREADS": "1"}
    env.pop(KILL_ENV, None)
    if kill_at:
        env[KILL_ENV] = kill_at
    return subprocess.run([sys.executable, "-m", "layerib", *_argv(data, out, extra)],
                          env=env, capture_output=True, text=True, timeout=300)


def _train_forked(data, out, kill_at=None, extra=(), timeout=120.0) -> int:
    """The same command in a forked child (no interpreter start-up: seconds faster).

    Returns what ``subprocess`` would: the exit status, or ``-signal`` when killed.
    The child runs single-threaded (as ``OMP_NUM_THREADS=1`` runs), as DataLoader
    workers do after a fork.
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        rc = 1
        try:
            torch.set_num_threads(1)
            os.environ.pop(KILL_ENV, None)
            if kill_at:
                os.environ[KILL_ENV] = kill_at
            from layerib.cli import main
            rc = main(_argv(data, out, extra))
        finally:
            os._exit(rc)
    deadline = time.monotonic() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"forked training did not finish in {timeout} s")
        time.sleep(0.05)


def test_sigkill_anywhere_then_resume_gives_the_uninterrupted_result(tiny_mnist, tmp_path):
    ref = tmp_path / "ref"
    assert _train_forked(tiny_mnist, ref) == 0
    assert not (ref / CHECKPOINT).exists()

    out = tmp_path / "killed"
    # (kill point, what the last checkpoint holds then: stages done, stage, step)
    chain = [("layer1:6", (0, "layer1", 4)),    # during a layer stage (2 steps lost)
             ("after:layer2", (2, "layer2", 12)),  # between two stages
             ("readout:11", (3, "readout", 8)),    # during the read-out
             ("report", (4, "readout", 12))]       # during the final MI report
    for k, (kill_at, (done, stage, step)) in enumerate(chain):
        extra = ["--resume"] if k % 2 else []
        rc = _train_forked(tiny_mnist, out, kill_at, extra)
        assert rc == -signal.SIGKILL, (kill_at, rc)
        assert not (out / "result.json").exists()
        ck = load_checkpoint(out / CHECKPOINT)
        assert (ck["done"], ck["stage"], ck["step"]) == (done, stage, step), kill_at
    proc = _train(tiny_mnist, out)  # the same command, in a fresh interpreter, resumes
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stderr and "Traceback" not in proc.stderr

    assert _without_wall_time(out / "result.json") == _without_wall_time(ref / "result.json")
    assert (out / "metrics.jsonl").read_bytes() == (ref / "metrics.jsonl").read_bytes()
    a, b = torch.load(out / "model.pt"), torch.load(ref / "model.pt")
    assert all(torch.equal(a["net"][k], b["net"][k]) for k in b["net"])
    res = json.loads((out / "result.json").read_text())
    assert res["test_accuracy"] > 0.5  # it learnt something (chance is 0.1)
    assert not list(out.glob(".*tmp")) and not (out / CHECKPOINT).exists()


class _Stop(Exception):
    """Stands in for a kill in the in-process tests."""


#: early stopping on a validation split, checked often, stopping soon
ES = dict(val_fraction=0.2, patience=2, val_checks=6, val_refit=False)
#: the same, each stage then refitted on all rows (240 fit rows, 300 in all)
REFIT = dict(ES, val_refit=True)
COSINE = dict(lr_schedule="cosine")


def _cfg(root, **kw) -> TrainConfig:
    base = dict(epochs_per_layer=1, min_steps_per_layer=12, readout_epochs=1, batch_size=64,
                widths=(32, 16, 10), critic_hidden=16, mi_restarts=1, mi_max_steps=200, mi_eval_batch_size=50,
                beta=0.01, noise_var=0.5, lr_layer=0.01, lr_readout=0.05, checkpoint_every=4,
                ce_epochs=1, evals_per_layer=3, infoplane_evals=3, infoplane_critic_steps=5,
                data_root=str(root), download=False, val_fraction=0.0)
    base.update(kw)
    return TrainConfig(**base)


def _stop_at(monkeypatch, where):
    def kill_point(point):
        if point == where:
            raise _Stop(point)
    monkeypatch.setattr(checkpoint_mod, "kill_point", kill_point)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """A tiny MNIST for the in-process tests, and their uninterrupted runs, each made once."""
    from conftest import make_tiny_mnist
    root = tmp_path_factory.mktemp("shared")
    data = make_tiny_mnist(root / "data")
    refs = {}

    def ref(**kw) -> Path:
        key = tuple(sorted(kw.items()))
        if key not in refs:
            refs[key] = root / f"ref{len(refs)}"
            run_training(_cfg(data, **kw), refs[key])
        return refs[key]
    return data, ref


BF16 = {"precision": "bfloat16"}
NESTEROV = {"ce_optimizer": "nesterov", "label_smoothing": 0.2, "lr_layer": 0.05}
DV_SHUFFLE = {"x_bound": "dv", "y_bound": "dv", "x_marginal": "shuffle"}  # MINE's EMA, global RNG


@pytest.mark.parametrize("method,stop,kw", [
    ("ce", "ce:7", {}),            # cross-entropy with the information-plane recorder
    ("ce", "after:ce", {}),        # CE done, killed before the report
    ("iy", "layer3:9", {}),        # the last layer, checkpoint at 8
    ("ib", "layer2:5", DV_SHUFFLE),
    pytest.param("ib", "readout:4", {}, marks=pytest.mark.slow),  # exactly on a checkpoint
    ("ib", "layer2:5", ES),        # early stopping: its best weights and counters resume too
    pytest.param("ce", "ce:7", ES, marks=pytest.mark.slow),
    ("ib", "layer2:5", REFIT),        # during a stage's search for its best step
    ("ib", "layer2.refit:5", REFIT),  # during its refit on all rows
    pytest.param("ib", "after:layer2", REFIT, marks=pytest.mark.slow),  # between two refitted stages
    pytest.param("ib", "readout.refit:6", REFIT, marks=pytest.mark.slow),
    pytest.param("ce", "ce:5", REFIT, marks=pytest.mark.slow),
    ("ce", "ce.refit:7", REFIT),      # the information-plane recorder follows the refit
    ("ib", "layer2:5", COSINE),       # the cosine rate is a function of the step alone
    pytest.param("ce", "ce:7", COSINE, marks=pytest.mark.slow),
    pytest.param("ib", "layer2.refit:5", dict(REFIT, **COSINE), marks=pytest.mark.slow),
    ("ib", "layer2:5", BF16),         # bfloat16 training passes resume bit-identically too
    pytest.param("ce", "ce:7", BF16, marks=pytest.mark.slow),
    ("ce", "ce:7", NESTEROV),         # SGD's momentum buffers resume too
])
def test_stopped_and_resumed_in_process_equals_uninterrupted(shared, tmp_path, monkeypatch,
                                                              method, stop, kw):
    data, ref_of = shared
    ref = ref_of(method=method, **kw)
    cfg = _cfg(data, method=method, **kw)
    out = tmp_path / "run"
    _stop_at(monkeypatch, stop)
    with pytest.raises(_Stop):
        run_training(cfg, out)
    (out / ".checkpoint.pt.junk.tmp").write_bytes(b"half a checkpoint")  # a kill mid-write
    monkeypatch.undo()
    run_training(cfg, out, resume=True)
    assert _without_wall_time(out / "result.json") == _without_wall_time(ref / "result.json")
    assert (out / "metrics.jsonl").read_bytes() == (ref / "metrics.jsonl").read_bytes()


def test_checkpoint_holds_the_whole_state(tiny_mnist, tmp_path, monkeypatch):
    _stop_at(monkeypatch, "layer2:5")
    with pytest.raises(_Stop):
        run_training(_cfg(tiny_mnist, x_bound="dv", y_bound="dv"), tmp_path / "run")
    ck = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert (ck["done"], ck["stage"], ck["step"]) == (1, "layer2", 4)
    local = ck["local"]
    assert {"loop", "update", "rng", "sums"} <= set(local)
    assert {"step", "perm", "start", "epoch"} <= set(local["loop"]) and local["loop"]["step"] == 4
    assert {"obj", "opt_c", "opt_l"} <= set(local["update"])
    emas = [v for k, v in local["update"]["obj"].items() if k.endswith("_extra_state")]
    assert emas and all(e["ema"]["log_ema"] is not None for e in emas if e["ema"])  # MINE's EMA
    assert {"g", "torch"} <= set(ck["rng"]) and ck["config"]["seed"] == 0
    assert ck["metrics_bytes"] == len((tmp_path / "run" / "metrics.jsonl").read_bytes())
    assert set(ck["versions"]) >= {"python", "torch", "numpy", "layerib"}


def test_a_refit_checkpoint_holds_its_phase_initial_weights_and_best_step(shared, tmp_path,
                                                                         monkeypatch):
    data, _ = shared
    _stop_at(monkeypatch, "layer2.refit:5")
    with pytest.raises(_Stop):
        run_training(_cfg(data, **REFIT), tmp_path / "run")
    ck = load_checkpoint(tmp_path / "run" / CHECKPOINT)
    assert (ck["done"], ck["stage"], ck["step"]) == (1, "layer2.refit", 4)
    local = ck["local"]
    assert local["phase"] == "refit" and local["best_step"] >= 1
    layer2 = {k[len("layers.1."):] for k in ck["net"] if k.startswith("layers.1.")}
    assert set(local["init"]) == layer2 and layer2  # the layer's initial weights
    assert set(ck["refits"]) == {"layer1"}  # the stages refitted so far
    assert set(ck["search_net"]) == set(ck["net"])  # the net the best steps are searched on


def test_same_seed_gives_byte_identical_result(shared, tmp_path):
    data, ref_of = shared
    run_training(_cfg(data, method="ib"), tmp_path / "b")  # same seed and settings
    a, b = ref_of(method="ib") / "result.json", tmp_path / "b" / "result.json"
    assert _without_wall_time(a) == _without_wall_time(b)
    assert a.read_text() != _without_wall_time(a)  # the timing lines removed are there
    res = json.loads(a.read_text())
    assert {"python", "torch", "numpy", "layerib", "platform"} <= set(res["versions"])
    other = run_training(_cfg(data, method="ib", seed=1), tmp_path / "c")
    assert other["layers"][0]["i_x_nats"] != res["layers"][0]["i_x_nats"]  # the seed matters


def test_runs_from_before_critic_update_count_as_alternating():
    """A run folder written before critic_update existed alternated; resuming it under the
    default (auto = joint) would change the scheme mid-run, so it must be refused, and
    resuming it with --critic-update alternating must not be."""
    from layerib.runs.checkpoint import config_differences
    from layerib.config import TrainConfig
    new = TrainConfig().to_dict()
    old = {k: v for k, v in new.items() if k != "critic_update"}
    assert config_differences(old, new) == ["critic_update"]
    assert config_differences(old, TrainConfig(critic_update="alternating").to_dict()) == []
    assert config_differences(TrainConfig(critic_update="joint").to_dict(), new) == []


def test_resume_ignores_the_keys_that_do_not_change_the_result():
    """A run started with --workers 2 (the same batches as 0) or another checkpoint
    frequency resumes under the other value; a key that changes the result does not."""
    from layerib.runs.checkpoint import config_differences
    from layerib.config import TrainConfig
    new = TrainConfig(val_fraction=0).to_dict()
    assert config_differences(dict(new, workers=2, checkpoint_every=3), new) == []
    assert config_differences(dict(new, seed=1, workers=2), new) == ["seed"]


def test_a_checkpoint_from_before_the_redesign_is_refused_in_one_line(tmp_path):
    """Format-1 checkpoints (layerib 0.1) hold the stage state in another layout."""
    import torch
    from layerib.errors import RunDirError
    from layerib.runs.checkpoint import find_resume_state
    cfg = TrainConfig().to_dict()
    (tmp_path / "config.json").write_text(json.dumps({"config": cfg}))
    torch.save({"format": 1, "config": cfg}, tmp_path / CHECKPOINT)
    with pytest.raises(RunDirError, match="written by layerib 0.1.*pass --force"):
        find_resume_state(tmp_path, cfg)


@pytest.mark.parametrize("method,stop,kw", [
    ("ib", "layer2:5", {}),
    pytest.param("ib", "readout:4", COSINE, marks=pytest.mark.slow),
    ("ce", "ce:7", COSINE),
    ("ib", "readout:2", dict(budget_split="steps")),  # every layer probed up front, in the checkpoint
    pytest.param("ib", "layer2:5", dict(ES, val_refit=False), marks=pytest.mark.slow),  # early stopping within the planned steps
])
def test_a_budgeted_run_stopped_and_resumed_keeps_its_plan(shared, tmp_path, monkeypatch,
                                                           method, stop, kw):
    """The plan (each stage's steps for its share of budget_minutes) is in the checkpoint:
    the resumed run probes only the stages not yet planned and ends bit-identical to the
    uninterrupted run. The probes' clock ticks 1/64 s a call and no time passes between
    stages, so both runs make the same plan."""
    import itertools
    import layerib.ib.budget as budget
    import layerib.ib.trainers as trainers
    data, _ = shared
    monkeypatch.setattr(trainers._Trainer, "elapsed", lambda self: 0.0)
    real_probe, probed = trainers.probe_seconds_per_step, []

    def probe(run, unit, device):
        probed.append(unit)
        return real_probe(run, unit, device)
    monkeypatch.setattr(trainers, "probe_seconds_per_step", probe)
    cfg = _cfg(data, method=method, budget_minutes=0.02, **kw)

    def ticking():
        ticks = itertools.count()
        monkeypatch.setattr(budget, "clock", lambda: next(ticks) / 64)
    ticking()
    ref = run_training(cfg, tmp_path / "ref")
    assert ref["budget"]["stages"] and probed == list(ref["budget"]["stages"])
    out = tmp_path / "run"
    ticking()
    monkeypatch.setattr(checkpoint_mod, "kill_point",
                        lambda point: (_ for _ in ()).throw(_Stop(point)) if point == stop else None)
    with pytest.raises(_Stop):
        run_training(cfg, out)
    ck = load_checkpoint(out / CHECKPOINT)
    planned = list(ck["plans"])
    assert planned and ck["plans"] == {u: ref["budget"]["stages"][u] for u in planned}
    monkeypatch.setattr(checkpoint_mod, "kill_point", lambda point: None)
    probed.clear()
    ticking()
    run_training(cfg, out, resume=True)
    assert probed == [u for u in ref["budget"]["stages"] if u not in planned]
    assert _without_wall_time(out / "result.json") == _without_wall_time(tmp_path / "ref" / "result.json")
    assert (out / "metrics.jsonl").read_bytes() == (tmp_path / "ref" / "metrics.jsonl").read_bytes()
