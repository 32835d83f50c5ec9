"""``sweep.csv``: one row per sweep point with its grid values and result fields (MI in nats).

Columns: ``point`` (folder name), ``status`` (``done``, ``failed`` or
``pending``), the grid keys that are not result fields, the result fields in
:data:`RESULT_FIELDS`, then ``layer<i>_i_x_nats`` and ``layer<i>_i_y_nats``
per layer (held-out estimates of I(X; L_i + eps) and I(Y; L_i), nats), and
``error`` (one line, failed points only). Floats are written exactly
(``repr``), so equal runs give equal files.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from layerib.runs.folder import atomic_write_text
from layerib.sweep.spec import SweepPoint, format_value

#: A failed point's folder holds this file: ``{"error": one line, ...}`` (written by the runner).
ERROR_FILE = "error.json"

#: Fields of ``result.json`` copied into ``sweep.csv``, in order.
RESULT_FIELDS = ("test_accuracy", "train_accuracy", "method", "beta", "noise_var",
                 "train_fraction", "seed", "n_train", "n_test", "wall_seconds")


def read_error(folder: Path) -> str | None:
    """The one-line error of a failed point folder, or None."""
    path = Path(folder) / ERROR_FILE
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text()).get("error")
    except (OSError, json.JSONDecodeError):
        return "unreadable error.json"


def point_row(folder: Path, point: SweepPoint) -> dict:
    """The CSV row of one point (see the module doc), read from its folder."""
    row: dict = {"point": point.name}
    for k, v in point.overrides.items():
        if k not in RESULT_FIELDS:
            row[k] = format_value(v) if isinstance(v, (list, tuple)) else v
    result_path = folder / "result.json"
    if result_path.exists():
        res = json.loads(result_path.read_text())
        row["status"] = "done"
        row.update({k: res.get(k) for k in RESULT_FIELDS})
        for layer in res.get("layers", []):
            row[f"layer{layer['index']}_i_x_nats"] = layer["i_x_nats"]
            row[f"layer{layer['index']}_i_y_nats"] = layer["i_y_nats"]
    else:
        error = read_error(folder)
        row["status"] = "failed" if error else "pending"
        row["error"] = error
    return row


def collect_rows(out: str | Path, points: list[SweepPoint]) -> list[dict]:
    """Rows of every point of the sweep in ``out``, in grid order."""
    return [point_row(Path(out) / p.name, p) for p in points]


def write_table(out: str | Path, points: list[SweepPoint]) -> Path:
    """Write ``out/sweep.csv`` (atomically) from the point folders; return its path."""
    rows = collect_rows(out, points)
    columns = ["point", "status"]
    for r in rows:  # grid keys first, in order of appearance
        columns += [k for k in r if k not in columns and k not in RESULT_FIELDS
                    and not k.startswith("layer") and k != "error"]
    columns += list(RESULT_FIELDS)
    n_layers = max((int(k[5:].split("_")[0]) for r in rows for k in r
                    if k.startswith("layer") and k.endswith("_i_x_nats")), default=0)
    for i in range(1, n_layers + 1):
        columns += [f"layer{i}_i_x_nats", f"layer{i}_i_y_nats"]
    columns.append("error")
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    path = Path(out) / "sweep.csv"
    atomic_write_text(path, buf.getvalue())
    return path


def read_table(path: str | Path) -> list[dict[str, str]]:
    """The rows of a ``sweep.csv`` as dicts of strings."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
