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
