"""Does a layer compress? The information-plane study of Saxe et al. (ICLR 2018), with exact values.

Shwartz-Ziv & Tishby (2017) reported that layers first fit, then *compress* (I(X; L)
falls) during ordinary training; Saxe et al. (ICLR 2018) found compression with tanh
and none with ReLU, using binning and kernel-density estimators. This study asks the
same question of the quantity layerib can compute exactly on the data,
I(X; L + eps) with ``eps ~ N(0, sigma^2 I)`` and X uniform over ``n_test`` test images:

* **Monte-Carlo value with its standard error**
  (:func:`~layerib.mi.ground_truth.mixture_mi`; Elad et al. 2019, Eq. 5: L + eps is a
  Gaussian mixture over the test rows), at every snapshot, at every noise variance;
* **AA-MINE with its 95 % interval** (:func:`layerib.estimate_mi` on ``(L, L + eps)``,
  critics fitted on ``n_fit`` training rows, the value on the same test rows), at few
  snapshots per layer and noise variance: the first, the one where the Monte-Carlo value
  peaks, and the last (AA-MINE is the costly part);
* **I(Y; L) with its 95 % interval** (:func:`layerib.estimate_mi` with the labels) at
  every snapshot.

Runs: the Saxe et al. MNIST nets, 784-1024-20-20-20-10 with tanh or ReLU after every
layer but the last (the logits; :func:`layerib.models.mlp.mlp`), trained end to end with
cross-entropy at every seed of ``ce_seeds``, and layer-wise with the IB objective (Eq. 2,
which asks each layer for compression) at ``ib_seeds``. Each run is an ordinary run folder
(:func:`layerib.runs.training.train_net`, checkpoints and resume) that also saves the
net's weights at log-spaced steps of each stage (:class:`Snapshots`; for layer-wise runs
layer K is measured during its own stage, ``layerK``).

Verdict (:func:`compression_verdict`): a layer's trajectory shows compression when its
last value lies below its maximum over training by more than the combined 95 % error
``sqrt(h_max^2 + h_end^2)`` (``h`` the half-width of each point's interval; Monte Carlo:
1.96 stderr); otherwise "no compression detected". A maximum within
:data:`SATURATION_NATS` of ln ``n_test`` is marked ``saturated``: the value sits at the
ceiling of X uniform on ``n_test`` rows and cannot show a fall there. Per activation,
method, noise variance, estimator and layer the seeds' verdicts are counted
(:func:`verdicts`).

Resumable: finished runs are not trained again, a stopped run resumes from its
checkpoint, and every measurement is a JSON file in the run folder (``infoplane/``),
computed once. ``infoplane_study.json`` is written after every finished run
(``"complete": false`` until the last), ``infoplane_study.png`` from it at the end
(:func:`render` draws it from a partial study too). MI in nats; bits on the plot
axes only.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from layerib.config import TrainConfig
from layerib.errors import ConfigError, RunDirError
from layerib.experiments.presets import choose, read_stored
from layerib.ib.callbacks import Callback

ACTIVATIONS = ("tanh", "relu")
#: the Saxe et al. (ICLR 2018, Fig. 1C-D) MNIST widths after the 784 inputs; the last is the logits
SAXE_WIDTHS = (1024, 20, 20, 20, 10)
#: a maximum within this many nats of ln n_test is marked saturated
SATURATION_NATS = 0.5
Z95 = 1.959963984540054
EXPERIMENT = "infoplane_study"


@dataclass(frozen=True)
class StudyPreset:
    """Settings of the study (MI in nats, noise as a variance).

    ``train`` holds the settings shared by every run (data, widths, schedule; method,
    activation and seed are set per run); ``ib_noise_var`` is the noise variance of the
    layer-wise IB objective.
    """

    train: TrainConfig
    activations: tuple[str, ...] = ACTIVATIONS
    ce_seeds: tuple[int, ...] = (0, 1, 2)
    ib_seeds: tuple[int, ...] = (0,)
    noise_vars: tuple[float, ...] = (1.0, 100.0)
    ib_noise_var: float = 1.0
    snapshots: int = 6          # log-spaced snapshots per stage after step 0
    n_test: int = 1000          # test images X is uniform over (Monte Carlo, AA-MINE, I(Y; L) values)
    n_fit: int = 500            # training images the critics are fitted on
    mc_samples: int = 2048      # Monte-Carlo samples per value
    estimator: dict = field(default_factory=lambda: dict(  # estimate_mi options of AA-MINE
        restarts=2, baseline=False, max_steps=200, eval_every=50))
    y_estimator: dict = field(default_factory=lambda: dict(  # estimate_mi options of I(Y; L)
        restarts=1, baseline=False, max_steps=200, eval_every=50, candidates=("heads-infonce",)))


# the runs' own final MI report (result.json) is not what the study reads: kept cheap
_SCHEDULE = dict(min_steps_per_layer=0, val_fraction=0.0, infoplane_evals=0, evals_per_layer=2,
                 mi_restarts=1, mi_baseline=False, mi_max_rows=200, mi_max_steps=20)

PRESETS = {
    # MNIST 10 % (6000 images), Adam 1e-3, batch 256: CE 30 epochs (690 steps);
    # layer-wise IB 5 epochs (115 steps) a layer, beta 600 / 6000 = 0.1 (auto)
    "default": StudyPreset(TrainConfig(train_fraction=0.1, widths=SAXE_WIDTHS, ce_epochs=30,
                                       epochs_per_layer=5, readout_epochs=5, **_SCHEDULE)),
    # seconds on the tests' tiny fake MNIST: a smoke test of the pipeline, not a result
    "quick": StudyPreset(
        TrainConfig(widths=(8, 10), batch_size=64, ce_epochs=2, epochs_per_layer=1,
                    readout_epochs=1, critic_hidden=8, mi_eval_batch_size=40,
                    **dict(_SCHEDULE, mi_max_rows=80, mi_max_steps=10, evals_per_layer=1)),
        ce_seeds=(0,), ib_seeds=(0,), noise_vars=(1.0, 10.0), snapshots=2, n_test=100,
        n_fit=80, mc_samples=128, estimator=dict(restarts=1, baseline=False, max_steps=20,
                                                 eval_every=10, hidden=8, eval_batch_size=40),
        y_estimator=dict(restarts=1, baseline=False, max_steps=20, eval_every=10, hidden=8,
                         eval_batch_size=40, candidates=("heads-infonce",))),
}


def snapshot_steps(total: int, n: int) -> list[int]:
    """Step 0 and ``n`` log-spaced steps from about ``total / 64`` to ``total`` (no repeats).

    Example:
        >>> snapshot_steps(940, 8)
        [0, 15, 27, 48, 87, 158, 286, 519, 940]
        >>> snapshot_steps(3, 8)
        [0, 1, 2, 3]
    """
    if total <= 0 or n <= 0:
        return [0]
    first = max(1.0, total / 64)
    ratio = (total / first) ** (1.0 / max(1, n - 1))
    return sorted({0, total} | {min(total, max(1, round(first * ratio ** k))) for k in range(n)})


class Snapshots(Callback):
    """Saves ``net``'s weights at :func:`snapshot_steps` of every ``ce`` and ``layerK``
    stage, as ``folder/<unit>_<step>.pt`` (atomically; an existing file is kept, so a
    resumed run, bit-identical on CPU, never rewrites one).

    Args:
        folder: where the snapshots go; net: the net the trainer trains in place;
        n: log-spaced snapshots per stage after step 0.
    """

    def __init__(self, folder: Path, net: torch.nn.Module, n: int):
        self.folder, self.net, self.n = Path(folder), net, n
        self.unit, self.steps = None, set()

    def on_stage_start(self, spec, step: int) -> None:
        wanted = spec.unit == "ce" or (spec.unit.startswith("layer") and spec.phase != "search")
        self.unit = spec.unit if wanted else None
        self.steps = set(snapshot_steps(spec.steps, self.n)) if wanted else set()
        if step == 0:
            self._save(0)

    def on_step(self, spec, step: int, state) -> None:
        if step in self.steps:
            self._save(step)

    def _save(self, step: int) -> None:
        from layerib.runs.checkpoint import atomic_torch_save
        if self.unit is None:
            return
        path = self.folder / f"{self.unit}_{step:06d}.pt"
        if not path.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            atomic_torch_save({k: v.detach().cpu().clone() for k, v in self.net.state_dict().items()},
                              path)


def compression_verdict(values: list[float], half_widths: list[float], *,
                        ceiling: float | None = None) -> dict:
    """Whether a trajectory's last value lies below its maximum beyond their errors.

    ``drop = values[k] - values[-1]`` at the first maximum ``k``; ``error =
    sqrt(h_k^2 + h_end^2)`` from the 95 % half-widths; "compression" when ``drop > error``,
    else "no compression detected". ``saturated``: the maximum is within
    :data:`SATURATION_NATS` of ``ceiling`` (ln N for X uniform on N rows).

    Args:
        values: the trajectory, nats (at least one point); half_widths: their 95 % half-widths.
        ceiling: the largest value the quantity can take (nats), or None.

    Raises:
        ConfigError: empty or mismatched lists, or a negative half-width.

    Example:
        >>> compression_verdict([1.0, 2.0, 1.5], [0.1, 0.1, 0.1])["verdict"]
        'compression'
        >>> compression_verdict([1.0, 2.0, 1.9], [0.1, 0.1, 0.1])["verdict"]
        'no compression detected'
    """
    if not values or len(values) != len(half_widths) or min(half_widths) < 0:
        raise ConfigError(f"a trajectory needs values and non-negative half-widths of equal "
                          f"length, got {len(values)} and {len(half_widths)}")
    k = max(range(len(values)), key=lambda i: values[i])
    drop = values[k] - values[-1]
    error = math.hypot(half_widths[k], half_widths[-1])
    return {"verdict": "compression" if drop > error else "no compression detected",
            "max_index": k, "max_nats": values[k], "end_nats": values[-1], "drop_nats": drop,
            "error_nats": error,
            "saturated": ceiling is not None and values[k] > ceiling - SATURATION_NATS}


def _resolve(preset: str, data_root, download, device, seed) -> StudyPreset:
    p = choose(PRESETS, preset, "infoplane-study")
    if seed is not None:
        raise ConfigError("infoplane-study fixes its own seeds (ce_seeds, ib_seeds); drop --seed")
    over = {k: v for k, v in dict(data_root=data_root, download=download, device=device).items()
            if v is not None}
    return dataclasses.replace(p, train=dataclasses.replace(p.train, **over))


def run_plan(p: StudyPreset) -> list[dict]:
    """The study's runs in order: seed by seed, every activation, CE first, then IB.

    Example:
        >>> [(r["method"], r["activation"], r["seed"]) for r in run_plan(PRESETS["default"])][:3]
        [('ce', 'tanh', 0), ('ce', 'relu', 0), ('ib', 'tanh', 0)]
        >>> len(run_plan(PRESETS["default"]))
        8
    """
    plan = []
    for seed in sorted(set(p.ce_seeds) | set(p.ib_seeds)):
        for method, seeds in (("ce", p.ce_seeds), ("ib", p.ib_seeds)):
            if seed in seeds:
                plan += [{"method": method, "activation": a, "seed": seed,
                          "dir": f"runs/{method}-{a}-seed{seed}"} for a in p.activations]
    return plan


def run_config(p: StudyPreset, entry: dict) -> TrainConfig:
    """The :class:`TrainConfig` of one planned run."""
    return dataclasses.replace(
        p.train, method=entry["method"], seed=entry["seed"],
        arch_params={**p.train.arch_params, "activation": entry["activation"]},
        noise_var=p.ib_noise_var if entry["method"] == "ib" else p.train.noise_var)


def _train(cfg: TrainConfig, folder: Path, n_snapshots: int, progress: bool, argv) -> dict:
    """Train (or resume, or read back) one run folder, saving snapshots; its result.json."""
    from layerib.analysis.runs import read_json
    from layerib.runs.training import build_net, load_data, resolve_device, train_net
    done = read_json(folder / "result.json")
    if done is not None:
        return done
    resolve_device(cfg.device)
    train, test = load_data(cfg, uint8=True)
    torch.manual_seed(cfg.seed)  # the net's initialisation, as layerib train
    net = build_net(cfg, tuple(train.images.shape[1:]))
    result, _ = train_net(cfg, net, train, test, folder, progress=progress, argv=argv,
                          callbacks=[Snapshots(folder / "snapshots", net, n_snapshots)])
    return result


def _cached(path: Path, compute) -> dict:
    """The JSON object at ``path``, computed and written atomically when absent."""
    from layerib.analysis.runs import read_json
    from layerib.runs.folder import atomic_write_json
    got = read_json(path)
    if got is None:
        got = compute()
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(path, got)
    return got


def _mi(r) -> dict:
    """What the study keeps of an :class:`~layerib.mi.result.MIResult` (nats)."""
    return {"nats": r.value, "stderr": r.stderr, "interval": list(r.interval),
            "flags": r.flags, "critic": r.critic, "bound": r.bound}


class _Data:
    """The rows a run is measured on: ``n_test`` test images (the same for every run) and
    ``n_fit`` of the run's training images (seeded by the run's seed)."""

    def __init__(self, cfg: TrainConfig, p: StudyPreset):
        from layerib.runs.training import load_data
        train, test = load_data(cfg)
        te = torch.randperm(len(test.labels), generator=torch.Generator().manual_seed(0))[:p.n_test]
        tr = torch.randperm(len(train.labels),
                            generator=torch.Generator().manual_seed(cfg.seed))[:p.n_fit]
        self.x_test, self.y_test = test.images[te], test.labels[te]
        self.x_fit, self.y_fit = train.images[tr], train.labels[tr]
        self.input_shape = tuple(train.images.shape[1:])


def _features(cfg: TrainConfig, data: _Data, snapshot: Path) -> tuple[list, list]:
    from layerib.runs.estimation import layer_features
    from layerib.runs.training import build_net
    net = build_net(cfg, data.input_shape)
    net.load_state_dict(torch.load(snapshot, map_location="cpu", weights_only=True))
    return layer_features(net, data.x_fit), layer_features(net, data.x_test)


def _snapshot_layers(unit: str, n_layers: int) -> list[int]:
    return list(range(1, n_layers + 1)) if unit == "ce" else [int(unit[len("layer"):])]


def measure_run(cfg: TrainConfig, folder: Path, p: StudyPreset) -> dict:
    """Every snapshot's measurements of one finished run (cached in ``folder/infoplane``).

    Returns:
        ``{layer: [point, ...]}`` (layers as strings), one point per snapshot of the
        stage the layer is measured in: ``unit``, ``step``, ``i_y`` (:func:`_mi`) and
        ``i_x`` = ``{noise_var: {"mc_nats", "mc_stderr", "aa": _mi or absent}}``.
    """
    from layerib.mi.estimate import estimate_mi
    from layerib.mi.ground_truth import mixture_mi
    snaps = sorted((folder / "snapshots").glob("*.pt"))
    if not snaps:
        raise RunDirError(f"{folder} has no snapshots/; it was not trained by the study "
                          "(remove it and run the study again)")
    n_layers = len(cfg.widths)
    data, cache = _Data(cfg, p), folder / "infoplane"
    feats: dict[Path, tuple] = {}

    def features(snap: Path) -> tuple:
        if snap not in feats:
            feats.clear()  # one snapshot's features at a time
            feats[snap] = _features(cfg, data, snap)
        return feats[snap]

    points: dict[int, list[dict]] = {k: [] for k in range(1, n_layers + 1)}
    for snap in snaps:
        unit, step = snap.stem.rsplit("_", 1)
        for k in _snapshot_layers(unit, n_layers):
            def compute(snap=snap, k=k, unit=unit, step=int(step)) -> dict:
                f_fit, f_te = (f[k - 1] for f in features(snap))
                seed = 1000 * k + step
                mc = {f"{nv:g}": mixture_mi(f_te.double(), nv, n_samples=p.mc_samples,
                                            generator=torch.Generator().manual_seed(seed))
                      for nv in p.noise_vars}
                iy = estimate_mi(f_fit, data.y_fit, seed=seed, test=(f_te, data.y_test),
                                 **p.y_estimator)
                return {"unit": unit, "step": step, "layer": k, "width": f_te.shape[1],
                        "output_rms": float(f_te.pow(2).mean().sqrt()), "i_y": _mi(iy),
                        "i_x": {nv: {"mc_nats": m.value, "mc_stderr": m.stderr}
                                for nv, m in mc.items()}}
            points[k].append(_cached(cache / f"{snap.stem}_L{k}.json", compute))
    for k, traj in points.items():  # AA-MINE: first point, the Monte-Carlo peak, last point
        for nv in (f"{v:g}" for v in p.noise_vars):
            mc = [pt["i_x"][nv]["mc_nats"] for pt in traj]
            if not mc:
                continue
            for i in sorted({0, max(range(len(mc)), key=mc.__getitem__), len(mc) - 1}):
                pt = traj[i]
                snap = folder / "snapshots" / f"{pt['unit']}_{pt['step']:06d}.pt"

                def compute(snap=snap, k=k, nv=nv, step=pt["step"]) -> dict:
                    f_fit, f_te = (f[k - 1] for f in features(snap))
                    return _mi(estimate_mi(f_fit, f_fit, noise_var=float(nv), seed=1000 * k + step,
                                           test=(f_te, f_te), **p.estimator))
                pt["i_x"][nv]["aa"] = _cached(cache / f"aa_{snap.stem}_L{k}_nv{nv}.json", compute)
    return {str(k): v for k, v in points.items() if v}


#: AA-MINE points with these flags failed (an interval below 0, no finite value, a DV value
#: on fewer than 20 effective marginal pairs -- e.g. -806 nats beside a Monte-Carlo 6.9): they
#: are left out of a trajectory's verdict rather than read as a drop
FAILED_FLAGS = ("negative", "non_finite", "heavy_tailed")


def _half(pt: dict, nv: str, estimator: str) -> tuple[float, float] | None:
    """(value, 95 % half-width) of I(X; L + eps) at a point, nats; None where not measured
    or where the AA-MINE estimate failed (:data:`FAILED_FLAGS`)."""
    x = pt["i_x"][nv]
    if estimator == "mc":
        return x["mc_nats"], Z95 * x["mc_stderr"]
    if "aa" not in x or any(f in (x["aa"].get("flags") or ()) for f in FAILED_FLAGS):
        return None
    lo, hi = x["aa"]["interval"]
    return x["aa"]["nats"], (hi - lo) / 2


def run_verdicts(layers: dict, noise_vars, ceiling: float) -> dict:
    """``{noise_var: {"mc"|"aa": {layer: compression_verdict}}}`` of one run's trajectories."""
    out = {}
    for nv in (f"{v:g}" for v in noise_vars):
        out[nv] = {}
        for est in ("mc", "aa"):
            per = {}
            for k, traj in layers.items():
                got = [_half(pt, nv, est) for pt in traj
                       if est == "mc" or "aa" in pt["i_x"][nv]]
                vals = [v for v in got if v is not None]
                if len(vals) >= 2 or (vals and len(got) == 1):
                    per[k] = compression_verdict([v for v, _ in vals], [h for _, h in vals],
                                                 ceiling=ceiling)
                elif got:  # measured, but fewer than two points that did not fail
                    per[k] = {"verdict": "unmeasured", "saturated": False,
                              "failed_points": len(got) - len(vals)}
            out[nv][est] = per
    return out


