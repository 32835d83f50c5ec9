"""Reading run folders back: config, result, metrics, and the series figures need.

Figures never retrain (STYLE.md): they read what a run wrote. A run folder
(:mod:`layerib.runs.training`) holds ``config.json``, ``metrics.jsonl`` and
``result.json``; a reproduction folder holds ``<name>.json`` with an
``"experiment"`` key (and its figure) and may hold run folders of its own.
"""

from __future__ import annotations

import json
from pathlib import Path

from layerib.errors import RunDirError


def read_json(path: Path) -> dict | None:
    """The JSON object in ``path``, or None when the file does not exist.

    Raises:
        RunDirError: the file exists but is not valid JSON.
    """
    path = Path(path)
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise RunDirError(f"cannot read {path}: {e}") from None


def read_metrics(path: Path) -> list[dict]:
    """Every record of a ``metrics.jsonl`` (``[]`` when missing); a torn last line is skipped."""
    path = Path(path)
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a run killed mid-write leaves at most one partial line
    return out


def stage_ends(records: list[dict]) -> dict[int, int]:
    """``{layer: last step of its layer-wise stage}`` (``{}`` for end-to-end runs)."""
    ends: dict[int, int] = {}
    for r in records:
        if r.get("stage") == "layer":
            ends[r["layer"]] = max(ends.get(r["layer"], 0), int(r["step"]))
    return ends


def global_step(record: dict, ends: dict[int, int]) -> int:
    """Step of ``record`` over the whole run (layer stages, then the read-out, run in turn)."""
    if record.get("stage") == "layer":
        return sum(v for k, v in ends.items() if k < record["layer"]) + int(record["step"])
    if record.get("stage") == "readout":
        return sum(ends.values()) + int(record["step"])
    return int(record.get("step", 0))


def infoplane_trajectories(records: list[dict], which: str = "test") -> dict[int, dict]:
    """Per-layer information-plane series from a run's metrics records.

    Uses ``stage: "infoplane"`` records (end-to-end training: every layer at
    every evaluation) when present, else ``stage: "layer"`` records (layer-wise
    training: the layer being trained, during its own stage).

    Args:
        records: the run's metrics (:func:`read_metrics`).
        which: ``"test"`` (held-out averages) or ``"train"`` (training-batch
            means; layer-wise records only).

    Returns:
        ``{layer: {"progress", "step", "i_x_nats", "i_y_nats"}}``, lists in
        step order; ``progress`` is the fraction of the run's steps for
        end-to-end training and of the layer's own stage for layer-wise
        training. ``{}`` when the run recorded neither.
    """
    plane = [r for r in records if r.get("stage") == "infoplane"]
    stage = plane or [r for r in records if r.get("stage") == "layer"]
    kx, ky = f"{which}_i_x_nats", f"{which}_i_y_nats"
    out: dict[int, dict] = {}
    for r in sorted(stage, key=lambda r: (r["layer"], r["step"])):
        if r.get(kx) is None or r.get(ky) is None:
            continue
        t = out.setdefault(r["layer"], {"progress": [], "step": [], "i_x_nats": [], "i_y_nats": []})
        t["step"].append(int(r["step"]))
        t["i_x_nats"].append(float(r[kx]))
        t["i_y_nats"].append(float(r[ky]))
    if plane:
        last = max((s for t in out.values() for s in t["step"]), default=0) or 1
        for t in out.values():
            t["progress"] = [s / last for s in t["step"]]
    else:
        for t in out.values():
            end = max(t["step"]) or 1
            t["progress"] = [s / end for s in t["step"]]
    return out


def load_run(run_dir: Path) -> dict:
    """``{"dir", "config", "result", "metrics"}`` of a training run folder.

    Raises:
        RunDirError: ``run_dir`` is not a folder, or holds neither ``config.json``
            nor ``result.json``.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir} is not a folder")
    config, result = read_json(run_dir / "config.json"), read_json(run_dir / "result.json")
    if config is None and result is None:
        raise RunDirError(f"{run_dir} is not a run folder (no config.json or result.json)")
    return {"dir": run_dir, "config": config, "result": result,
            "metrics": read_metrics(run_dir / "metrics.jsonl")}
