"""`layerib reproduce fig3 --preset quick` end to end on the tiny fake MNIST."""

import json

import numpy as np
from html_checks import check_html

from layerib.cli import main


def test_fig3_quick_end_to_end(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "fig3"
    argv = ["reproduce", "fig3", "--preset", "quick", "--data-root", str(tiny_mnist), "--offline",
            "--no-progress", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "beta=100" in printed and "beta=0.001" in printed and "results in" in printed
    res = json.loads((out / "fig3.json").read_text())
    assert res["experiment"] == "fig3" and [p["beta"] for p in res["panels"]] == [100.0, 0.001]
    assert res["paper"]["betas"] == [100.0, 0.001]
    for p in res["panels"]:
        assert p["noise_var"] == 100.0 and 0.0 <= p["readout_test_accuracy"] <= 1.0
        c = p["clustering"]
        assert c["n_points"] == 150 and set(c["distinct_fraction"]) == {"0.01", "0.05", "0.1", "0.2"}
        assert np.isfinite(c["knn_entropy_per_dim_nats"]) and -1 <= c["silhouette_by_class"] <= 1
    assert set(res["comparison"]) >= {"more_quantised_at_large_beta", "fewer_distinct_points_at_0.05"}
    with np.load(out / "fig3_tsne.npz") as z:
        assert z["embedding_0"].shape == z["embedding_1"].shape == (150, 2)
        assert z["labels"].shape == (150,)
    assert (out / "fig3.png").read_bytes()[:4] == b"\x89PNG"
    stages = {json.loads(line)["beta"] for line in (out / "metrics.jsonl").read_text().splitlines()}
    assert stages == {100.0, 0.001}
    # a finished reproduction is not overwritten without --force
    assert main(argv) == 2 and "already holds a fig3" in capsys.readouterr().err
    # the report shows the stored figure, embedded
    page = tmp_path / "report.html"
    assert main(["report", str(out), "--out", str(page)]) == 0
    html = page.read_text()
    assert len(check_html(html)) == 1 and "Reproduction: fig3" in html


def test_unknown_preset_is_a_one_line_error(tiny_mnist, tmp_path, capsys):
    rc = main(["reproduce", "fig3", "--preset", "huge", "--data-root", str(tiny_mnist),
               "--offline", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert rc == 2 and "unknown fig3 preset 'huge'; choose one of default, mnist1, quick" in err
    assert not (tmp_path / "x").exists()
