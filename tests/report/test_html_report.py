"""`layerib report`: one well-formed, self-contained page from stored run and reproduction folders."""

import json

import pytest
from html_checks import check_html
from matplotlib.figure import Figure

from layerib.cli import main
from layerib.report.html import build_report


def _write_run(d, method="ib", n_train=600):
    d.mkdir(parents=True)
    cfg = {"method": method, "beta": 1.0, "noise_var": 100.0, "train_fraction": 0.01,
           "widths": [32, 10], "seed": 0}
    (d / "config.json").write_text(json.dumps({"config": cfg, "argv": ["layerib"]}))
    layers = [{"index": k, "width": w, "i_y_nats": 1.5, "i_x_nats": 2.0 + k,
               "i_x_monte_carlo_nats": 2.1 + k, "batch_size": 512, "noise_var": 100.0,
               "i_y": {"stderr": 0.01}, "i_x": {"stderr": 0.02, "ln_batch": 6.238}}
              for k, w in ((1, 32), (2, 10))]
    (d / "result.json").write_text(json.dumps({
        "test_accuracy": 0.8523, "train_accuracy": 0.99, "method": method, "dataset": "mnist",
        "train_fraction": 0.01, "n_train": n_train, "n_test": 10000, "config": cfg,
        "layers": layers, "wall_seconds": 12.0}))
    recs = [{"stage": "layer", "layer": k, "step": s, "test_i_x_nats": 0.5 * s, "test_i_y_nats": 0.1 * s,
             "train_i_x_nats": 0.5 * s, "train_i_y_nats": 0.1 * s} for k in (1, 2) for s in (1, 2)]
    recs.append({"stage": "readout", "epoch": 1, "step": 3, "train_ce": 0.4})
    (d / "metrics.jsonl").write_text("\n".join(map(json.dumps, recs)) + "\n")
    return d


def _png(path):
    fig = Figure(figsize=(2, 2))
    fig.subplots().plot([0, 1], [1, 0])
    fig.savefig(path, dpi=30)


def _write_fig3(d):
    d.mkdir(parents=True)
    clus = {"distinct_fraction": {"0.01": 0.4, "0.05": 0.2, "0.2": 0.1}, "median_nn_distance": 0.003,
            "knn_entropy_per_dim_nats": -8.0, "silhouette_by_class": -0.1,
            "silhouette_by_class_embedding": 0.0}
    panels = [{"beta": b, "noise_var": 100.0, "test_i_x_nats": 0.1, "i_x_monte_carlo_nats": 0.1,
               "test_i_y_nats": 1.0, "readout_test_accuracy": 0.5, "clustering": clus}
              for b in (100.0, 0.001)]
    (d / "fig3.json").write_text(json.dumps({
        "experiment": "fig3", "preset": "quick", "figure": "fig3.png", "panels": panels,
        "paper": {"claim": "quantised at beta = 1e2 <b>", "numbers": None},
        "comparison": {"more_quantised_at_large_beta": True}}))
    _png(d / "fig3.png")
    return d


def _write_other(d):
    """A reproduction this module has no special page for (e.g. another engineer's fig1)."""
    d.mkdir(parents=True)
    (d / "fig1.json").write_text(json.dumps({"experiment": "fig1", "paper": {"claim": "grows"},
                                             "values": [1, 2], "wall_seconds": 3.0}))
    _png(d / "fig1.png")
    return d


def test_report_of_runs_and_reproductions_is_self_contained(tmp_path, capsys):
    dirs = [_write_run(tmp_path / "ib"), _write_fig3(tmp_path / "f3"), _write_other(tmp_path / "f1")]
    out = tmp_path / "page" / "report.html"
    assert main(["report", *map(str, dirs), "--out", str(out)]) == 0
    assert "report of 3 folder(s)" in capsys.readouterr().out
    html = out.read_text()
    images = check_html(html)
    # run: curves and information plane; fig3 and fig1: their stored figures
    assert len(images) == 4
    assert "86.57" in html  # the paper's Table 1 (IB, MNIST 1%) beside our 85.23
    assert "85.23" in html
    assert "quantised at beta = 1e2 &lt;b&gt;" in html  # stored text is escaped
    assert "Reproduction: fig1" in html and "grows" in html
    assert "src=\"file:" not in html and "http" not in html.split("<body>", 1)[1]


def test_paper_number_only_for_the_papers_setting(tmp_path):
    html = build_report([_write_run(tmp_path / "tiny", n_train=300)])
    check_html(html)
    assert "86.57" not in html  # 300 images is not the paper's MNIST 1%


def test_unfinished_run_is_shown_as_such(tmp_path):
    d = _write_run(tmp_path / "r")
    (d / "result.json").unlink()
    html = build_report([d])
    check_html(html)
    assert "has not finished" in html


