"""The IB curve: aggregation over seeds (exact), the figure, and the quick preset end to end."""

import csv
import json
import statistics

import pytest

from conftest import make_tiny_mnist
from layerib.cli import main
from layerib.errors import ConfigError
from layerib.experiments.ibcurve import aggregate, curve_csv, resolve_preset, sweep_spec
from layerib.plotting.ibcurve import plot_ib_curve
from layerib.sweep import expand


def _result(method, beta, seed, acc, ix, iy):
    return {"method": method, "beta": beta, "seed": seed, "test_accuracy": acc,
            "layers": [{"index": i + 1, "i_x_nats": ix * (i + 1), "i_y_nats": iy / (i + 1)}
                       for i in range(2)]}


def test_aggregate_groups_by_beta_with_mean_and_sample_std():
    results = [_result("ib", 1.0, s, 0.8 + 0.01 * s, 2.0 + s, 1.5) for s in range(3)]
    results += [_result("ib", 0.01, s, 0.9, 4.0, 2.0 - 0.1 * s) for s in range(2)]
    results += [_result("ce", 0.0, s, 0.85, 5.0, 2.2) for s in range(3)]
    results += [_result("iy", 0.0, s, 0.83 - 0.01 * s, 5.0, 2.2) for s in (0, 1)]
    curve = aggregate(results)
    assert [p["beta"] for p in curve["ib"]] == [0.01, 1.0]  # sorted by beta
    hi = curve["ib"][1]
    assert hi["n_seeds"] == 3 and hi["seeds"] == [0, 1, 2]
    assert hi["test_accuracy"]["mean"] == pytest.approx(0.81, abs=1e-12)
    assert hi["test_accuracy"]["std"] == pytest.approx(0.01, abs=1e-12)  # sample std (n - 1)
    assert hi["layers"][1]["i_x_nats"]["values"] == [4.0, 6.0, 8.0]
    assert curve["ib"][0]["layers"][0]["i_y_nats"]["std"] == pytest.approx(
        statistics.stdev([2.0, 1.9]), abs=1e-12)
    assert curve["ce"]["n_seeds"] == 3 and curve["ce"]["test_accuracy"]["std"] == 0.0
    assert curve["iy"]["n_seeds"] == 2
    # the gap to beta = 0 pairs seeds: beta=1 seeds 0, 1 only (iy has no seed 2)
    assert hi["gap_seeds"] == [0, 1]
    assert hi["gap_to_iy_points"] == pytest.approx(100 * ((0.80 - 0.83) + (0.81 - 0.82)) / 2, abs=1e-9)
    assert curve["ib"][0]["gap_to_iy_points"] == pytest.approx(100 * (0.9 - 0.825), abs=1e-9)
    rows = list(csv.DictReader(curve_csv(curve).splitlines()))
    assert [(r["method"], r["beta"]) for r in rows] == [("ib", "0.01"), ("ib", "1.0"),
                                                          ("iy", "0.0"), ("ce", "")]
    assert float(rows[1]["gap_to_iy_points"]) == pytest.approx(-2.0, abs=1e-9)
    assert float(rows[1]["layer2_i_x_nats_mean"]) == 6.0
    fig = plot_ib_curve(dict(curve, noise_var=100.0))
    assert [ax.get_xscale() for ax in fig.axes] == ["log"] * 3
    assert fig.axes[1].get_ylabel() == "nats"


def test_default_preset_is_the_issue_grid():
    p = resolve_preset("default")
    assert p.betas == (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0) and p.seeds == (0, 1, 2)
    points = expand(sweep_spec(p))
    assert len(points) == 3 + 3 + 7 * 3 and points[0].name == "method=ce__seed=0"
    assert points[3].name == "method=iy__seed=0"
    assert all(pt.config.val_fraction == 0.2 and pt.config.val_refit for pt in points)  # defaults
    assert points[-1].name == "method=ib__seed=2__beta=100.0"  # CE first, then seed by seed
    assert all(pt.config.train_fraction == 0.01 for pt in points)
    assert resolve_preset("quick", seed=5).seeds == (5,)
    with pytest.raises(ConfigError, match="unknown ibcurve preset 'big'"):
        resolve_preset("big")


