"""Does the bottleneck help? The paper's claim tested fairly, one data setting at a time.

Elad et al. 2019 claim that training each layer with the IB objective (Eq. 2,
``I(Y; L) - beta I(X; L + eps)``) generalises better than training it for I(Y; L) alone
(``iy``) or end to end with cross-entropy (``ce``). A fair test gives every method the
same tuning budget over its own regularisers and chooses on data outside the test set:

1. **Tuning.** Each method trains each setting of its grid (:attr:`ClaimSetting.grids`:
   ib over beta x noise variance, iy and ce over learning rate x weight decay; the same
   number of settings for all) at the tuning seeds, on ``tune_fraction`` of the training
   set, and is scored by its accuracy on the training images outside that subset
   (:func:`layerib.analysis.validation.outside_subset_accuracy`) -- never on the test
   set. For a subset setting (MNIST 1 %) the tuning subset is the setting's own, so the
   validation images are the 59 400 it never uses; for a whole-set setting (MNIST 100 %,
   digits) the tuning runs train on a held-out slice's complement (e.g. 50 000 of
   MNIST's 60 000) and validate on the slice. :func:`select` sees only these scores.
2. **Test.** Each method's best setting (highest mean validation accuracy, the first of
   equals) is trained at every test seed on the setting's training set; tuning runs
   already at those settings (subset settings) are reused.
3. **Paired differences** IB - iy and IB - CE of the test accuracies seed by seed, with
   95 % Student-t intervals (:func:`layerib.experiments.table1.paired_differences`).

The runs are sweeps (:func:`layerib.sweep.run_sweep`, one ``layerib train`` process per
point) in ``DIR/tune/<method>/<point>`` and ``DIR/test/<method>/<point>``: a finished
point is never run again, so a stopped study resumes where it stopped and can run in
parts. ``DIR/claim.json`` and ``DIR/claim.md`` are written (atomically) at the end.
"""

from __future__ import annotations

import itertools
import shutil
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from layerib.analysis.runs import read_json
from layerib.analysis.validation import outside_subset_accuracy
from layerib.data.download import file_digest
from layerib.errors import ConfigError, LayerIBError
from layerib.experiments.table1 import _CIFAR_PAPER, paired_differences, paired_markdown
from layerib.runs.folder import atomic_write_json, atomic_write_text
from layerib.sweep import run_sweep
from layerib.sweep.spec import SweepSpec, expand

METHODS = ("ib", "iy", "ce")


@dataclass(frozen=True)
class ClaimSetting:
    """One data setting of the claim study: data, net, schedule, tuning grids and seeds.

    Example:
        >>> s = SETTINGS["digits"]
        >>> s.budget, s.train_fraction, s.tuning_fraction
        (12, 1.0, 0.75)
    """

    label: str             # the row label in the tables, e.g. "MNIST 1%"
    base: dict             # TrainConfig keys of every run (dataset, train_fraction, net, schedule)
    grids: dict            # method -> tuple of {TrainConfig key: value}, the settings tried
    tune_fraction: float | None = None  # tuning runs' share of the training set (the rest validates); None: the setting's train_fraction (< 1)
    tune_seeds: tuple[int, ...] = (0, 1, 2)        # seeds of every tuning setting
    test_seeds: tuple[int, ...] = (0, 1, 2, 3, 4)  # seeds of each method's chosen setting

    @property
    def train_fraction(self) -> float:
        """The test runs' share of the training set."""
        return self.base.get("train_fraction", 1.0)

    @property
    def tuning_fraction(self) -> float:
        """The tuning runs' share of the training set (< 1: the rest is the validation set)."""
        return self.train_fraction if self.tune_fraction is None else self.tune_fraction

    @property
    def budget(self) -> int:
        """Tuning runs per method: settings x tuning seeds (the same for every method)."""
        return len(self.grids["ib"]) * len(self.tune_seeds)

    def check(self, name: str) -> None:
        """Raise ConfigError unless the study is fair and has data to validate on."""
        sizes = {m: len(self.grids.get(m, ())) for m in METHODS}
        if len(set(sizes.values())) != 1 or not sizes["ib"]:
            raise ConfigError(f"claim setting {name}: every method needs the same, non-zero "
                              f"number of settings (the same budget), got {sizes}")
        if not 0 < self.tuning_fraction < 1:
            raise ConfigError(f"claim setting {name}: the tuning runs use the whole training set "
                              "(nothing left to validate on); set tune_fraction < 1")
        if len(self.test_seeds) < 2:
            raise ConfigError(f"claim setting {name}: an interval needs >= 2 test seeds")


