"""Information-plane dynamics: layer-wise IB against end-to-end CE training.

The paper defers its information-plane analysis to supplementary material we
do not have, so there are no numbers to match. :func:`run` trains the MNIST
MLP twice with :func:`layerib.runs.training.run_training`, into ``ib/`` (layer-wise
IB) and ``ce/`` (end-to-end cross-entropy), with every other setting equal.
Both runs record held-out (I(X; L_i + eps), I(Y; L_i)) with the same
estimators and the same pinned noise variance: layer-wise training for the
layer being trained during its stage (``stage: "layer"`` records), CE
training for every layer at step 0 and ``infoplane_evals`` more times
(``stage: "infoplane"`` records, :class:`layerib.ib.infoplane.InfoPlaneRecorder`).

It writes ``infoplane.json`` (start and end point of every layer's
trajectory for both runs, in nats and bits, and the runs' accuracies beside
the paper's Table 1) and, from the stored metrics only, ``infoplane.png``
(:func:`render`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from pathlib import Path

from layerib.config import TrainConfig
from layerib.errors import RunDirError
from layerib.experiments.presets import choose, read_stored, with_train
from layerib.experiments.paper_numbers import table1_accuracy

PAPER = {
    "artefact": "supplementary: information-plane dynamics during training",
    "claim": "The paper analyses information-plane dynamics in its supplementary material, "
             "which is not available; there is nothing to compare the trajectories with.",
    "numbers": None,
}
METHODS = ("ib", "ce")
TITLES = {"ib": "layer-wise IB (progress within each layer's stage)",
          "ce": "end-to-end cross-entropy"}


@dataclass(frozen=True)
class InfoPlanePreset:
    """Settings of one information-plane reproduction (``method`` is set per run)."""

    train: TrainConfig  # shared settings of the IB and CE runs (beta and noise variance pinned)


PRESETS = {
    # MNIST 1% (Table 1, first row): the measured defaults, with beta and sigma^2 pinned (no early stopping)
    "default": InfoPlanePreset(TrainConfig(train_fraction=0.01, beta=1.0, noise_var=100.0,
                                           widths=(512, 512, 10), infoplane_evals=10,
                                           infoplane_critic_steps=100, val_fraction=0.0)),
    # seconds on a tiny data set: a smoke test of the whole pipeline, not a result
    "quick": InfoPlanePreset(TrainConfig(
        beta=1.0, noise_var=100.0, widths=(32, 16, 10), batch_size=64, epochs_per_layer=1,
        min_steps_per_layer=8, ce_epochs=1, readout_epochs=1, critic_hidden=16,
        mi_eval_batch_size=50, evals_per_layer=4, infoplane_evals=4, infoplane_critic_steps=20,
        val_fraction=0.0)),
}


def resolve_preset(preset: str, **overrides) -> InfoPlanePreset:
    """The named preset with ``TrainConfig`` fields in ``overrides`` replaced (None: keep).

    Raises:
        ConfigError: an unknown preset name.
    """
    return with_train(choose(PRESETS, preset, "infoplane"), overrides)


def _point(traj: dict, k: int) -> dict:
    ix, iy = traj["i_x_nats"][k], traj["i_y_nats"][k]
    return {"step": traj["step"][k], "i_x_nats": ix, "i_y_nats": iy,
            "i_x_bits": ix / math.log(2), "i_y_bits": iy / math.log(2)}


def summarise(trajectories: dict[int, dict]) -> dict[str, dict]:
    """``{layer: {"start": point, "end": point, "n_points"}}`` of per-layer trajectories."""
    return {str(layer): {"start": _point(t, 0), "end": _point(t, -1), "n_points": len(t["step"])}
            for layer, t in sorted(trajectories.items()) if t["step"]}


def run(out: str | Path, *, preset: str = "default", data_root: str | None = None,
        download: bool | None = None, device: str | None = None, seed: int | None = None,
        force: bool = False, progress: bool = False, argv: list[str] | None = None) -> dict:
    """Train both ways into ``out/ib`` and ``out/ce``; write ``infoplane.json`` and ``.png``.

    Returns:
        What ``infoplane.json`` holds.

    Raises:
        LayerIBError: unknown preset, bad data, a folder holding a finished
            run (without ``force``), or a non-finite loss.
    """
    from layerib.analysis.runs import infoplane_trajectories, read_metrics
    from layerib.runs.folder import atomic_write_json
    from layerib.runs.training import run_training

    t0 = time.perf_counter()
    cfg = resolve_preset(preset, data_root=data_root, download=download, device=device,
                         seed=seed).train
    out = Path(out)
    if (out / "infoplane.json").exists() and not force:
        raise RunDirError(f"{out} already holds an infoplane reproduction; choose another --out "
                          "or pass --force to overwrite")
    runs = {}
    for method in METHODS:
        res = run_training(dataclasses.replace(cfg, method=method), out / method, force=force,
                           progress=progress, argv=argv)
        traj = infoplane_trajectories(read_metrics(out / method / "metrics.jsonl"))
        paper = table1_accuracy(cfg.dataset, cfg.train_fraction, method, res["n_train"])
        runs[method] = {"dir": method, "test_accuracy": res["test_accuracy"],
                        "paper_test_accuracy_percent": paper, "layers": summarise(traj)}
    result = {"experiment": "infoplane", "preset": preset, "paper": PAPER, "runs": runs,
              "noise_var": cfg.noise_var, "beta": cfg.beta,
              "eval_batch_size": min(cfg.mi_eval_batch_size, res["n_test"] // 2),
              "n_train": res["n_train"], "n_test": res["n_test"], "config": cfg.to_dict(),
              "figure": "infoplane.png", "wall_seconds": time.perf_counter() - t0}
    result["summary"] = summary_lines(result)
    atomic_write_json(out / "infoplane.json", result)
    render(out)
    return result


def summary_lines(res: dict) -> list[str]:
    """Accuracy and each layer's first and last point (bits), per method, for the terminal."""
    lines = []
    for m, r in res["runs"].items():
        paper = r.get("paper_test_accuracy_percent")
        lines.append(f"{m}: test accuracy {100 * r['test_accuracy']:.2f}%"
                     + (f" (paper {paper:.2f}%)" if paper is not None else ""))
        for layer, t in r["layers"].items():
            a, b = t["start"], t["end"]
            lines.append(f"  layer {layer}: (I(X;L+eps), I(Y;L)) = ({a['i_x_bits']:.2f}, "
                         f"{a['i_y_bits']:.2f}) bits at step {a['step']} -> ({b['i_x_bits']:.2f}, "
                         f"{b['i_y_bits']:.2f}) at step {b['step']}")
    return lines


def render(out: str | Path) -> Path:
    """Draw ``infoplane.png`` from the stored ``infoplane.json`` and the runs' metrics.

    Raises:
        RunDirError: ``out`` holds no finished infoplane reproduction.
    """
    from layerib.analysis.runs import infoplane_trajectories, read_metrics
    from layerib.plotting.infoplane import plot_information_plane

    out = Path(out)
    res = read_stored(out, "infoplane")
    panels = {TITLES.get(m, m): infoplane_trajectories(read_metrics(out / r["dir"] / "metrics.jsonl"))
              for m, r in res["runs"].items()}
    fig = plot_information_plane(panels, noise_var=res["noise_var"],
                                 batch_size=res.get("eval_batch_size"))
    fig.savefig(out / "infoplane.png", dpi=110)
    return out / "infoplane.png"