def _fake_finished_sweep(out, root):
    """Write every quick-preset point as finished (point.yaml + a made-up result.json)."""
    import yaml

    from layerib.sweep.spec import expand as expand_points
    spec = sweep_spec(resolve_preset("quick", data_root=str(root), download=False))
    for k, pt in enumerate(expand_points(spec)):
        folder = out / "runs" / pt.name
        folder.mkdir(parents=True)
        (folder / "point.yaml").write_text(yaml.safe_dump(pt.config.to_dict()))
        res = _result(pt.config.method, pt.config.effective_beta, pt.config.seed, 0.5 + 0.1 * k,
                      1.0 + k, 0.5)
        (folder / "result.json").write_text(json.dumps(dict(res, n_train=600, n_test=10000)))


def test_ibcurve_gathers_a_finished_sweep_without_training(tmp_path, capsys):
    out = tmp_path / "ib"
    _fake_finished_sweep(out, tmp_path / "data")  # the data is never read: nothing trains
    args = ["reproduce", "ibcurve", "--preset", "quick", "--data-root", str(tmp_path / "data"),
            "--offline", "--no-progress", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "beta=100: test accuracy 90.00 +- 0.00% over 1 seed(s)" in printed
    assert "paper (Table 1, MNIST 1%): IB 86.57%, CE 85.78%" in printed  # 600 images: the paper's row
    res = json.loads((out / "ibcurve.json").read_text())
    assert res["points_run"] == 0 and res["points_reused"] == 5
    assert "beta=0 (iy): test accuracy 60.00" in printed and "vs beta=0 +10.00 points" in printed
    rows = list(csv.DictReader((out / "ibcurve.csv").open()))
    assert [(r["method"], r["beta"]) for r in rows] == [("ib", "0.001"), ("ib", "1.0"),
                                                          ("ib", "100.0"), ("iy", "0.0"), ("ce", "")]
    assert float(rows[4]["test_accuracy_mean"]) == 0.5 and float(rows[0]["layer2_i_x_nats_mean"]) == 6.0
    assert (out / "ibcurve.png").read_bytes()[:4] == b"\x89PNG"
    assert main(args) == 2 and "already holds an ibcurve" in capsys.readouterr().err


@pytest.mark.slow  # four real training processes: about 1 CPU-minute
def test_ibcurve_quick_end_to_end(tmp_path, capsys):
    root = make_tiny_mnist(tmp_path / "data", n_train=2000, n_test=200)  # 1 %: 20 images
    out = tmp_path / "ib"
    args = ["reproduce", "ibcurve", "--preset", "quick", "--data-root", str(root), "--offline",
            "--no-progress", "--out", str(out)]
    assert main(args) == 0
    assert "CE baseline: test accuracy" in capsys.readouterr().out
    res = json.loads((out / "ibcurve.json").read_text())
    assert res["experiment"] == "ibcurve" and res["n_train"] == 20 and res["points_run"] == 5
    assert res["paper"]["numbers"] == {"ib": None, "ce": None}  # not the paper's data
    rows = list(csv.DictReader((out / "ibcurve.csv").open()))
    assert [r["method"] for r in rows] == ["ib", "ib", "ib", "iy", "ce"]  # by beta, then baselines
    for r, p in zip(rows, res["curve"]["ib"]):  # the table is the runs' results, one seed each
        run = json.loads((out / "runs" / f"method=ib__beta={p['beta']!r}" / "result.json").read_text())
        assert float(r["test_accuracy_mean"]) == run["test_accuracy"]
        assert float(r["layer3_i_y_nats_mean"]) == run["layers"][2]["i_y_nats"]
    assert (out / "ibcurve.png").read_bytes()[:4] == b"\x89PNG"
    assert len((out / "runs" / "sweep.csv").read_text().splitlines()) == 6
    assert main(args) == 2 and "already holds an ibcurve" in capsys.readouterr().err


def test_example_sweep_file_is_the_default_preset():
    from pathlib import Path

    from layerib.sweep import read_spec
    example = Path(__file__).resolve().parents[2] / "examples" / "ibcurve.yaml"
    assert read_spec(example) == sweep_spec(resolve_preset("default"))
