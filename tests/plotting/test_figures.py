"""Each plot function on small stored results: returns a Figure, draws what it says, never shows."""

import io
import math
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.figure import Figure

from layerib.analysis.runs import infoplane_trajectories
from layerib.plotting import plot_information_plane, plot_training_curves, plot_tsne_panels

PNG = b"\x89PNG\r\n\x1a\n"


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=40)
    return buf.getvalue()


def _layerwise_records():
    recs = []
    for layer in (1, 2):
        for step in (5, 10):
            recs.append({"stage": "layer", "layer": layer, "step": step, "epoch": step / 5,
                         "train_i_y_nats": 0.1 * step, "train_i_x_nats": 0.2 * layer,
                         "test_i_y_nats": 0.1 * step + 0.01, "test_i_x_nats": 0.2 * layer + 0.01,
                         "noise_var": 100.0})
    recs.append({"stage": "readout", "epoch": 1, "step": 4, "train_ce": 0.7})
    return recs


def _ce_records():
    recs = [{"stage": "ce", "epoch": 1, "step": 10, "train_ce": 1.2}]
    for step in (0, 5, 10):
        for layer in (1, 2, 3):
            recs.append({"stage": "infoplane", "layer": layer, "step": step,
                         "test_i_x_nats": 0.6 * step / 10, "test_i_y_nats": 0.2 * layer * step / 10})
    return recs


def test_tsne_panels():
    rng = np.random.default_rng(0)
    labels = np.arange(60) % 10
    panels = [{"beta": 100.0, "embedding": rng.normal(size=(60, 2)), "labels": labels,
               "note": "distinct 10%"},
              {"beta": 1e-3, "embedding": rng.normal(size=(60, 2)), "labels": labels}]
    fig = plot_tsne_panels(panels, title="t-SNE")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    assert "10^{2}" in fig.axes[0].get_title() and "distinct 10%" in fig.axes[0].get_title()
    assert "10^{-3}" in fig.axes[1].get_title()
    legend = fig.axes[1].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [str(c) for c in range(10)]
    assert sum(len(c.get_offsets()) for c in fig.axes[0].collections) == 60
    assert _png(fig).startswith(PNG)


def test_tsne_panels_bad_input():
    with pytest.raises(ValueError, match="at least one panel"):
        plot_tsne_panels([])
    with pytest.raises(ValueError, match=r"embedding must be \(N, 2\)"):
        plot_tsne_panels([{"beta": 1.0, "embedding": np.zeros((5, 3)), "labels": np.zeros(5)}])


def test_information_plane_in_bits_with_colour_bar():
    panels = {"layer-wise IB": infoplane_trajectories(_layerwise_records()),
              "end-to-end CE": infoplane_trajectories(_ce_records())}
    fig = plot_information_plane(panels, noise_var=100.0, batch_size=2)
    assert isinstance(fig, Figure) and len(fig.axes) == 3  # two panels and the colour bar
    ax_ib, ax_ce = fig.axes[:2]
    assert "bits" in ax_ib.get_xlabel() and "100" in ax_ib.get_xlabel()
    assert "bits" in ax_ib.get_ylabel()
    assert "progress" in fig.axes[2].get_ylabel()
    # one scatter per layer, values converted from nats to bits
    points = [c.get_offsets() for c in ax_ce.collections if len(c.get_offsets()) == 3]
    assert len(points) == 3
    assert np.allclose(points[2][:, 1], np.array([0.0, 0.3, 0.6]) / math.log(2))
    # the ceiling log2 B = 1 bit is drawn where values come near it (CE: 0.87 bits), not elsewhere
    assert any(line.get_xdata()[0] == pytest.approx(1.0) for line in ax_ce.get_lines())
    assert not any(line.get_xdata()[0] == pytest.approx(1.0) for line in ax_ib.get_lines())
    assert _png(fig).startswith(PNG)


def test_information_plane_bad_input():
    with pytest.raises(ValueError, match="at least one panel"):
        plot_information_plane({})
    bad = {"x": {1: {"progress": [0, 1], "i_x_nats": [0.1], "i_y_nats": [0.1, 0.2]}}}
    with pytest.raises(ValueError, match="differ in length"):
        plot_information_plane(bad)


def test_trajectories_from_records():
    lw = infoplane_trajectories(_layerwise_records())
    assert sorted(lw) == [1, 2] and lw[2]["progress"] == [0.5, 1.0]  # within the layer's stage
    assert lw[1]["i_y_nats"] == pytest.approx([0.51, 1.01])
    assert infoplane_trajectories(_layerwise_records(), which="train")[1]["i_y_nats"] == [0.5, 1.0]
    ce = infoplane_trajectories(_ce_records())
    assert sorted(ce) == [1, 2, 3] and ce[1]["progress"] == [0.0, 0.5, 1.0]
    assert infoplane_trajectories([{"stage": "final", "test_accuracy": 0.5}]) == {}


def test_training_curves():
    fig = plot_training_curves(_layerwise_records(), title="run")
    ax_loss, ax_y, ax_x = fig.axes
    assert len(ax_y.get_lines()) == 4  # two layers, held-out and training means
    # layer 2's stage follows layer 1's: its steps are shifted by layer 1's 10 steps
    assert list(ax_y.get_lines()[1].get_xdata()) == [15, 20]
    assert list(ax_loss.get_lines()[0].get_xdata()) == [24]  # read-out after both stages
    assert _png(fig).startswith(PNG)
    empty = plot_training_curves([])
    assert all("not recorded" in [t.get_text() for t in ax.texts] for ax in empty.axes)
    ce = plot_training_curves(_ce_records())
    assert len(ce.axes[1].get_lines()) == 3


def test_plotting_never_touches_pyplot():
    code = ("import sys, layerib.plotting, layerib.report.html; "
            "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