def verdicts(runs: list[dict]) -> dict:
    """Seeds' verdicts counted per ``method/activation``, noise variance, estimator, layer.

    Each entry: ``{"compression": n, "seeds": m, "saturated": s, "unmeasured": u, "verdict":
    ...}`` with verdict "compression in every seed", "compression in n of m seeds", "no
    compression detected" or, where every seed's trajectory had fewer than two AA-MINE points
    that did not fail, "unmeasured: ...".

    Example:
        >>> r = {"method": "ce", "activation": "tanh", "verdicts": {"1": {"mc": {"2": {
        ...     "verdict": "compression", "saturated": False}}, "aa": {}}}}
        >>> verdicts([r, r])["ce/tanh"]["1"]["mc"]["2"]["verdict"]
        'compression in every seed'
    """
    out: dict = {}
    for r in runs:
        for nv, by_est in r["verdicts"].items():
            for est, per in by_est.items():
                for k, v in per.items():
                    c = (out.setdefault(f"{r['method']}/{r['activation']}", {}).setdefault(nv, {})
                         .setdefault(est, {}).setdefault(k, {"compression": 0, "seeds": 0,
                                                             "saturated": 0, "unmeasured": 0}))
                    c["seeds"] += 1
                    c["compression"] += v["verdict"] == "compression"
                    c["unmeasured"] += v["verdict"] == "unmeasured"
                    c["saturated"] += bool(v["saturated"])
    for group in out.values():
        for by_est in group.values():
            for per in by_est.values():
                for c in per.values():
                    n, m = c["compression"], c["seeds"]
                    c["verdict"] = ("unmeasured: the estimates failed (negative, non-finite or heavy-tailed)"
                                    if c["unmeasured"] == m else
                                    "no compression detected" if n == 0 else
                                    "compression in every seed" if n == m else
                                    f"compression in {n} of {m} seeds")
    return out