def _grid(keys: tuple[str, str], a: tuple, b: tuple) -> tuple[dict, ...]:
    return tuple({keys[0]: x, keys[1]: y} for x, y in itertools.product(a, b))


# Every method: six settings. ib over its trade-off and noise; iy and ce over their own
# regularisers (steps by the default early stopping with refit, as for ib).
_IB = _grid(("beta", "noise_var"), (1e-3, 1e-2, 1e-1), (10.0, 100.0))
_LR_WD = _grid(("lr_layer", "weight_decay"), (3e-4, 1e-3, 3e-3), (0.0, 1e-4))
_GRIDS = {"ib": _IB, "iy": _LR_WD, "ce": _LR_WD}
# The final MI report: one critic restart, no shuffled baseline (it does not change accuracy).
_REPORT = dict(mi_restarts=1, mi_baseline=False, infoplane_evals=0)


def _mnist(fraction: float, label: str, **kw) -> ClaimSetting:
    return ClaimSetting(label, dict(dataset="mnist", train_fraction=fraction, **_REPORT), _GRIDS, **kw)


# digits: 1348 training images; four settings per method (2 x 2), 10 epochs per layer.
# A run takes about 20 s on one busy CPU thread (Intel Xeon, 2 cores shared).
_DIGITS = dict(dataset="digits", arch="conv", channels=(16, 32), widths=(64, 10), batch_size=64,
               epochs_per_layer=10, min_steps_per_layer=0, readout_epochs=10, ce_epochs=30,
               evals_per_layer=2, mi_max_steps=500, **_REPORT)
_DIGITS_GRIDS = {"ib": _grid(("beta", "noise_var"), (1e-3, 1e-1), (10.0, 100.0)),
                 "iy": _grid(("lr_layer", "weight_decay"), (1e-3, 3e-3), (0.0, 1e-4))}
_DIGITS_GRIDS["ce"] = _DIGITS_GRIDS["iy"]
# tiny: a smoke test of the pipeline on any MNIST-format data (the tests' fake MNIST).
_TINY = dict(dataset="mnist", train_fraction=0.5, widths=(16, 10), batch_size=32,
             epochs_per_layer=1, min_steps_per_layer=20, ce_epochs=1, readout_epochs=1,
             critic_hidden=16, mi_max_steps=100, evals_per_layer=1, **_REPORT)
_TINY_GRIDS = {"ib": ({"beta": 1e-3}, {"beta": 1e2}),
               "iy": ({"lr_layer": 1e-3}, {"lr_layer": 1e-2}),
               "ce": ({"lr_layer": 1e-3}, {"lr_layer": 1e-2})}

#: name -> the setting (``layerib reproduce claim --setting NAME``).
SETTINGS: dict[str, ClaimSetting] = {
    "mnist1": _mnist(0.01, "MNIST 1%"),      # 600 images; validation: the other 59 400
    "mnist5": _mnist(0.05, "MNIST 5%"),      # 3000; validation: the other 57 000
    "mnist10": _mnist(0.10, "MNIST 10%"),    # 6000; validation: the other 54 000
    "mnist100": _mnist(1.0, "MNIST 100%", tune_fraction=5 / 6),  # tuning on 50 000, validation 10 000
    "digits": ClaimSetting("digits (8x8)", dict(_DIGITS, train_fraction=1.0), _DIGITS_GRIDS,
                           tune_fraction=0.75),  # tuning on 1011 of 1348, validation 337
    "cifar10-10": ClaimSetting("CIFAR-10 10%", dict(dataset="cifar10", arch="conv", train_fraction=0.1,
                                                    **dict(_CIFAR_PAPER, **_REPORT)), _GRIDS),
    "tiny": ClaimSetting("tiny", _TINY, _TINY_GRIDS, tune_seeds=(0, 1), test_seeds=(0, 1, 2)),
}


