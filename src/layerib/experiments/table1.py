"""Table 1 of Elad et al. 2019 in one command: 3 data settings x {ce, iy, ib} x seeds.

Cells: MNIST 1 % (600 images), MNIST 100 % (60000) and CIFAR-10 (50000), each
trained with end-to-end cross-entropy (``ce``), layer-wise I(Y; L) only
(``iy``, beta = 0) and layer-wise IB (``ib``), for ``seeds`` seeds; plus, on
CIFAR-10, a stronger CE baseline (``ce_strong``: a deeper conv-net, 32-64-128, with
random crop + flip) that shows how far the paper-like nets are from a better CE model
on the same data. Every cell/seed is an ordinary run folder written by
:func:`layerib.runs.training.run_training`::

    DIR/<setting>/<method>/seed<k>/{config.json, metrics.jsonl, result.json, model.pt}

A folder holding ``result.json`` is a finished run and is not run again
(resume: re-run the same command); ``force`` re-runs everything. Then
``DIR/table1.json`` and ``DIR/table1.md`` give per cell the mean and standard
deviation (ddof 1) of the test accuracy over the finished seeds, the paper's
number, wall time, the data copy read and the exact settings, and per data
setting the paired differences IB - iy and IB - CE (same seed, hence the same
training subset and initial weights for the layer-wise pair) with 95 % Student-t
confidence intervals (:func:`paired_differences`).

``estimators="paper"`` (``layerib reproduce table1 --estimators paper``) trains the
layer-wise cells (``iy``, ``ib``) with the paper's estimators
(:data:`layerib.config.ESTIMATOR_PRESETS`: MINE for I(Y; L), the MLP AA-MINE critic
under DV, alternating updates) into ``DIR/estimators-paper/<setting>/<method>/seed<k>``
and writes a second table, ``DIR/table1-estimators-paper.{json,md}``, beside ours; the
CE cells have no estimators and are shared with ours (``DIR/<setting>/ce``). That table
adds the paired differences paper estimators - ours per layer-wise cell.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from layerib.config import ESTIMATOR_PRESETS, RESULT_NEUTRAL_KEYS, TrainConfig, effective_settings
from layerib.errors import ConfigError
from layerib.experiments.presets import choose, set_fields
from layerib.experiments.paper_numbers import TABLE1

#: The data settings, in the paper's row order: name -> (dataset, train fraction, label).
SETTINGS = {
    "mnist1": ("mnist", 0.01, "MNIST 1%"),
    "mnist100": ("mnist", 1.0, "MNIST 100%"),
    "cifar10": ("cifar10", 1.0, "CIFAR-10"),
}
METHODS = ("ce", "iy", "ib")
#: extra cells beside the paper's: (setting, method name in the table, config method)
EXTRA = {("cifar10", "ce_strong"): "ce"}
METHOD_LABELS = {"ce": "Cross-entropy", "iy": "I(Y;L) only (beta=0)",
                 "ib": "IB: I(Y;L) - beta I(X;L+eps)",
                 "ce_strong": "Stronger CE baseline (not in the paper)"}


@dataclass(frozen=True)
class Table1Preset:
    """Settings of one Table 1 reproduction: a config per (setting, method) cell."""

    cells: dict  # (setting, method) -> TrainConfig (seed replaced per run)
    seeds: int = 3
    note: str = ""


# Every cell is pinned to no early stopping (val_fraction 0), as measured (docs/results/table1.md, early_stopping.md).
# The final MI report of each run: one critic restart, no shuffled baseline (the table is of
# accuracies; the report does not change them, and at 3 restarts it costs more than training
# an MNIST 1 % cell).
_NO_ES = dict(val_fraction=0.0, mi_restarts=1, mi_baseline=False)


def _mnist(fraction: float, per_method: dict | None = None, **kw) -> dict:
    base = TrainConfig(dataset="mnist", train_fraction=fraction, **_NO_ES, **kw)
    per_method = per_method or {}
    return {m: dataclasses.replace(base, method=m, **per_method.get(m, {})) for m in METHODS}


def _cifar(ce_strong: TrainConfig | None, **kw) -> dict:
    base = TrainConfig(dataset="cifar10", arch="conv", **_NO_ES, **kw)
    cells = {m: dataclasses.replace(base, method=m) for m in METHODS}
    if ce_strong is not None:
        cells["ce_strong"] = ce_strong
    return cells


def _preset(mnist1: dict, mnist100: dict, cifar10: dict, **kw) -> Table1Preset:
    cells = {}
    for setting, by_method in (("mnist1", mnist1), ("mnist100", mnist100), ("cifar10", cifar10)):
        for method, cfg in by_method.items():
            cells[(setting, method)] = cfg
    return Table1Preset(cells, **kw)


# Quick: every cell for a few steps on small subsets, a smoke test of the pipeline (not a
# result). On the real data it takes about 3 CPU-minutes; on the tests' tiny data seconds.
_QUICK = dict(batch_size=64, epochs_per_layer=1, min_steps_per_layer=10, ce_epochs=1,
              readout_epochs=1, critic_hidden=16, mi_eval_batch_size=64, evals_per_layer=1,
              infoplane_evals=0, mi_max_steps=200)  # (one restart, no baseline: _NO_ES)
_QUICK_CONV = dict(channels=(4, 8), widths=(32, 10))

# The paper's settings: MNIST on the 512-512-10 MLP (the library defaults); CIFAR-10 on the
# conv-net of layerib.models.conv (blocks 32, 64; FC 256, 10), 3 epochs per layer.
_CIFAR_PAPER = dict(channels=(32, 64), widths=(256, 10), batch_size=128, epochs_per_layer=3,
                    min_steps_per_layer=0, ce_epochs=6, readout_epochs=3, infoplane_evals=0,
                    evals_per_layer=3)
# MNIST 1 % (600 images, 2 steps per epoch): the IB stages stop after 100 steps per layer
# instead of the default 600, which over-fits I(Y;L). Chosen on a validation set (the 59400
# MNIST training images outside each seed's subset; never the test set): mean validation
# accuracy over seeds 0-2, joint update, 100 steps 87.9 %, 150: 87.4 %, 300: 86.6 %,
# 600: 85.1 % (alternating: 50: 79.4 %, 100: 87.6 %, 150: 87.5 %, 200: 86.9 %, 300: 86.1 %).
# The baselines keep the defaults: CE is flat (87.5 % at 150 steps, 87.7 % at 600) and
# I(Y;L) only is best at 600 (88.9 %). docs/results/table1.md has the rest.
# The library's default early stopping with refit (val_fraction 0.2, accuracy) was measured in
# its place: 86.33 / 89.60 / 88.18 % (mean 88.04) against 86.63 / 89.17 / 88.85 % (88.22) here
# (seeds 0-2, the main of 2026-12-01).
_MNIST1_IB = dict(min_steps_per_layer=100)
# The stronger CE baseline: a third conv block and random crop + flip, twice the epochs.
# (64, 128, 256) channels would cost 8 min per epoch on one CPU thread, 3x this one.
_CIFAR_STRONG = TrainConfig(dataset="cifar10", arch="conv", method="ce", channels=(32, 64, 128),
                            widths=(256, 10), batch_size=128, ce_epochs=12,
                            min_steps_per_layer=0, augment="crop_flip", infoplane_evals=0,
                            **_NO_ES)

PRESETS = {
    "quick": _preset(
        _mnist(0.01, **_QUICK), _mnist(0.05, **_QUICK),
        _cifar(TrainConfig(dataset="cifar10", arch="conv", method="ce", augment="crop_flip", **_NO_ES,
                           train_fraction=0.02, channels=(8, 16), widths=(32, 10), **_QUICK),
               train_fraction=0.02, **_QUICK, **_QUICK_CONV),
        seeds=1, note="smoke test: MNIST 100% and CIFAR-10 cells use 5% / 2% subsets, "
                      "a few dozen steps; not a result"),
    "paper": _preset(
        _mnist(0.01, per_method={"ib": _MNIST1_IB}, infoplane_evals=0),
        _mnist(1.0, infoplane_evals=0),
        _cifar(_CIFAR_STRONG, **_CIFAR_PAPER), seeds=3),
}


#: the layer-wise methods: the ones ``estimators`` changes (CE trains no critic)
LAYERWISE = ("iy", "ib")


def resolve_preset(preset: str, seeds: int | None = None, estimators: str | None = None,
                   **overrides) -> Table1Preset:
    """The named preset with ``TrainConfig`` fields in ``overrides`` replaced (None: keep).

    ``estimators`` (a key of :data:`layerib.config.ESTIMATOR_PRESETS`, or None: the
    preset's own) replaces the estimator settings of the layer-wise cells.

    Raises:
        ConfigError: an unknown preset or estimators name, or ``seeds < 1``.
    """
    if preset == "default":
        preset = "paper"
    p = choose(PRESETS, preset, "table1")
    if seeds is not None and (not isinstance(seeds, int) or seeds < 1):
        raise ConfigError(f"--seeds must be an integer >= 1, got {seeds!r}")
    cells = {k: set_fields(c, overrides) for k, c in p.cells.items()}
    if estimators is not None:
        bundle = choose(ESTIMATOR_PRESETS, estimators, "estimators")
        cells = {k: dataclasses.replace(c, **bundle) if k[1] in LAYERWISE else c
                 for k, c in cells.items()}
    return dataclasses.replace(p, cells=cells, seeds=seeds or p.seeds)


def run_dir(out: Path, setting: str, method: str, seed: int, estimators: str | None = None) -> Path:
    """The run folder of one cell and seed (``estimators``: that bundle's layer-wise runs)."""
    if estimators is not None and method in LAYERWISE:
        return Path(out) / f"estimators-{estimators}" / setting / method / f"seed{seed}"
    return Path(out) / setting / method / f"seed{seed}"


def table_name(estimators: str | None = None) -> str:
    """``table1`` (the preset's estimators) or ``table1-estimators-<name>``."""
    return "table1" if estimators is None else f"table1-estimators-{estimators}"


def run(out: str | Path, *, preset: str = "paper", data_root: str | None = None,
        download: bool | None = None, device: str | None = None, seed: int | None = None,
        seeds: int | None = None, force: bool = False, progress: bool = False,
        argv: list[str] | None = None, cells: list[str] | None = None,
        estimators: str | None = None) -> dict:
    """Run (or resume) every cell and seed into ``out``; write ``table1.json`` and ``.md``.

    Args:
        out: the reproduction folder.
        preset: ``"paper"`` (alias ``"default"``) or ``"quick"``.
        seed: first seed (default 0); seeds ``seed .. seed + seeds - 1`` are run.
        seeds: number of seeds (default: the preset's, 3 for ``paper``).
        force: re-run finished cells too.
        cells: run only these cells, named ``"<setting>/<method>"`` (e.g. ``"cifar10/ib"``);
            the table still lists every cell (unrun ones as not run).
        estimators: None (the preset's estimators: ``table1.{json,md}``) or a key of
            :data:`layerib.config.ESTIMATOR_PRESETS` (e.g. ``"paper"``): the layer-wise
            cells with those estimators, a second table ``table1-estimators-<name>``
            (module doc).

    Returns:
        What ``table1.json`` holds (``summary`` lines included).

    Raises:
        LayerIBError: unknown preset, bad data, an unusable run folder, a non-finite loss.
    """
    from layerib.runs.folder import atomic_write_json, atomic_write_text, versions
    from layerib.runs.training import run_training

    t0 = time.perf_counter()
    p = resolve_preset(preset, seeds, estimators, data_root=data_root, download=download,
                       device=device)
    first = 0 if seed is None else seed
    out = Path(out)
    names = {f"{s}/{m}" for s, m in p.cells}
    unknown = sorted(set(cells or ()) - names)
    if unknown:
        raise ConfigError(f"unknown table1 cell(s) {', '.join(unknown)}; choose from "
                          f"{', '.join(sorted(names))}")
    for (setting, method), cfg in p.cells.items():
        if cells is not None and f"{setting}/{method}" not in cells:
            continue
        for k in range(first, first + p.seeds):
            d = run_dir(out, setting, method, k, estimators)
            if (d / "result.json").exists() and not force:
                continue
            if progress:
                print(f"table1: {setting} {method} seed {k} -> {d}", file=sys.stderr, flush=True)
            run_training(dataclasses.replace(cfg, seed=k), d, force=force, progress=progress,
                         argv=argv)
    seed_range = range(first, first + p.seeds)
    table = collect(out, p, seed_range, estimators)
    if estimators is not None:  # beside ours: the same cells with the preset's own estimators
        ours = collect(out, resolve_preset(preset, seeds), seed_range)
        table["versus_ours"] = paired_differences(table["cells"], ours["cells"],
                                                  pairs=tuple((m, m) for m in LAYERWISE),
                                                  name="{a}: this - ours")
    table.update({"experiment": "table1", "preset": preset, "estimators": estimators,
                  "note": p.note, "argv": argv or sys.argv, "versions": versions(),
                  "wall_seconds_this_call": time.perf_counter() - t0})
    name = table_name(estimators)
    atomic_write_json(out / f"{name}.json", table)
    atomic_write_text(out / f"{name}.md", render_markdown(table))
    return table


def _read(path: Path) -> dict:
    import json
    return json.loads(path.read_text())


def _settings_of(cfg: dict) -> dict:
    """A run's settings without what differs between its seeds or machines."""
    return {k: v for k, v in cfg.items() if k not in ("seed", "data_root", "device", "download")}


#: fields that cannot change a method's test accuracy, left out when a finished run is
#: compared with the preset (CE reads some critic settings, but only for its MI report)
_UNUSED = {
    "ce": {"beta", "epochs_per_layer", "critic_steps", "critic_update", "x_marginal", "y_bound",
           "x_bound", "y_critic", "x_critic", "lr_critic", "ema_rate", "evals_per_layer",
           "critic_hidden", "mi_restarts", "mi_baseline", "mi_max_rows", "mi_max_steps", "mi_eval_batch_size", "infoplane_evals",
           "infoplane_critic_steps"},
    "ib": {"ce_epochs", "augment", "infoplane_evals", "infoplane_critic_steps", "mi_restarts", "mi_baseline", "mi_max_rows", "mi_max_steps",
           "mi_eval_batch_size"},
    "iy": {"ce_epochs", "augment", "infoplane_evals", "infoplane_critic_steps", "mi_restarts", "mi_baseline", "mi_max_rows", "mi_max_steps",
           "mi_eval_batch_size", "beta"},
}


def _matches_preset(run_cfg: dict, cfg: TrainConfig, beta_auto: bool = True) -> bool:
    """Whether a finished run used the preset's settings for ``cfg``'s cell.

    Both sides are compared as the settings they run with
    (:func:`layerib.config.effective_settings`: a key an older run lacks means what it
    meant then, ``critic_update="auto"`` is resolved); fields that cannot change the
    cell's test accuracy are ignored. Where the preset's beta is automatic, the run's
    beta must have been automatic too (``beta_auto`` of its ``result.json``).
    """
    if cfg.beta is None and cfg.method == "ib" and not beta_auto:
        return False
    want = dataclasses.replace(cfg, beta=run_cfg.get("beta", cfg.beta) if cfg.beta is None
                               else cfg.beta).to_dict()
    have, want = effective_settings(run_cfg), effective_settings(want)
    skip = _UNUSED[cfg.method] | set(RESULT_NEUTRAL_KEYS)
    return all(have[k] == v for k, v in _settings_of(want).items() if k not in skip)


def collect(out: Path, p: Table1Preset, seeds, estimators: str | None = None) -> dict:
    """Gather finished runs into per-cell statistics (accuracies in percent) and the
    paired differences of :func:`paired_differences`."""
    cells = []
    for (setting, method), cfg in p.cells.items():
        dataset, fraction, label = SETTINGS[setting]
        dirs = [run_dir(out, setting, method, k, estimators) for k in seeds]
        runs = [_read(d / "result.json") for d in dirs if (d / "result.json").exists()]
        acc = [100 * r["test_accuracy"] for r in runs]
        n_train = runs[0]["n_train"] if runs else None
        paper = TABLE1.get((dataset, fraction), {}).get(method)
        full = n_train is not None and n_train == {"mnist1": 600, "mnist100": 60000,
                                                   "cifar10": 50000}[setting]
        cells.append({
            "setting": setting, "label": label, "method": method,
            "method_label": METHOD_LABELS[method], "seeds": [r["seed"] for r in runs],
            "accuracy_percent": acc,
            "mean_percent": statistics.fmean(acc) if acc else None,
            "std_percent": statistics.stdev(acc) if len(acc) > 1 else None,  # None: one seed
            "paper_percent": paper if full else None,
            "paper_percent_if_full_data": paper,
            "n_train": n_train,
            "wall_seconds": [r["wall_seconds"] for r in runs],
            "mean_wall_seconds": statistics.fmean([r["wall_seconds"] for r in runs]) if runs else None,
            "data_source": sorted({r.get("data_source", "?") for r in runs}),
            "beta": runs[0]["beta"] if runs and cfg.method != "ce" else None,  # CE has none
            "config": _settings_of(runs[0]["config"] if runs else cfg.to_dict()),
            "config_matches_preset": all(_matches_preset(r["config"], cfg, r.get("beta_auto", True))
                                         for r in runs),
        })
    done = sum(len(c["accuracy_percent"]) for c in cells)
    summary = [f"{table_name(estimators)}: {done} of {len(cells) * len(list(seeds))} "
               "cell/seed runs finished"]
    for c in cells:
        if c["mean_percent"] is None:
            summary.append(f"  {c['label']:<11} {c['method']:<9} not run")
            continue
        paper = "" if c["paper_percent"] is None else f"  (paper {c['paper_percent']:.2f})"
        summary.append(f"  {c['label']:<11} {c['method']:<9} {c['mean_percent']:6.2f} "
                       f"+- {_fmt(c['std_percent'])} over {len(c['seeds'])} seed(s){paper}")
    paired = paired_differences(cells, cells)
    for d in paired:
        if d["mean_percent"] is not None:
            summary.append(f"  {d['label']:<11} {d['contrast']:<9} {d['mean_percent']:+6.2f} "
                           f"[{_fmt(d['low_percent'])}, {_fmt(d['high_percent'])}] "
                           f"(95 %, {d['n']} paired seeds): {d['verdict']}")
    return {"cells": cells, "paired": paired, "summary": summary}


#: the contrasts of the paper's claim: (method, reference), each paired by seed
CONTRASTS = (("ib", "iy"), ("ib", "ce"))


def paired_differences(cells: list[dict], reference: list[dict], *,
                       pairs: tuple[tuple[str, str], ...] = CONTRASTS,
                       name: str = "{a} - {b}", level: float = 0.95,
                       labels: dict[str, str] | None = None) -> list[dict]:
    """Paired test-accuracy differences, in points, with Student-t confidence intervals.

    For each data setting and each pair ``(a, b)`` of methods, the seeds run in both
    cells (a from ``cells``, b from ``reference``) are paired (the same seed draws the
    same training subset; the layer-wise methods also start from the same initial
    weights) and the differences d_k = acc_a(k) - acc_b(k) summarised: mean, ``level``
    interval mean +- t_{n-1} s / sqrt(n) (s the sample std of d, ddof 1), and a verdict
    (significant when the interval excludes 0). Differences equal at every seed have no
    spread to build an interval from: the row says so, and ``significant`` is None.

    Args:
        cells, reference: ``collect``'s cell lists (the same list for contrasts within one
            table; ours as ``reference`` for "paper estimators - ours").
        pairs: ``(method in cells, method in reference)``; default :data:`CONTRASTS`
            (IB - iy and IB - CE).
        name: the row's ``contrast`` label, formatted with ``a`` and ``b``.
        labels: data setting -> its label, in row order (None: :data:`SETTINGS`'s).

    Returns:
        One dict per (setting, pair): ``setting, label, contrast, seeds, n,
        differences_percent, mean_percent, low_percent, high_percent, significant,
        verdict``; low/high (and mean below 2 seeds) are None without an interval.
    """
    from scipy.stats import t as student_t
    by_a = {(c["setting"], c["method"]): c for c in cells}
    by_b = {(c["setting"], c["method"]): c for c in reference}
    out = []
    labels = labels if labels is not None else {s: lab for s, (_, _, lab) in SETTINGS.items()}
    for setting, label in labels.items():
        for a_m, b_m in pairs:
            a, b = by_a.get((setting, a_m)), by_b.get((setting, b_m))
            if a is None or b is None:
                continue
            acc_b = dict(zip(b["seeds"], b["accuracy_percent"]))
            seeds = [k for k in a["seeds"] if k in acc_b]
            diffs = [acc - acc_b[k] for k, acc in zip(a["seeds"], a["accuracy_percent"])
                     if k in acc_b]
            row = {"setting": setting, "label": label, "contrast": name.format(a=a_m, b=b_m),
                   "seeds": seeds, "n": len(diffs), "differences_percent": diffs,
                   "mean_percent": None, "low_percent": None, "high_percent": None,
                   "significant": None, "verdict": "fewer than 2 paired seeds", "level": level}
            if len(diffs) >= 2:
                mean, sd = statistics.fmean(diffs), statistics.stdev(diffs)
                row["mean_percent"] = mean
                if sd == 0:
                    row["verdict"] = (f"the same difference ({mean:+.2f}) at every seed: no "
                                      "spread for an interval; run more seeds")
                    out.append(row)
                    continue
                half = float(student_t.ppf(0.5 + level / 2, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
                sig = bool(mean - half > 0 or mean + half < 0)
                row.update(low_percent=mean - half, high_percent=mean + half, significant=sig,
                           verdict=(f"{a_m} {'ahead' if mean > 0 else 'behind'}, significant"
                                    if sig else "not significant (the interval holds 0)"))
            out.append(row)
    return out


def _fmt(v: float | None, digits: int = 2) -> str:
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{digits}f}"


def _runs(c: dict) -> str:
    return ", ".join(f"{k}: {a:.2f}" for k, a in zip(c["seeds"], c["accuracy_percent"])) or "-"


def paired_markdown(rows: list[dict], title: str) -> list[str]:
    """Markdown lines (a ``## title`` section and a table) of :func:`paired_differences` rows."""
    lines = ["", f"## {title}", "",
             "| data | contrast | paired seeds | mean difference, points | 95 % CI | verdict |",
             "|---|---|---|---|---|---|"]
    for d in rows:
        lines.append(f"| {d['label']} | {d['contrast']} | {d['n']} | {_fmt(d['mean_percent'])} | "
                     f"[{_fmt(d['low_percent'])}, {_fmt(d['high_percent'])}] | {d['verdict']} |")
    return lines


def render_markdown(table: dict) -> str:
    """``table1.md``: the table (ours beside the paper's), the paired differences, then
    each cell's settings."""
    est = table.get("estimators")
    title = "# Table 1 (Elad et al. 2019): test accuracy, %"
    if est is not None:
        title += f", layer-wise cells with the `{est}` estimators"
    lines = [title, "",
             f"preset `{table['preset']}`. {table.get('note', '')}".rstrip(), "",
             "| data | method | ours: mean | std | seeds: accuracy | paper | wall s / seed | data copy |",
             "|---|---|---|---|---|---|---|---|"]
    for c in table["cells"]:
        lines.append(f"| {c['label']} | {c['method_label']} | {_fmt(c['mean_percent'])} | "
                     f"{_fmt(c['std_percent'])} | {_runs(c)} | {_fmt(c['paper_percent'])} | "
                     f"{_fmt(c['mean_wall_seconds'], 0)} | {', '.join(c['data_source']) or '-'} |")
    odd = [f"{c['label']} / {c['method']}" for c in table["cells"] if not c["config_matches_preset"]]
    if odd:
        lines += ["", f"**Settings differ from the preset's** (runs kept from an earlier "
                      f"version): {', '.join(odd)}; each run's own settings are listed below."]
    lines += ["", "Paper column: shown only when the run used the paper's training-set size.",
              "Std: sample standard deviation over seeds (- for one seed)."]
    if table.get("paired"):
        lines += paired_markdown(table["paired"], "The claim, paired by seed: IB - iy and IB - CE")
        lines += ["", "Differences in test-accuracy points, each seed's two runs paired (same "
                      "training subset); 95 % Student-t interval over the paired seeds; "
                      "significant when it excludes 0."]
    if table.get("versus_ours"):
        lines += paired_markdown(table["versus_ours"], f"`{est}` estimators - ours (the preset's "
                                                  "estimators), paired by seed")
    lines += ["", "## Settings per cell", ""]
    for c in table["cells"]:
        cfg = ", ".join(f"{k}={v}" for k, v in c["config"].items())
        lines.append(f"- **{c['label']} / {c['method']}** (beta used: {_fmt(c['beta'], 4)}): {cfg}")
    return "\n".join(lines) + "\n"