def summary_lines(res: dict) -> list[str]:
    """One line per method/activation, noise variance and estimator: which layers compress."""
    lines = []
    names = {"mc": "Monte Carlo", "aa": "AA-MINE"}
    for group, by_nv in res["verdicts"].items():
        for nv, by_est in by_nv.items():
            for est, per in by_est.items():
                every = [k for k, c in per.items() if c["compression"] == c["seeds"]]
                some = [k for k, c in per.items() if 0 < c["compression"] < c["seeds"]]
                sat = [k for k, c in per.items() if c["saturated"]]
                seeds = max((c["seeds"] for c in per.values()), default=0)
                lines.append(f"{group} sigma^2={nv} {names[est]} ({seeds} seed(s)): compression in "
                             f"every seed: layers {', '.join(every) or 'none'}; in some: "
                             f"{', '.join(some) or 'none'}"
                             + (f"; saturated near ln N: {', '.join(sat)}" if sat else ""))
    return lines


def run(out: str | Path, *, preset: str = "default", data_root: str | None = None,
        download: bool | None = None, device: str | None = None, seed: int | None = None,
        force: bool = False, progress: bool = False, argv: list[str] | None = None) -> dict:
    """Run (or resume) the study into ``out``; write ``infoplane_study.json`` and ``.png``.

    Args:
        out: the study's folder (may hold a stopped study of the same preset).
        preset: ``"default"`` or ``"quick"`` (:data:`PRESETS`).
        data_root, download, device: passed to every run (None: the preset's).
        seed: must be None (the preset fixes its seeds).
        force: delete the study's runs first and start again.
        progress: progress bars of each run.
        argv: the command line, recorded in the JSON.

    Returns:
        What ``infoplane_study.json`` holds: ``experiment, preset, complete, settings``
        (the preset, with ``runs``' shared config), ``noise_vars``, ``ln_n_test``,
        ``runs`` (per run: method, activation, seed, dir, test_accuracy, layers (the
        trajectories of :func:`measure_run`), verdicts (:func:`run_verdicts`)),
        ``verdicts`` (:func:`verdicts`), ``summary``, ``figure``, ``wall_seconds``, ``argv``.

    Raises:
        ConfigError: an unknown preset, or a seed given.
        LayerIBError: bad data, a run folder of another config, a non-finite loss.
    """
    import shutil

    from layerib.runs.folder import atomic_write_json, atomic_write_text
    t0 = time.perf_counter()
    p = _resolve(preset, data_root, download, device, seed)
    out = Path(out)
    if force:
        shutil.rmtree(out / "runs", ignore_errors=True)
        (out / f"{EXPERIMENT}.json").unlink(missing_ok=True)
    plan, runs = run_plan(p), []
    ceiling = math.log(p.n_test)
    settings = {k: v for k, v in dataclasses.asdict(p).items() if k != "train"}
    settings["train"] = p.train.to_dict()
    for i, entry in enumerate(plan):
        cfg = run_config(p, entry)
        result = _train(cfg, out / entry["dir"], p.snapshots, progress, argv)
        layers = measure_run(cfg, out / entry["dir"], p)
        runs.append({**entry, "test_accuracy": result["test_accuracy"],
                     "run_seconds": result.get("wall_seconds"), "layers": layers,
                     "verdicts": run_verdicts(layers, p.noise_vars, ceiling)})
        res = {"experiment": EXPERIMENT, "preset": preset, "complete": i == len(plan) - 1,
               "settings": settings, "noise_vars": list(p.noise_vars), "ln_n_test": ceiling,
               "saturation_nats": SATURATION_NATS, "runs": runs, "verdicts": verdicts(runs),
               "figure": f"{EXPERIMENT}.png", "wall_seconds": time.perf_counter() - t0,
               "argv": list(argv or [])}
        res["summary"] = summary_lines(res)
        atomic_write_json(out / f"{EXPERIMENT}.json", res)
        atomic_write_text(out / f"{EXPERIMENT}.md", render_markdown(res))
    render(out)
    return res


