"""`layerib reproduce budget`: every variant at every budget, resume, the table and the figure.

One quick study (three 3-second budgets on fake MNIST, side by side; about 25 s) is run once
per module, by the tests marked slow; the default run checks the sweep and the table.
"""

import json
import shutil

import pytest
import yaml
from conftest import make_tiny_mnist

from layerib.cli import main
from layerib.errors import ConfigError
from layerib.experiments import EXPERIMENTS, budget
from layerib.sweep.spec import expand, spec_from_dict


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """``(data root, study folder, budget.json, printed text)`` of one finished quick study."""
    tmp = tmp_path_factory.mktemp("budget")
    root = make_tiny_mnist(tmp / "data")
    out = tmp / "study"
    args = ["reproduce", "budget", "--preset", "quick", "--data-root", str(root), "--offline",
            "--no-progress", "--out", str(out)]
    assert main(args) == 0
    return root, out, json.loads((out / "budget.json").read_text())


@pytest.mark.slow
def test_every_variant_runs_within_its_budget_and_the_table_is_the_runs(study):
    root, out, table = study
    assert "budget" in EXPERIMENTS and table["experiment"] == "budget"
    assert [r["variant"] for r in table["rows"]] == ["ib", "iy", "ce"]
    for r in table["rows"]:
        result = json.loads((out / r["run"] / "result.json").read_text())
        assert result["method"] == r["method"] == r["variant"]
        assert result["config"]["budget_minutes"] == r["budget_minutes"] == 0.05
        assert r["test_accuracy_percent"] == pytest.approx(100 * result["test_accuracy"])
        assert r["machine"]["threads"] == 1  # side by side, one thread each
        assert r["stages"] and all(s >= 1 for s in r["stages"].values())
    md = (out / "budget.md").read_text()
    assert "| ib | ib | 0.05 |" in md and "3 runs side by side, one thread each" in md
    assert (out / "budget.png").stat().st_size > 10_000


@pytest.mark.slow
def test_a_stopped_study_resumes_without_retraining(study, tmp_path):
    root, done, table = study
    out = tmp_path / "study"
    shutil.copytree(done, out)
    (out / "budget.json").unlink()
    before = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/result.json")}
    assert main(["reproduce", "budget", "--preset", "quick", "--data-root", str(root), "--offline",
                 "--no-progress", "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in out.glob("runs/*/result.json")} == before
    again = json.loads((out / "budget.json").read_text())
    assert [r["test_accuracy_percent"] for r in again["rows"]] == \
        [r["test_accuracy_percent"] for r in table["rows"]]


def test_presets_run_every_variant_at_every_budget_shortest_first():
    p = budget.PRESETS["default"]
    pts = expand(budget.spec(p, {}))
    assert [(pt.config.method, pt.config.budget_minutes) for pt in pts] == \
        [("ib", 15.0), ("iy", 15.0), ("ce", 15.0), ("ib", 45.0), ("iy", 45.0), ("ce", 45.0)]
    assert len({pt.config.arch for pt in pts}) == 1 and len({pt.config.channels for pt in pts}) == 1
    abl = expand(budget.spec(budget.PRESETS["ablation"], {}))
    assert len({pt.name for pt in abl}) == len(budget.PRESETS["ablation"].variants)
    s2d = abl[1].config
    assert s2d.arch_params["downsample"] == "space_to_depth" and abl[0].config.arch_params.get(
        "downsample", "pool") == "pool"
    # the sweep file of every preset is plain YAML (tuples, arch_params) and reads back the same
    for name, p in budget.PRESETS.items():
        sp = budget.spec(p, {})
        back = spec_from_dict(yaml.safe_load(yaml.safe_dump(sp.to_dict(), sort_keys=False)))
        assert [(pt.name, pt.config) for pt in expand(back)] == \
            [(pt.name, pt.config) for pt in expand(sp)], name
    with pytest.raises(ConfigError, match="budgets must be minutes > 0"):
        budget.BudgetPreset({}, {"ib": {"method": "ib"}}, (0,)).check("x")
    with pytest.raises(ConfigError, match="names no method"):
        budget.BudgetPreset({}, {"ib": {}}, (1,)).check("x")


def test_cli_refuses_an_unknown_preset(tmp_path, capsys):
    assert main(["reproduce", "budget", "--preset", "nope", "--out", str(tmp_path / "b")]) == 2
    assert "unknown budget preset 'nope'" in capsys.readouterr().err


def test_the_table_and_figure_come_from_the_rows(tmp_path):
    rows = [{"variant": v, "method": v, "budget_minutes": b, "wall_minutes": b + 1.5,
             "report_minutes": 1.25 if b == 45 else None, "test_accuracy_percent": a, "train_accuracy_percent": None, "stages": {"layer1": 10},
             "machine": {"cpu": "CPU X", "threads": 1, "gpu": None}, "run": f"runs/{v}{b}"}
            for v, b, a in (("ib", 15, 80.0), ("ib", 45, 84.5), ("ce", 15, 82.0), ("ce", 45, 86.25))]
    table = {"preset": "default", "base": {"arch": "airbench"}, "workers": 3, "rows": rows,
             "argv": ["layerib", "reproduce", "budget", "--out", "b"]}
    md = budget.render_markdown(table)
    assert "| ib | ib | 45 | 46.5 | 1.2 | 84.50 | layer1: 10 |" in md
    assert "| ib | ib | 15 | 16.5 | - | 80.00 | layer1: 10 |" in md  # a run without the figure
    assert "CPU X (1 thread per run)" in md and "`layerib reproduce budget --out b`" in md
    assert budget.summary_lines(table)[3] == "ce at 45 min: test accuracy 86.25% (46.5 min wall with the report)"
    assert budget.best_by_variant(rows) == {"ib": 84.5, "ce": 86.25}
    from layerib.plotting.budget import plot_accuracy_vs_minutes
    fig = plot_accuracy_vs_minutes(rows)
    assert [tuple(line.get_ydata()) for line in fig.axes[0].lines] == [(80.0, 84.5), (82.0, 86.25)]
