"""Sweeps end to end on the tiny fake MNIST: here, resumed, with failures, and on a local Ray.

Each point is a real ``layerib train`` subprocess (a few seconds each), so
the module shares one local 4-point sweep between its tests.
"""

import json
import shutil

import pytest

from conftest import make_tiny_mnist
from layerib.runs.checkpoint import KILL_ENV
from layerib.cli import main
from layerib.errors import RunDirError
from layerib.sweep import read_table, run_sweep, spec_from_dict

TINY = {"download": False, "widths": [16, 10], "batch_size": 64, "epochs_per_layer": 1,
        "min_steps_per_layer": 4, "ce_epochs": 1, "readout_epochs": 1, "critic_hidden": 8,
        "mi_eval_batch_size": 20, "evals_per_layer": 1, "infoplane_evals": 0}
GRID = {"beta": [0.01, 1.0], "seed": [0, 1]}
NAMES = ["beta=0.01__seed=0", "beta=0.01__seed=1", "beta=1.0__seed=0", "beta=1.0__seed=1"]


def _spec(data_root):
    return spec_from_dict({"base": dict(TINY, data_root=str(data_root)), "grid": GRID})


def _values(path):
    """sweep.csv rows without the wall time (the one field that may differ between equal runs)."""
    return [{k: v for k, v in r.items() if k != "wall_seconds"} for r in read_table(path)]


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """A finished 4-point sweep run here with 2 workers: (data root, sweep folder, outcome)."""
    root = make_tiny_mnist(tmp_path_factory.mktemp("data"))
    out = tmp_path_factory.mktemp("sweep") / "local"
    return root, out, run_sweep(_spec(root), out, workers=2, threads=1)


def test_local_sweep_writes_points_and_table(local_sweep):
    root, out, res = local_sweep
    assert res.ran and sorted(res.ran) == NAMES and not res.failed and not res.skipped
    rows = read_table(out / "sweep.csv")
    assert [r["point"] for r in rows] == NAMES and {r["status"] for r in rows} == {"done"}
    for r in rows:
        point = out / r["point"]
        result = json.loads((point / "result.json").read_text())
        assert float(r["test_accuracy"]) == result["test_accuracy"]
        assert float(r["layer2_i_y_nats"]) == result["layers"][1]["i_y_nats"]
        assert float(r["beta"]) == result["config"]["beta"] and r["seed"] == str(result["seed"])
        assert (point / "point.yaml").exists() and (point / "train.log").exists()
    # different seeds give different nets: the table is not one row repeated
    assert rows[0]["layer1_i_x_nats"] != rows[1]["layer1_i_x_nats"]


def test_rerun_runs_only_missing_points_and_records_failures(local_sweep, tmp_path, monkeypatch):
    root, done, _ = local_sweep
    out = tmp_path / "half"
    shutil.copytree(done, out)
    for name in NAMES[1:3]:  # a half-finished sweep: two points never ran
        shutil.rmtree(out / name)
    kept = {n: (out / n / "result.json").stat().st_mtime_ns for n in (NAMES[0], NAMES[3])}
    # both missing points are killed after their first layer (test hook of layerib.runs.checkpoint):
    # recorded as failed, and they do not stop the sweep
    monkeypatch.setenv(KILL_ENV, "after:layer1")
    res = run_sweep(_spec(root), out, workers=2, threads=1)
    assert sorted(res.failed) == NAMES[1:3] and sorted(res.skipped) == [NAMES[0], NAMES[3]]
    assert all("SIGKILL" in e for e in res.failed.values()), res.failed
    rows = {r["point"]: r for r in read_table(out / "sweep.csv")}
    assert rows[NAMES[1]]["status"] == "failed" and "SIGKILL" in rows[NAMES[1]]["error"]
    assert rows[NAMES[0]]["status"] == "done" and rows[NAMES[0]]["error"] == ""
    assert (out / NAMES[1] / "checkpoint.pt").exists()
    # re-run: only the two points run, each continuing from its checkpoint, and the table
    # is exactly that of the uninterrupted sweep
    monkeypatch.delenv(KILL_ENV)
    res = run_sweep(_spec(root), out, workers=2, threads=1)
    assert sorted(res.ran) == NAMES[1:3] and not res.failed
    assert {n: (out / n / "result.json").stat().st_mtime_ns for n in kept} == kept
    assert not (out / NAMES[1] / "error.json").exists()
    assert not (out / NAMES[1] / "checkpoint.pt").exists()  # removed when the run finished
    assert _values(out / "sweep.csv") == _values(done / "sweep.csv")


def test_changed_grid_never_reuses_a_folder_with_other_settings(local_sweep, tmp_path):
    root, done, _ = local_sweep
    out = tmp_path / "changed"
    shutil.copytree(done, out)
    spec = spec_from_dict({"base": dict(TINY, data_root=str(root), noise_var=50.0), "grid": GRID})
    with pytest.raises(RunDirError, match=r"other settings \(noise_var: 100.0 -> 50.0\)"):
        run_sweep(spec, out, workers=2)


def test_cli_sweep_bad_point_is_one_line_before_running(tmp_path, capsys):
    cfg = tmp_path / "s.yaml"
    cfg.write_text("grid: {beta: [1.0, -2.0]}\n")
    assert main(["sweep", str(cfg), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["layerib: error: sweep point beta=-2.0: --beta must be a "
                                        "finite number >= 0, got -2.0"]
    assert not (tmp_path / "o").exists()


def test_cli_finished_sweep_is_skipped(local_sweep, capsys):
    root, done, _ = local_sweep
    cfg = done.parent / "again.yaml"
    cfg.write_text(json.dumps(_spec(root).to_dict()))  # JSON is YAML
    assert main(["sweep", str(cfg), "--out", str(done), "--no-progress"]) == 0
    assert "4 points: 0 ran, 4 finished before, 0 failed" in capsys.readouterr().out


def test_ray_sweep_gives_the_same_table(local_sweep, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # bind to 127.0.0.1 only
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    ray = pytest.importorskip("ray")
    root, done, _ = local_sweep
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        assert ray.get_runtime_context().gcs_address.startswith("127.0.0.1:")
        res = run_sweep(_spec(root), tmp_path / "ray", ray_address="auto")
    finally:
        ray.shutdown()
    assert sorted(res.ran) == NAMES and not res.failed
    assert _values(tmp_path / "ray" / "sweep.csv") == _values(done / "sweep.csv")
    assert (tmp_path / "ray" / NAMES[0] / "model.pt").exists()