@pytest.mark.parametrize("make,message", [
    (lambda p: p / "missing", "is not a folder"),
    (lambda p: (p / "empty").mkdir() or p / "empty", "neither a run folder"),
])
def test_bad_folder_is_a_one_line_error(tmp_path, capsys, make, message):
    rc = main(["report", str(make(tmp_path)), "--out", str(tmp_path / "r.html")])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and err.startswith("layerib: error:") and message in err and "\n" not in err
    assert not (tmp_path / "r.html").exists()


def _write_refit_run(d, phase_keys: bool):
    """A val_refit run: 48 000 fit rows searched, all 60 000 refitted; read-out search and refit
    records in metrics.jsonl (with ``phase`` keys, or an older run's without them)."""
    d = _write_run(d, n_train=48000)
    res = json.loads((d / "result.json").read_text())
    res.update(n_val=12000, noise_var=100.0)
    res["refit"] = {k: {"best_step": 4, "refit_steps": 5, "rows": 60000}
                    for k in ("layer1", "layer2", "readout")}
    res["config"]["val_refit"] = True
    for L in res["layers"]:
        L["i_x_monte_carlo_stderr"] = 0.01
        L["i_y"].update(value=1.5, low=1.4, high=1.6, flags={})
        L["i_x"].update(value=L["i_x_nats"], low=L["i_x_nats"] - 0.1, high=L["i_x_nats"] + 0.1,
                        flags={})
    res["layers"][1]["flags"] = ["off_truth", "negative", "i_y_saturated"]
    res["layers"][1]["i_x"]["flags"] = {"negative": "value < 0 <i>"}
    (d / "result.json").write_text(json.dumps(res))
    recs = [{"stage": "layer", "layer": k, "step": s, "test_i_x_nats": 0.5 * s,
             "test_i_y_nats": 0.1 * s} for k in (1, 2) for s in (1, 2)]
    for phase, steps in (("search", (3, 6, 9)), ("refit", (4, 8))):
        recs += [{"stage": "readout", "epoch": e, "step": s, "train_ce": 1.0 / s,
                  **({"phase": phase} if phase_keys else {})} for e, s in enumerate(steps, 1)]
    (d / "metrics.jsonl").write_text("\n".join(map(json.dumps, recs)) + "\n")
    return d, res


def test_mi_table_shows_the_flags_the_cli_prints(tmp_path):
    from layerib.cli.train import format_summary

    d, res = _write_refit_run(tmp_path / "r", phase_keys=True)
    html = build_report([d])
    check_html(html)
    cli_line = format_summary(res)[-1]  # layer 2's line ends with its flags
    assert cli_line.endswith("off_truth negative i_y_saturated")
    assert "<td>off_truth negative i_y_saturated</td>" in html and "<th>flags</th>" in html
    assert "layer 2, I(X;L+eps): <b>negative</b>: value &lt; 0 &lt;i&gt;" in html  # reasons, escaped


def test_a_refitted_net_shows_the_rows_it_was_trained_on(tmp_path):
    from layerib.cli.train import format_summary

    d, res = _write_refit_run(tmp_path / "r", phase_keys=True)
    html = build_report([d])
    assert '<td class="num">60000</td>' in html and '<td class="num">48000</td>' not in html
    sentence = "60000 training images: stages early-stopped on 12000 of them, then refitted on all"
    assert sentence in format_summary(res)[0] and sentence in html  # the CLI's wording
    # without a refit, the fit rows and the validation rows held out beside them
    d2 = _write_run(tmp_path / "plain", n_train=480)
    res2 = json.loads((d2 / "result.json").read_text())
    (d2 / "result.json").write_text(json.dumps({**res2, "n_val": 120}))
    html2 = build_report([d2])
    assert '<td class="num">480</td>' in html2
    assert "480 training images, and 120 more held out for early stopping" in html2
    assert "86.57" in html2  # 480 + 120 rows: the paper's MNIST 1 % setting


@pytest.mark.parametrize("phase_keys", [True, False])
def test_readout_search_and_refit_are_separate_lines(tmp_path, phase_keys):
    """New runs label each record's phase; older runs are cut where the step counter goes back."""
    from layerib.analysis.runs import read_metrics
    from layerib.plotting import plot_training_curves

    d, _ = _write_refit_run(tmp_path / "r", phase_keys=phase_keys)
    ax_loss = plot_training_curves(read_metrics(d / "metrics.jsonl")).axes[0]
    lines = {ln.get_label(): list(ln.get_xdata()) for ln in ax_loss.get_lines()}
    offset = 4  # the read-out's steps follow both layer stages' 2 steps
    assert lines == {"read-out CE (search)": [offset + 3, offset + 6, offset + 9],
                     "read-out CE (refit)": [offset + 4, offset + 8]}
    check_html(build_report([d]))


def test_docstring_examples_run():
    import doctest

    import layerib.plotting.curves
    import layerib.report.html

    for mod in (layerib.plotting.curves, layerib.report.html):
        failed, attempted = doctest.testmod(mod)[:2]
        assert attempted > 0 and failed == 0, mod.__name__