def tag(setting: dict) -> str:
    """A grid setting as a short label.

    Example:
        >>> tag({"beta": 1e-3, "noise_var": 100.0})
        'beta0.001_noise_var100'
    """
    return "_".join(f"{k}{v:g}" for k, v in setting.items())


def tuning_spec(s: ClaimSetting, method: str, base: dict) -> SweepSpec:
    """The tuning sweep of one method: every setting of its grid at every tuning seed.

    ``base`` adds run-wide keys (``data_root``, ``download``, ``device``).

    Example:
        >>> len(expand(tuning_spec(SETTINGS["mnist1"], "ib", {})))
        18
    """
    return SweepSpec(base={**s.base, **base, "method": method, "train_fraction": s.tuning_fraction},
                     grids=tuple({**{k: [v] for k, v in g.items()}, "seed": list(s.tune_seeds)}
                                 for g in s.grids[method]))


def seeds_to_test(s: ClaimSetting) -> tuple[int, ...]:
    """Test seeds not already run by the tuning (a subset setting's tuning runs are its
    test runs at the tuning seeds; a whole-set setting's tuning runs train on less).

    Example:
        >>> seeds_to_test(SETTINGS["mnist1"]), seeds_to_test(SETTINGS["mnist100"])
        ((3, 4), (0, 1, 2, 3, 4))
    """
    reused = s.tune_seeds if s.tune_fraction is None else ()
    return tuple(k for k in s.test_seeds if k not in reused)


def testing_spec(s: ClaimSetting, method: str, chosen: dict, base: dict) -> SweepSpec:
    """The test sweep of one method: its chosen setting at the test seeds not yet run."""
    return SweepSpec(base={**s.base, **base, "method": method, **chosen},
                     grids=({"seed": list(seeds_to_test(s))},))


def select(validation: dict[str, list[float]]) -> str:
    """The setting with the highest mean validation accuracy (the first of equals).

    Args:
        validation: setting tag -> validation accuracies over the tuning seeds. Only
            these scores reach the choice; no test number does.

    Example:
        >>> select({"a": [0.8, 0.9], "b": [0.9, 0.9], "c": [0.9, 0.9]})
        'b'
    """
    return max(validation, key=lambda t: statistics.fmean(validation[t]))


def _sweep(spec: SweepSpec, out: Path, workers: int, progress: bool) -> dict[int | str, Path]:
    done = run_sweep(spec, out, workers=workers, threads=1, progress=progress)
    if done.failed:
        name, err = next(iter(done.failed.items()))
        raise LayerIBError(f"claim: {len(done.failed)} run(s) failed, e.g. {out / name}: {err} "
                           "(see its train.log); re-run to retry them")
    return {p.name: out / p.name for p in expand(spec)}


def _by_setting(spec: SweepSpec, out: Path) -> dict[tuple[str, int], Path]:
    """``(tag of the grid setting, seed) -> point folder`` of a tuning sweep."""
    return {(tag({k: v for k, v in p.overrides.items() if k != "seed"}), p.overrides["seed"]):
            out / p.name for p in expand(spec)}


