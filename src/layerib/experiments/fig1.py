"""Fig. 1 of Elad et al. 2019: I(X; L_3 + eps) of a random-weight MLP against the noise variance.

The paper compares standard MINE (a critic on the raw input x and z = L_3 + eps) with
AA-MINE (a critic that contains the net, i.e. MINE on (L_3, L_3 + eps)) on a random
3-layer MLP on MNIST inputs: AA-MINE grows without bound as sigma^2 -> 0 and falls
smoothly as sigma^2 grows; MINE does neither. :func:`run` adds what the paper lacks,
the Monte-Carlo ground truth (:func:`~layerib.mi.ground_truth.mixture_mi`; at sigma^2 = 0
the entropy of the distinct features, ln N), and reports every estimate by the protocol
of :mod:`layerib.mi.protocol` (held-out average with standard error, shuffled-pairs
baseline, B, ln B, N):

* MINE: :class:`~layerib.mi.critics.ConcatCritic` on (x, z), DV bound, trained with MINE's
  moving average and reported on one shuffle per batch (as MINE does).
* AA-MINE: :class:`~layerib.mi.critics.MixtureNoiseCritic` on (L_3, z), DV bound on
  all pairs. At sigma^2 = 0 its Gaussian term uses the preset's ``zero_noise_critic_var``:
  the MI of a continuous input through an injective net is infinite, and the estimate
  grows as that variance shrinks (the paper's "grows without bound").

The critics are trained on ``n_train`` training images; estimates and truth are on
``n_test`` held-out test images. It writes ``config.json``, ``fig1.csv`` (one row per
noise variance, MI in nats), ``fig1.json`` (everything, with the paper's claim) and, from
``fig1.csv`` only, ``fig1.png`` (:func:`render`).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from layerib.errors import ConfigError, RunDirError
from layerib.experiments.presets import choose, set_fields
from layerib.mi.recipes import recipe_settings
from layerib.mi.settings import EstimatorSettings
from layerib.utils.progress import progress_bar

PAPER = {
    "artefact": "Fig. 1",
    "claim": "On a random-weight MLP on MNIST, AA-MINE's I(X; L_3 + eps) grows without bound "
             "as sigma^2 -> 0 and falls smoothly as sigma^2 grows; standard MINE (a critic on "
             "the raw input) does neither.",
    "numbers": None,
}

#: CSV columns, in order (MI in nats).
COLUMNS = ("noise_var", "truth_nats", "truth_stderr_nats",
           "mine_nats", "mine_stderr_nats", "mine_shuffled_nats", "mine_exceeds_ln_batch",
           "aa_mine_nats", "aa_mine_stderr_nats", "aa_mine_shuffled_nats", "aa_mine_exceeds_ln_batch",
           "mine_seconds", "aa_mine_seconds", "batch_size", "ln_batch", "n_train", "n_test",
           "ln_n_test", "layer", "width")


@dataclass(frozen=True)
class Fig1Preset:
    """Settings of one Fig. 1 reproduction."""

    noise_vars: tuple[float, ...] = (0.0, 1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0)
    widths: tuple[int, ...] = (512, 512, 10)  # the random MLP; L_3 is its 10-unit linear output
    layer: int = 3                    # the layer measured (1-based)
    n_train: int = 10000              # training images whose features fit the critics
    n_test: int = 10000               # held-out test images: estimates and truth (ln N = 9.21)
    mc_samples: int = 4096            # Monte-Carlo samples of the truth per noise variance
    mine: EstimatorSettings = recipe_settings(steps=500, hidden=256, lr=1e-3, passes=4)  # on (x, z)
    aa_mine: EstimatorSettings = recipe_settings(steps=50, n_centers=10000, passes=4)   # on (L_3, z)
    seed: int = 0                     # seeds the net, subsets, critics and noise
    data_root: str | None = None      # folder holding MNIST/raw; None: $LAYERIB_DATA_ROOT or a cache
    download: bool = True             # fetch missing MNIST files
    device: str = "cpu"               # cpu, cuda or auto


PRESETS = {
    "default": Fig1Preset(),
    # a CI smoke test (well under a minute), not a result
    "quick": Fig1Preset(noise_vars=(0.0, 1e-3, 1e-2, 0.1, 1.0), n_train=1000, n_test=1000,
                        mc_samples=512, mine=recipe_settings(steps=30, hidden=32, passes=1),
                        aa_mine=recipe_settings(steps=5, n_centers=500, passes=1)),
}


def resolve_preset(preset: str, **overrides) -> Fig1Preset:
    """The named preset with the fields in ``overrides`` replaced (None: keep).

    Raises:
        ConfigError: an unknown preset name.
    """
    return set_fields(choose(PRESETS, preset, "fig1"), overrides)


def _data(p: Fig1Preset, device):
    from layerib.data.mnist import load_mnist
    from layerib.runs.estimation import take_subset
    train = take_subset(load_mnist(p.data_root, "train", p.download), p.n_train, p.seed)
    test = take_subset(load_mnist(p.data_root, "test", p.download), p.n_test, p.seed)
    return train.images.to(device), test.images.to(device), train.source


def _row(p: Fig1Preset, nv: float, x_tr, x_te, f_tr, f_te, mine: EstimatorSettings,
         aa: EstimatorSettings) -> dict:
    from layerib.runs.estimation import ground_truth
    from layerib.mi.recipes import estimate_x
    truth = ground_truth(f_te.cpu(), nv, p.mc_samples, p.seed)
    t0 = time.perf_counter()
    r_mine = estimate_x("mine", "dv", x_tr, f_tr, x_te, f_te, nv, mine)
    t1 = time.perf_counter()
    r_aa = estimate_x("mixture", "dv", f_tr, f_tr, f_te, f_te, nv, aa)
    t2 = time.perf_counter()
    b = aa.batch_size
    return {"noise_var": nv, "truth_nats": truth["value"], "truth_stderr_nats": truth["stderr"],
            "mine_nats": r_mine.value, "mine_stderr_nats": r_mine.stderr,
            "mine_shuffled_nats": r_mine.shuffled, "mine_exceeds_ln_batch": r_mine.exceeds_ln_batch,
            "aa_mine_nats": r_aa.value, "aa_mine_stderr_nats": r_aa.stderr,
            "aa_mine_shuffled_nats": r_aa.shuffled, "aa_mine_exceeds_ln_batch": r_aa.exceeds_ln_batch,
            "mine_seconds": t1 - t0, "aa_mine_seconds": t2 - t1, "batch_size": b,
            "ln_batch": math.log(b), "n_train": len(f_tr), "n_test": len(f_te),
            "ln_n_test": math.log(len(f_te)), "layer": p.layer, "width": f_tr.shape[1]}


def run(out: str | Path, *, preset: str = "default", data_root: str | None = None,
        download: bool | None = None, device: str | None = None, seed: int | None = None,
        force: bool = False, progress: bool = False, argv: list[str] | None = None) -> dict:
    """Reproduce Fig. 1 into the folder ``out``; returns what ``fig1.json`` holds.

    Raises:
        LayerIBError: unknown preset, bad data, or ``out`` holding a finished
            reproduction (without ``force``).
    """
    from layerib.runs.estimation import layer_features
    from layerib.models.mlp import mlp
    from layerib.runs.folder import atomic_write_json, prepare_run_dir, versions
    from layerib.runs.training import resolve_device

    t0 = time.perf_counter()
    p = resolve_preset(preset, data_root=data_root, download=download, device=device, seed=seed)
    if not 1 <= p.layer <= len(p.widths):
        raise ConfigError(f"layer {p.layer} does not exist in a {len(p.widths)}-layer MLP")
    out = Path(out)
    if (out / "fig1.json").exists() and not force:
        raise RunDirError(f"{out} already holds a fig1 reproduction; choose another --out or "
                          "pass --force to overwrite")
    dev = resolve_device(p.device)
    x_tr, x_te, source = _data(p, dev)  # data errors surface before anything is written
    b = min(p.aa_mine.batch_size, len(x_te) // 2)  # at least 2 held-out batches on small data
    mine = dataclasses.replace(p.mine, batch_size=b, seed=p.seed)
    aa = dataclasses.replace(p.aa_mine, batch_size=b, seed=p.seed)
    out = prepare_run_dir(out, force=force)
    for name in ("fig1.json", "fig1.csv", "fig1.png"):
        (out / name).unlink(missing_ok=True)
    settings = {**_jsonable(p), "batch_size": b}
    atomic_write_json(out / "config.json", {"experiment": "fig1", "preset": preset,
                                            "settings": settings, "argv": argv or sys.argv,
                                            "versions": versions(), "data_source": source})
    torch.manual_seed(p.seed)
    net = mlp(tuple(x_tr.shape[1:]), p.widths).to(dev).eval()
    f_tr = layer_features(net, x_tr)[p.layer - 1]
    f_te = layer_features(net, x_te)[p.layer - 1]
    rows = []
    for nv in progress_bar(p.noise_vars, desc="fig1 noise variances", enabled=progress):
        rows.append(_row(p, float(nv), x_tr, x_te, f_tr, f_te, mine, aa))
    write_csv(out / "fig1.csv", rows)
    result = {"experiment": "fig1", "preset": preset, "paper": PAPER, "rows": rows,
              "settings": settings, "data_source": source, "n_train": len(x_tr),
              "n_test": len(x_te), "figure": "fig1.png", "table": "fig1.csv",
              "wall_seconds": time.perf_counter() - t0}
    result["summary"] = summary_lines(result)
    atomic_write_json(out / "fig1.json", result)
    render(out)
    return result


def _jsonable(p: Fig1Preset) -> dict:
    d = dataclasses.asdict(p)
    d["noise_vars"], d["widths"] = list(p.noise_vars), list(p.widths)
    return d


def write_csv(path: Path, rows: list[dict]) -> None:
    """``rows`` as CSV with :data:`COLUMNS`, written atomically."""
    import io

    from layerib.runs.folder import atomic_write_text
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r[k] is None else r[k]) for k in COLUMNS})
    atomic_write_text(path, buf.getvalue())


def read_csv(path: str | Path) -> list[dict]:
    """Rows of a ``fig1.csv``, numbers as floats (flags as bools, empty cells as None).

    Raises:
        RunDirError: the file is missing or lacks a column of :data:`COLUMNS`.
    """
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
    except OSError as e:
        raise RunDirError(f"cannot read {path}: {e.strerror}; run layerib reproduce fig1 first") from None
    if not rows or set(COLUMNS) - set(rows[0]):
        raise RunDirError(f"{path} is not a fig1.csv (missing columns or rows)")

    def conv(k, v):
        if v == "":
            return None
        if k.endswith("exceeds_ln_batch"):
            return v == "True"
        return float(v)
    return [{k: conv(k, r[k]) for k in COLUMNS} for r in rows]


def summary_lines(res: dict) -> list[str]:
    """The table of the figure (nats), one line per noise variance, for the terminal."""
    r0 = res["rows"][0]
    lines = [f"I(X; L_{r0['layer']} + eps), nats: held-out mean +- stderr [shuffled baseline]; "
             f"N_test={r0['n_test']} (ln N={r0['ln_n_test']:.2f}), B={r0['batch_size']} "
             f"(ln B={r0['ln_batch']:.2f}), ^ = above ln B",
             f"{'noise var':>10} {'truth':>15} {'MINE':>24} {'AA-MINE':>26} {'AA/truth':>9}"]
    for r in res["rows"]:
        def cell(k):
            flag = "^" if r[f"{k}_exceeds_ln_batch"] else " "
            base = "" if r[f"{k}_shuffled_nats"] is None else f" [{r[f'{k}_shuffled_nats']:+.2f}]"
            return f"{r[f'{k}_nats']:.3f}{flag}+-{r[f'{k}_stderr_nats']:.3f}{base}"
        ratio = r["aa_mine_nats"] / r["truth_nats"] if r["truth_nats"] > 0 else math.nan
        lines.append(f"{r['noise_var']:>10.3g} {r['truth_nats']:>8.3f}+-{r['truth_stderr_nats']:.3f}"
                     f" {cell('mine'):>24} {cell('aa_mine'):>26} {ratio:>9.3f}")
    return lines


def render(out: str | Path) -> Path:
    """Draw ``fig1.png`` from the stored ``fig1.csv`` of ``out``.

    Raises:
        RunDirError: the folder holds no ``fig1.csv``.
    """
    from layerib.plotting.fig1 import plot_fig1
    out = Path(out)
    fig = plot_fig1(read_csv(out / "fig1.csv"))
    fig.savefig(out / "fig1.png", dpi=110)
    return out / "fig1.png"
