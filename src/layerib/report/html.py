"""``layerib report``: one self-contained HTML page for run and reproduction folders.

Every figure is a PNG embedded as a ``data:image/png;base64,...`` URI and the
style sheet is inline, so the page is a single file that opens in any
browser without a server. Nothing is trained or estimated: training runs are
drawn from their ``config.json``, ``result.json`` and ``metrics.jsonl``
(:mod:`layerib.analysis.runs`, :mod:`layerib.plotting`); reproduction
folders (a ``<name>.json`` with an ``"experiment"`` key) contribute their
stored figures and numbers, with the paper's beside ours, and any run
folders inside them.
"""

from __future__ import annotations

import base64
import datetime as _dt
import io
import json
from html import escape
from pathlib import Path

from layerib.analysis.runs import infoplane_trajectories, load_run, read_json
from layerib.errors import RunDirError
from layerib.experiments.paper_numbers import table1_accuracy

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
h1 { border-bottom: 2px solid #444; } h2 { border-bottom: 1px solid #aaa; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #bbb; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #eee; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; border: 1px solid #ddd; margin: 0.5em 0; }
details { margin: 0.5em 0; } .muted { color: #666; } .ok { color: #070; } .bad { color: #a00; }
"""


def figure_data_uri(fig) -> str:
    """A matplotlib figure as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def file_data_uri(path: Path) -> str:
    """A PNG file as a ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _img(uri: str, alt: str) -> str:
    return f'<img src="{uri}" alt="{escape(alt)}">'


def _fmt(v) -> str:
    if v is None:
        return "&ndash;"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, (list, tuple)):
        return escape(", ".join(str(x) for x in v))
    return escape(str(v))


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(
        f'<td class="num">{_fmt(c)}</td>' if isinstance(c, (int, float)) and not isinstance(c, bool)
        else f"<td>{_fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _kv_table(d: dict) -> str:
    return _table(["setting", "value"], [[k, v] for k, v in d.items()
                                         if not isinstance(v, dict)])


# --- training runs ---------------------------------------------------------------------

def _mi_rows(layers: list[dict]) -> list[list]:
    rows = []
    for L in layers:
        ix, iy = L.get("i_x") or {}, L.get("i_y") or {}
        rows.append([L["index"], L.get("width"), L.get("i_x_monte_carlo_nats"),
                     L.get("i_x_monte_carlo_stderr"), L["i_x_nats"], ix.get("stderr"),
                     L["i_y_nats"], iy.get("stderr"), L.get("batch_size"), ix.get("ln_batch"),
                     L.get("noise_var"), " ".join(L.get("flags", []))])
    return rows


def _flag_reasons(layers: list[dict]) -> str:
    """The stored one-line reasons of a layer's flags (``flag_reasons``, with remedies; older
    runs: the estimates' own, :attr:`MIResult.flags`), as a list."""
    items = []
    for L in layers:
        for name, reason in (L.get("flag_reasons") or {}).items():  # the layer's, with remedies
            items.append(f"<li>layer {_fmt(L['index'])}: <b>{_fmt(name)}</b>: {_fmt(reason)}</li>")
        if L.get("flag_reasons"):
            continue  # they hold the estimates' own reasons too
        for what, r in (("I(Y;L)", L.get("i_y")), ("I(X;L+eps)", L.get("i_x"))):
            reasons = (r or {}).get("flags")
            for name, reason in (reasons.items() if isinstance(reasons, dict) else ()):
                items.append(f"<li>layer {_fmt(L['index'])}, {what}: <b>{_fmt(name)}</b>: "
                             f"{_fmt(reason)}</li>")
    return f"<ul>{''.join(items)}</ul>" if items else ""


def training_rows(res: dict) -> tuple[int | None, str]:
    """The rows the final net was trained on, and the sentence ``layerib train`` prints on them.

    With ``val_refit`` every stage is refitted on all training rows, fit and validation
    (``result.json``'s ``refit``: per stage its ``rows``), so that count, not ``n_train``
    (the fit rows of the search), is the net's; without it the net saw ``n_train`` rows and
    ``n_val`` more only as early stopping's validation split.

    Example:
        >>> training_rows({"n_train": 48000, "n_val": 12000,
        ...                "refit": {"layer1": {"rows": 60000}, "readout": {"rows": 60000}}})
        (60000, '60000 training images: stages early-stopped on 12000 of them, then refitted on all')
        >>> training_rows({"n_train": 600})
        (600, '600 training images')
    """
    refit, n_val = res.get("refit") or {}, res.get("n_val") or 0
    if refit:
        rows = max(r["rows"] for r in refit.values())
        return rows, (f"{rows} training images: stages early-stopped on {n_val} of them, "
                      "then refitted on all")
    rows = res.get("n_train")
    held = f", and {n_val} more held out for early stopping" if n_val else ""
    return rows, f"{rows} training images{held}"


def run_section(run_dir: Path, title: str | None = None) -> str:
    """HTML for one training run folder: settings, accuracy, MI table, curves, information plane."""
    from layerib.plotting import plot_information_plane, plot_training_curves

    run = load_run(run_dir)
    res, cfg_file = run["result"] or {}, run["config"] or {}
    cfg = res.get("config") or cfg_file.get("config") or {}
    method = res.get("method", cfg.get("method", "?"))
    parts = [f"<h2>{escape(title or str(run_dir))}</h2>",
             f'<p class="muted">run folder <code>{escape(str(run_dir))}</code></p>']
    if not run["result"]:
        parts.append('<p class="bad">no result.json: the run has not finished (or failed); '
                     "showing what it recorded.</p>")
    else:
        rows, rows_text = training_rows(res)
        n_set = None if res.get("n_train") is None else res["n_train"] + (res.get("n_val") or 0)
        paper = table1_accuracy(res.get("dataset", ""), res.get("train_fraction", -1), method,
                                n_set)  # the paper's setting is the data set's size
        parts.append("<h3>Accuracy</h3>" + _table(
            ["method", "training images", "test accuracy (%)", "train accuracy (%)",
             "paper, Table 1 (%)", "wall time (s)"],
            [[method, rows, 100 * res["test_accuracy"],
              100 * res["train_accuracy"] if res.get("train_accuracy") is not None else None,
              paper, res.get("wall_seconds")]]) + f'<p class="muted">{escape(rows_text)}</p>')
        layers = res.get("layers", [])
        parts.append("<h3>Per-layer mutual information (held-out, nats)</h3>" + _table(
            ["layer", "width", "I(X;L+eps) Monte-Carlo (exact on the test rows)", "± MC error",
             "I(X;L+eps) AA-MINE check", "± s.e.", "I(Y;L)", "± s.e.", "B", "ln B", "noise var",
             "flags"], _mi_rows(layers))
            + _flag_reasons(layers))
    if run["metrics"]:
        fig = plot_training_curves(run["metrics"])
        parts.append("<h3>Training curves</h3>" + _img(figure_data_uri(fig), "training curves"))
        traj = infoplane_trajectories(run["metrics"])
        if traj:
            bs = (res.get("layers") or [{}])[0].get("batch_size")
            fig = plot_information_plane({f"{method}": traj}, noise_var=cfg.get("noise_var"),
                                         batch_size=bs)
            parts.append("<h3>Information plane</h3>" + _img(figure_data_uri(fig),
                                                             "information plane"))
    if cfg:
        parts.append("<details><summary>All settings</summary>" + _kv_table(cfg) + "</details>")
    return "\n".join(parts)


# --- reproduction folders --------------------------------------------------------------

def _fig3_body(res: dict) -> str:
    rows = []
    for p in res["panels"]:
        c = p["clustering"]
        rows.append([p["beta"], p.get("test_i_x_nats"), p.get("i_x_monte_carlo_nats"),
                     p.get("test_i_y_nats"), 100 * p["readout_test_accuracy"],
                     100 * c["distinct_fraction"]["0.01"], 100 * c["distinct_fraction"]["0.05"],
                     100 * c["distinct_fraction"]["0.2"], c["median_nn_distance"],
                     c["knn_entropy_per_dim_nats"], c.get("silhouette_by_class"),
                     c.get("silhouette_by_class_embedding")])
    cmp = res.get("comparison", {})
    verdict = cmp.get("more_quantised_at_large_beta")
    cls = "ok" if verdict else "bad"
    return (f"<p><b>Paper:</b> {escape(res['paper']['claim'])} (no numbers given)</p>"
            f'<p><b>Ours:</b> <span class="{cls}">more quantised at the large beta by all three '
            f"measures: {_fmt(verdict)}</span></p>"
            + _table(["beta", "I(X;L+eps) held-out", "I(X;L+eps) Monte-Carlo", "I(Y;L) held-out",
                      "read-out acc. (%)", "distinct @0.01 (%)", "distinct @0.05 (%)",
                      "distinct @0.2 (%)", "median NN dist.", "k-NN entropy / unit",
                      "silhouette by class", "silhouette (t-SNE)"], rows)
            + _table(["check (large vs small beta)", "holds"], [[k, v] for k, v in cmp.items()])
            + '<p class="muted">MI in nats; distances and entropy on the representation centred '
              "and scaled to RMS radius 1; noise variance "
            + _fmt(res["panels"][0].get("noise_var")) + ".</p>")


def _infoplane_body(res: dict) -> str:
    rows = []
    for m, r in res["runs"].items():
        for layer, s in r["layers"].items():
            rows.append([m, layer, s["start"]["step"], s["start"]["i_x_bits"], s["start"]["i_y_bits"],
                         s["end"]["step"], s["end"]["i_x_bits"], s["end"]["i_y_bits"]])
    acc = [[m, 100 * r["test_accuracy"], r.get("paper_test_accuracy_percent")]
           for m, r in res["runs"].items()]
    return (f"<p><b>Paper:</b> {escape(res['paper']['claim'])}</p>"
            + _table(["method", "test accuracy (%)", "paper, Table 1 (%)"], acc)
            + "<p>Trajectory ends (bits; noise variance " + _fmt(res.get("noise_var")) + ")</p>"
            + _table(["method", "layer", "first step", "I(X;L+eps)", "I(Y;L)", "last step",
                      "I(X;L+eps)", "I(Y;L)"], rows))


def _generic_body(res: dict) -> str:
    parts = []
    paper = res.get("paper")
    if paper is not None:
        parts.append("<h3>The paper</h3><pre>" + escape(json.dumps(paper, indent=1)) + "</pre>")
    scalars = {k: v for k, v in res.items() if not isinstance(v, (dict, list))}
    if scalars:
        parts.append("<h3>Ours</h3>" + _kv_table(scalars))
    parts.append("<details><summary>All stored numbers</summary><pre>"
                 + escape(json.dumps(res, indent=1)[:200_000]) + "</pre></details>")
    return "\n".join(parts)


#: experiment name -> renderer of its stored JSON (others get :func:`_generic_body`).
BODIES = {"fig3": _fig3_body, "infoplane": _infoplane_body}


def reproduction_files(folder: Path) -> list[Path]:
    """The ``<name>.json`` files in ``folder`` that describe a reproduction (have ``"experiment"``)."""
    out = []
    for p in sorted(Path(folder).glob("*.json")):
        if p.name in ("config.json", "result.json"):
            continue
        try:
            data = read_json(p)
        except RunDirError:
            continue
        if isinstance(data, dict) and "experiment" in data:
            out.append(p)
    return out


def reproduction_section(folder: Path) -> str:
    """HTML for a reproduction folder: its figures and numbers, then its run folders."""
    folder = Path(folder)
    parts = []
    for path in reproduction_files(folder):
        res = read_json(path)
        name = str(res["experiment"])
        parts.append(f"<h2>Reproduction: {escape(name)}</h2>"
                     f'<p class="muted">folder <code>{escape(str(folder))}</code>, '
                     f"preset {_fmt(res.get('preset'))}</p>")
        pngs = [folder / res["figure"]] if isinstance(res.get("figure"), str) else []
        pngs += [p for p in sorted(folder.glob(f"{path.stem}*.png")) if p not in pngs]
        for png in pngs:
            if png.exists():
                parts.append(_img(file_data_uri(png), f"{name}: {png.name}"))
        try:
            parts.append(BODIES.get(name, _generic_body)(res))
        except (KeyError, TypeError, IndexError):
            parts.append(_generic_body(res))
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        if (sub / "result.json").exists():
            parts.append(run_section(sub, title=f"{folder.name} / {sub.name}"))
    return "\n".join(parts)


def build_report(dirs: list[Path]) -> str:
    """The whole page for these folders, as one HTML string.

    Raises:
        RunDirError: a folder that is neither a run folder nor a reproduction folder.
    """
    import layerib

    sections = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise RunDirError(f"{d} is not a folder; give run or reproduction folders")
        if reproduction_files(d):
            sections.append(reproduction_section(d))
        elif (d / "result.json").exists() or (d / "config.json").exists():
            sections.append(run_section(d))
        else:
            raise RunDirError(f"{d} is neither a run folder (result.json) nor a reproduction "
                              "folder (<name>.json with an 'experiment' key)")
    stamp = _dt.datetime.now().isoformat(timespec="seconds")
    toc = "".join(f"<li><code>{escape(str(d))}</code></li>" for d in dirs)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<title>layerib report</title>\n<style>" + _CSS + "</style>\n</head>\n<body>\n"
            "<h1>layerib report</h1>\n"
            f'<p class="muted">layerib {escape(layerib.__version__)}, written {stamp}. '
            "Elad et al. 2019, <i>Direct Validation of the Information Bottleneck Principle "
            "for Deep Nets</i>. MI in nats unless the axis says bits.</p>\n"
            f"<ul>{toc}</ul>\n" + "\n".join(sections) + "\n</body>\n</html>\n")


def write_report(dirs: list[Path], out: Path) -> Path:
    """Write :func:`build_report` of ``dirs`` to ``out`` (atomically); returns ``out``."""
    from layerib.runs.folder import atomic_write_text

    html = build_report(dirs)
    out = Path(out)
    if out.parent and not out.parent.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out, html)
    return out