def run(out: str | Path, *, setting: str, preset: str = "default", data_root: str | None = None,
        download: bool | None = None, device: str | None = None, seed: int | None = None,
        force: bool = False, progress: bool = False, argv: list[str] | None = None,
        workers: int = 1) -> dict:
    """Run (or resume) the claim study of one setting into ``out``; write ``claim.json/.md``.

    Args:
        out: the study's folder (created; may hold a stopped run of the same study).
        setting: a key of :data:`SETTINGS`.
        preset: only ``"default"`` (the setting is the bundle).
        data_root, download, device: passed to every run (None: the defaults).
        seed: must be None (the setting fixes its tuning and test seeds).
        force: delete the study's runs first and train everything again.
        progress: progress bars over each sweep's points.
        argv: the command line, recorded in ``claim.json``.
        workers: runs side by side (each one thread).

    Returns:
        What ``claim.json`` holds: ``experiment, setting, label, budget, grids, base,
        tune_fraction, tune_seeds, test_seeds, validation`` (``"method/tag"`` -> accuracy
        fractions per tuning seed), ``chosen`` (method -> setting), ``cells`` (per method
        the test accuracies in %), ``paired`` (IB - iy and IB - CE), ``summary`` (one line
        per contrast), ``run_seconds`` (the runs' training time, summed), ``wall_seconds``
        (this call), ``argv`` (``argv[0]`` the program).

    Raises:
        ConfigError: an unknown setting or preset, a seed given, or an unfair setting.
        LayerIBError: failed runs (the rest is kept; re-run to retry them).

    Example:
        >>> sorted(SETTINGS)[:3]
        ['cifar10-10', 'digits', 'mnist1']
    """
    t0 = time.perf_counter()
    if setting not in SETTINGS:
        raise ConfigError(f"unknown claim setting {setting!r}; choose one of {', '.join(SETTINGS)}")
    if preset != "default":
        raise ConfigError(f"claim has no preset {preset!r}; pick the data with --setting "
                          "(tiny is the smoke test)")
    if seed is not None:
        raise ConfigError("claim fixes its own tuning and test seeds; drop --seed")
    s = SETTINGS[setting]
    s.check(setting)
    out = Path(out)
    base = {k: v for k, v in dict(data_root=data_root, download=download, device=device).items()
            if v is not None}
    if force:
        for phase in ("tune", "test"):
            shutil.rmtree(out / phase, ignore_errors=True)
    validation, chosen, tuned = {}, {}, {}
    for m in METHODS:
        tuned[m], scores = _tune(s, m, base, out, workers, progress)
        validation.update({f"{m}/{t}": v for t, v in scores.items()})
        best = select(scores)
        chosen[m] = next(g for g in s.grids[m] if tag(g) == best)
    cells = [_test_cell(s, setting, m, chosen[m], base, tuned[m], out, workers, progress)
             for m in METHODS]
    runs = {f for m in METHODS for f in tuned[m].values()} | {out / r for c in cells for r in c["runs"]}
    table = {"experiment": "claim", "setting": setting, "label": s.label, "budget": s.budget,
             "grids": {m: list(g) for m, g in s.grids.items()}, "base": dict(s.base),
             "tune_fraction": s.tuning_fraction, "tune_seeds": list(s.tune_seeds),
             "test_seeds": list(s.test_seeds), "validation": validation, "chosen": chosen,
             "cells": cells,
             "paired": paired_differences(cells, cells, labels={setting: s.label}),
             "run_seconds": sum(_result(f)["wall_seconds"] for f in runs),
             "wall_seconds": time.perf_counter() - t0, "argv": list(argv or [])}
    table["summary"] = [f"{d['label']} {d['contrast']}: {_num(d['mean_percent'])} points "
                        f"[{_num(d['low_percent'])}, {_num(d['high_percent'])}], {d['verdict']}"
                        for d in table["paired"]]
    atomic_write_json(out / "claim.json", table)
    atomic_write_text(out / "claim.md", render_markdown(table))
    return table


#: a tuning run's validation score, kept in its folder beside ``result.json``
SCORE_FILE = "validation.json"


def validation_score(folder: Path, data_root: str | None = None) -> float:
    """Validation accuracy (a fraction) of the finished tuning run in ``folder``: its
    :func:`~layerib.analysis.validation.outside_subset_accuracy`, kept in ``folder /
    SCORE_FILE`` with the SHA-256 of the ``result.json`` it scored, so a resumed study reads
    it instead of scoring again (on CIFAR-10 10 % a score is a pass over 45 000 images, about
    half a minute at one thread) and a run trained again is scored again.

    Raises:
        RunDirError: no finished run in ``folder``.
    """
    result = folder / "result.json"
    digest = file_digest(result) if result.is_file() else None
    kept = read_json(folder / SCORE_FILE)
    if digest is not None and kept is not None and kept.get("result_sha256") == digest:
        return kept["val_accuracy"]
    score = outside_subset_accuracy(folder, data_root)
    atomic_write_json(folder / SCORE_FILE, {"val_accuracy": score["val_accuracy"],
                                            "n_val": score["n_val"], "result_sha256": digest})
    return score["val_accuracy"]


