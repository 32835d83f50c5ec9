"""``layerib reproduce fig1 --preset quick`` end to end on a tiny fake MNIST; the plot and CSV."""

import csv
import json
import math

import pytest

from layerib.cli import main
from layerib.errors import ConfigError, RunDirError
from layerib.experiments import EXPERIMENTS
from layerib.experiments.fig1 import COLUMNS, read_csv, resolve_preset


def test_quick_preset_end_to_end(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "fig1"
    rc = main(["reproduce", "fig1", "--preset", "quick", "--data-root", str(tiny_mnist),
               "--out", str(out), "--offline", "--no-progress"])
    assert rc == 0  # its speed is a benchmark's business, not a test's
    with open(out / "fig1.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == COLUMNS
    noise = [float(r["noise_var"]) for r in rows]
    assert noise[0] == 0.0 and max(noise) >= 1.0 and noise == sorted(noise)
    parsed = read_csv(out / "fig1.csv")
    n_test = parsed[0]["n_test"]
    assert parsed[0]["truth_nats"] == pytest.approx(math.log(n_test), abs=1e-6)  # distinct points
    truths = [r["truth_nats"] for r in parsed]
    assert truths == sorted(truths, reverse=True)  # the truth falls as the noise grows
    for r in parsed:
        assert all(math.isfinite(r[k]) for k in ("mine_nats", "aa_mine_nats", "truth_nats"))
        assert r["mine_shuffled_nats"] is not None and r["aa_mine_shuffled_nats"] is not None
        assert r["batch_size"] <= n_test // 2
    res = json.loads((out / "fig1.json").read_text())
    assert res["experiment"] == "fig1" and res["figure"] == "fig1.png" and "claim" in res["paper"]
    assert (out / "fig1.png").stat().st_size > 10_000
    printed = capsys.readouterr().out
    assert "AA-MINE" in printed and "fig1: results in" in printed
    # a finished reproduction is not overwritten without --force
    assert main(["reproduce", "fig1", "--preset", "quick", "--data-root", str(tiny_mnist),
                 "--out", str(out), "--offline", "--no-progress"]) == 2
    assert "already holds a fig1 reproduction" in capsys.readouterr().err


def test_plot_axes_and_registry(tmp_path):
    from layerib.plotting.fig1 import plot_fig1
    assert "fig1" in EXPERIMENTS
    rows = [{k: 0.0 for k in COLUMNS} | {"noise_var": nv, "truth_nats": t, "mine_nats": 0.1,
                                         "aa_mine_nats": t, "ln_batch": 5.5, "ln_n_test": 9.2,
                                         "batch_size": 256, "n_test": 10000, "layer": 3}
            for nv, t in ((0.0, 9.2), (1e-3, 6.0), (1.0, 0.02))]
    fig = plot_fig1(rows)
    ax, ax_ratio = fig.axes
    assert ax.get_xscale() == "symlog" and ax.get_xlim()[0] <= 0.0  # sigma^2 = 0 is on the axis
    assert "noise variance" in ax_ratio.get_xlabel() and "nats" in ax.get_ylabel()
    assert "truth" in ax_ratio.get_ylabel()
    assert len(ax.get_legend().get_texts()) == 3
    with pytest.raises(ValueError, match="positive noise variance"):
        plot_fig1(rows[:1])


def test_bad_preset_and_missing_csv(tmp_path):
    with pytest.raises(ConfigError, match="unknown fig1 preset 'huge'"):
        resolve_preset("huge")
    with pytest.raises(RunDirError, match="run layerib reproduce fig1 first"):
        read_csv(tmp_path / "fig1.csv")