def _cell(pt: dict | None, nv: str, est: str) -> str:
    if pt is None:
        return "-"
    x = pt["i_x"][nv]
    if est == "mc":
        return f"{x['mc_nats']:.3f} ± {Z95 * x['mc_stderr']:.3f}"
    if "aa" not in x:
        return "-"
    lo, hi = x["aa"]["interval"]
    failed = [f for f in FAILED_FLAGS if f in (x["aa"].get("flags") or ())]
    return f"{x['aa']['nats']:.2f} [{lo:.2f}, {hi:.2f}]" + (f" ({', '.join(failed)})" if failed else "")


def render_markdown(res: dict) -> str:
    """The study's tables (nats): per method, activation, noise variance and layer, the
    first run's (lowest seed's) start, maximum and end of I(X; L + eps) by Monte Carlo
    (± 1.96 stderr) and AA-MINE (95 % interval), and the seeds' verdicts."""
    lines = [f"Noise variances {', '.join(f'{v:g}' for v in res['noise_vars'])}; X uniform on "
             f"{res['settings']['n_test']} test images (ln N = {res['ln_n_test']:.3f} nats). "
             "Values in nats. Monte Carlo: value ± 1.96 stderr; AA-MINE: value [95 % interval]. "
             "max: the trajectory's maximum (its step in brackets); verdict: seeds whose last "
             "value lies below the maximum by more than the combined error. AA-MINE points "
             f"flagged {', '.join(FAILED_FLAGS)} failed: they are shown with the flag and left "
             "out of the maximum and the verdict (unmeasured where fewer than two are left).", ""]
    for nv in (f"{v:g}" for v in res["noise_vars"]):
        lines += [f"### sigma^2 = {nv}", "",
                  "| run | layer | MC start | MC max (step) | MC end | MC verdict | "
                  "AA-MINE start | AA-MINE max | AA-MINE end | AA-MINE verdict |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for group, by_nv in res["verdicts"].items():
            first = min((r for r in res["runs"] if f"{r['method']}/{r['activation']}" == group),
                        key=lambda r: r["seed"])
            for k, traj in first["layers"].items():
                cells = []
                for est in ("mc", "aa"):
                    pts = [pt for pt in traj if est == "mc" or "aa" in pt["i_x"][nv]]
                    # the verdict's maximum indexes the points that did not fail (FAILED_FLAGS)
                    kept = [pt for pt in pts if _half(pt, nv, est) is not None]
                    v = first["verdicts"][nv][est].get(k)
                    peak = kept[v["max_index"]] if v and "max_index" in v else None
                    c = by_nv[nv][est].get(k)
                    verdict = "-" if c is None else (
                        "unmeasured (failed estimates)" if c["unmeasured"] == c["seeds"] else
                        f"{c['compression']} of {c['seeds']}"
                        + (f" (saturated in {c['saturated']})" if c["saturated"] else "")
                        + (f" (unmeasured in {c['unmeasured']})" if c["unmeasured"] else ""))
                    cells += [_cell(pts[0] if pts else None, nv, est),
                              _cell(peak, nv, est) + (f" ({peak['step']})" if peak else ""),
                              _cell(pts[-1] if pts else None, nv, est), verdict]
                lines.append(f"| {group} seed {first['seed']} | {k} | " + " | ".join(cells) + " |")
        lines.append("")
    accs = ", ".join(f"{r['method']}/{r['activation']} seed {r['seed']}: "
                     f"{100 * r['test_accuracy']:.2f} %" for r in res["runs"])
    lines += [f"Test accuracy: {accs}.", ""]
    return "\n".join(lines)


def render(out: str | Path) -> Path:
    """Draw ``infoplane_study.png`` from the stored ``infoplane_study.json`` only.

    Raises:
        RunDirError: ``out`` holds no (partial) study.
    """
    from layerib.plotting.infoplane_study import plot_study
    out = Path(out)
    fig = plot_study(read_stored(out, EXPERIMENT))
    path = out / f"{EXPERIMENT}.png"
    fig.savefig(path, dpi=80)
    return path