def _tune(s: ClaimSetting, method: str, base: dict, out: Path, workers: int,
          progress: bool) -> tuple[dict, dict[str, list[float]]]:
    """Run one method's tuning sweep; ``(folders by (tag, seed), validation accuracies by tag)``."""
    spec = tuning_spec(s, method, base)
    _sweep(spec, out / "tune" / method, workers, progress)
    folders = _by_setting(spec, out / "tune" / method)
    scores = {tag(g): [validation_score(folders[(tag(g), k)], base.get("data_root"))
                       for k in s.tune_seeds] for g in s.grids[method]}
    return folders, scores


def _test_cell(s: ClaimSetting, name: str, method: str, chosen: dict, base: dict,
               tuned: dict, out: Path, workers: int, progress: bool) -> dict:
    """Train ``chosen`` at the test seeds not yet run; the cell of its test accuracies."""
    folders = {}
    seeds = seeds_to_test(s)
    if seeds:
        spec = testing_spec(s, method, chosen, base)
        ran = _sweep(spec, out / "test" / method, workers, progress)
        folders = {p.overrides["seed"]: ran[p.name] for p in expand(spec)}
    folders.update({k: tuned[(tag(chosen), k)] for k in s.test_seeds if k not in seeds})
    acc = [100 * _result(folders[k])["test_accuracy"] for k in s.test_seeds]
    return {"setting": name, "method": method, "chosen": chosen, "seeds": list(s.test_seeds),
            "accuracy_percent": acc, "runs": [str(folders[k].relative_to(out)) for k in s.test_seeds]}


def _result(folder: Path) -> dict:
    result = read_json(folder / "result.json")
    if result is None:
        raise LayerIBError(f"{folder} has no result.json; re-run the study to finish it")
    return result


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.2f}"


def render_markdown(table: dict) -> str:
    """``claim.md``: every tuning setting's validation score, the chosen ones' test
    accuracies, and the paired differences with their intervals and verdicts."""
    tune, test = table["tune_seeds"], table["test_seeds"]
    lines = [f"# The claim on {table['label']}, the same tuning budget per method", "",
             f"Each method: {len(table['grids']['ib'])} settings x tuning seeds {tune} "
             f"({table['budget']} runs), trained on {100 * table['tune_fraction']:.4g} % of the "
             "training set and scored by accuracy on the training images outside it (never "
             "the test set); steps by the runs' early stopping. Chosen settings: test seeds "
             f"{test}.", "",
             "| method | setting | validation accuracy %, mean over tuning seeds | chosen |",
             "|---|---|---|---|"]
    for m, grid in table["grids"].items():
        for g in grid:
            v = 100 * statistics.fmean(table["validation"][f"{m}/{tag(g)}"])
            lines.append(f"| {m} | {tag(g)} | {v:.2f} | {'yes' if g == table['chosen'][m] else ''} |")
    lines += ["", f"| method | chosen setting | test accuracy %, seeds {test} | mean | std |",
              "|---|---|---|---|---|"]
    for c in table["cells"]:
        acc = c["accuracy_percent"]
        lines.append(f"| {c['method']} | {tag(c['chosen'])} | {', '.join(f'{x:.2f}' for x in acc)} "
                     f"| {statistics.fmean(acc):.2f} | {statistics.stdev(acc):.2f} |")
    lines += paired_markdown(table["paired"], "Paired differences (test accuracy points, 95 % "
                                              "Student-t interval)")
    lines += ["", f"Training time: {table['run_seconds']:.0f} s summed over the study's runs "
                  f"(each one thread); this invocation took {table['wall_seconds']:.0f} s."]
    if table["argv"]:
        lines += ["", f"Command: `layerib {' '.join(table['argv'][1:])}`"]
    return "\n".join(lines) + "\n"
