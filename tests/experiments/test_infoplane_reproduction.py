"""`layerib reproduce infoplane --preset quick` end to end on the tiny fake MNIST."""

import pytest
import json

from html_checks import check_html

from layerib.cli import main
from layerib.ib.infoplane import eval_steps


def _records(path, stage):
    return [r for r in map(json.loads, path.read_text().splitlines()) if r["stage"] == stage]


@pytest.mark.slow  # heavier; run with -m slow
def test_infoplane_quick_end_to_end(tiny_mnist, tmp_path, capsys):
    out = tmp_path / "ip"
    assert main(["reproduce", "infoplane", "--preset", "quick", "--data-root", str(tiny_mnist),
                 "--offline", "--no-progress", "--out", str(out)]) == 0
    assert "layer 3: (I(X;L+eps), I(Y;L))" in capsys.readouterr().out
    res = json.loads((out / "infoplane.json").read_text())
    assert res["experiment"] == "infoplane" and set(res["runs"]) == {"ib", "ce"}
    assert res["runs"]["ib"]["paper_test_accuracy_percent"] is None  # not the paper's data
    # CE: every layer at step 0 and 4 more times over its 24 steps (300 images, batch 64,
    # at least 8 steps x 3 layers); layer-wise: evals_per_layer records per stage
    ce = _records(out / "ce" / "metrics.jsonl", "infoplane")
    assert len(ce) == len(eval_steps(24, 4)) * 3 == 15
    assert _records(out / "ib" / "metrics.jsonl", "infoplane") == []
    assert len(_records(out / "ib" / "metrics.jsonl", "layer")) == 3 * 4
    for method, n in (("ce", 5), ("ib", 4)):
        layers = res["runs"][method]["layers"]
        assert sorted(layers) == ["1", "2", "3"]
        assert all(t["n_points"] == n and "i_x_bits" in t["end"] for t in layers.values())
    assert res["runs"]["ce"]["layers"]["1"]["start"]["step"] == 0
    assert (out / "infoplane.png").read_bytes()[:4] == b"\x89PNG"
    page = tmp_path / "report.html"
    assert main(["report", str(out), "--out", str(page)]) == 0
    html = page.read_text()
    # the stored plane, then per run: training curves and information plane
    assert len(check_html(html)) == 1 + 2 * 2 and "ip / ce" in html
