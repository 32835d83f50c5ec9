"""``layerib estimate``: I(X; L_i + eps) of every layer by Monte Carlo (exact on the data), neural checks beside it, and I(Y; L_i).

For a run folder written by ``layerib train`` (its ``model.pt`` and config) or a fresh
random-weight MLP on MNIST inputs, every layer's features are computed on ``n_train``
training-split images (which fit the critics) and ``n_test`` test-split images (held out).
By default (critic and bound ``auto``) every value is :func:`layerib.estimate_mi`'s, the
protocol of the trainer's final report and of :func:`layerib.measure_layers`: critics fitted
on the training features (split into training and validation rows, early stopping on the
validation bound, several restarts), the value on the held-out features with a 95 %
interval over test rows and restarts, a shuffled-pairs baseline and flags. A named
critic/bound pair that :data:`~layerib.mi.settings.CANDIDATES` registers (e.g.
``mixture``/``dv``, ``gaussian``/``infonce``, ``concat``/``dv``) runs the same protocol with
that one candidate; the rest (the ``mine`` critic on the images, NWJ for labels, and noise
variance 0) are trained and reported by the held-out-batch recipes of :mod:`layerib.mi.recipes`
(held-out average over many batches, its standard error, a shuffled-pairs baseline), and
every entry records its ``protocol``. The Monte-Carlo value :func:`~layerib.mi.ground_truth.mixture_mi` is I(X; L_i + eps) for X
uniform on the held-out images (Elad et al. 2019, Eq. 5; at noise variance 0: the entropy of
their distinct features, ln N for distinct points): exact for that empirical input
distribution up to its Monte-Carlo error, it is the number the table leads with; every
neural estimate, named or ``auto``, is checked against it with the same flags
(:func:`~layerib.ib.report.truth_flag_reasons`: reason and remedy). All MI values are in nats.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from layerib.data.mnist import ImageDataset
from layerib.data.subsets import stratified_subset
from layerib.errors import ConfigError, DataError, RunDirError
from layerib.ib.report import (CHECK_ROWS, check_options, check_subset, estimate_y_report,
                               truth_flag_reasons)
from layerib.mi.estimate import estimate_mi
from layerib.mi.channel import GaussianChannel
from layerib.mi.settings import CANDIDATES, EstimatorSettings
from layerib.mi.ground_truth import mixture_mi
from layerib.mi.recipes import RECIPE_SETTINGS, check_names, estimate_x, estimate_y
from layerib.models.layered import LayeredNet
from layerib.models.mlp import mlp
from layerib.runs.folder import atomic_write_json, versions
from layerib.utils.memory import outputs_in_chunks
from layerib.utils.progress import progress_bar

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EstimateConfig:
    """Settings of one ``layerib estimate`` (MI in nats, noise as a variance)."""

    run_dir: str | None = None        # run folder of `layerib train`; None: a fresh random-weight MLP
    widths: tuple[int, ...] = (512, 512, 10)  # fresh net only: layer widths (the last is linear)
    noise_vars: tuple[float, ...] | None = None  # sigma^2 values >= 0; None: the run's, or 1.0
    layers: tuple[int, ...] | None = None  # 1-based layers to measure; None: all
    x_critics: tuple[str, ...] = ("auto",)  # critics of I(X; L+eps): auto (estimate_mi's) or recipes.X_CRITICS
    bounds: tuple[str, ...] = ("auto",)  # bounds for both terms: auto (estimate_mi's; dv for a named critic), dv, nwj, infonce
    estimate_y: bool = True           # also estimate I(Y; L_i)
    n_train: int = 10000              # at most this many training-split images fit the critics
    n_test: int = 10000               # at most this many test-split images: held-out set and truth
    mc_samples: int = 4096            # Monte-Carlo samples of the truth
    critic: EstimatorSettings = RECIPE_SETTINGS  # training and reporting (the recipes' values)
    data_root: str | None = None      # folder holding MNIST/raw; None: the run's, $LAYERIB_DATA_ROOT or a cache
    download: bool = True             # fetch missing MNIST files

    def __post_init__(self) -> None:
        check_names([c for c in self.x_critics if c != "auto"], [b for b in self.bounds if b != "auto"])
        if not self.x_critics and not self.estimate_y:
            raise ConfigError("nothing to estimate: give at least one critic or keep I(Y;L)")
        for v in self.noise_vars or ():
            GaussianChannel.check(v, zero_ok=True)  # 0: no noise (the recipes' H(L))
        for name in ("n_train", "n_test", "mc_samples"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v >= 2):
                raise ConfigError(f"{name} must be an integer >= 2, got {v!r}")
        if not self.widths or min(self.widths) < 1:
            raise ConfigError(f"widths must be positive integers, got {self.widths!r}")
        if self.layers is not None and (not self.layers or min(self.layers) < 1):
            raise ConfigError(f"layers must be 1-based indices, got {self.layers!r}")

    def to_dict(self) -> dict:
        return asdict(self)


#: input shape of a registered data set, for run folders written before model.pt stored it
_INPUT_SHAPES = {"mnist": (1, 28, 28), "fashion-mnist": (1, 28, 28), "kmnist": (1, 28, 28),
                 "cifar10": (3, 32, 32), "cifar100": (3, 32, 32)}


def load_run(run_dir: str | Path) -> tuple[LayeredNet, dict]:
    """The net and config dict of any run folder written by :func:`layerib.runs.training.train_net`.

    The net is rebuilt from the run's config through the model registry (``arch``, or the
    user's ``model`` factory, which must be importable here), for the input shape stored
    in ``model.pt`` (older runs: their data set's), and its weights are loaded.

    Raises:
        RunDirError: no such folder, no ``model.pt``, or a file that does not hold a layerib
            net (or one whose weights do not fit the rebuilt net).
        ConfigError: the run's ``model`` factory cannot be imported.
    """
    from layerib.config import effective_settings
    from layerib.models.registry import build_model
    path = Path(run_dir) / "model.pt"
    if not Path(run_dir).is_dir():
        raise RunDirError(f"run folder {run_dir} does not exist; pass a folder written by layerib train")
    if not path.is_file():
        raise RunDirError(f"{run_dir} has no model.pt; pass a finished run of layerib train")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        cfg = effective_settings(state["config"])
        shape = state.get("input_shape") or _INPUT_SHAPES.get(cfg["dataset"])
    except Exception as e:  # corrupt, truncated or foreign file: one line, not a traceback
        raise RunDirError(f"cannot load {path} ({type(e).__name__}); it is not a layerib "
                          "model.pt: retrain or pass another folder") from None
    if cfg.get("model") == "object":  # a net passed from Python: pickled whole in net.pt
        return _load_object_net(Path(run_dir)), state["config"]
    if shape is None:
        raise RunDirError(f"{path} does not record its input shape (written before layerib 0.2 "
                          f"for data set {cfg['dataset']!r}); retrain it with this version")
    net = build_model(cfg["arch"], tuple(shape), channels=cfg["channels"], widths=cfg["widths"],
                      params=cfg["arch_params"], model=cfg.get("model"))
    try:
        net.load_state_dict(state["net"])
    except Exception as e:  # noqa: BLE001 - weights of another net
        raise RunDirError(f"the weights in {path} do not fit the net its config describes "
                          f"({type(e).__name__}); retrain or pass another folder") from None
    return net.eval(), state["config"]


def _load_object_net(run_dir: Path) -> LayeredNet:
    """The whole net of a :func:`layerib.train_layerwise` run (``net.pt``, a pickle the library
    wrote: load only run folders you trust; the net's classes must be importable)."""
    path = run_dir / "net.pt"
    try:
        net = torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise RunDirError(f"{run_dir} has no net.pt (a train_layerwise run keeps its net "
                          "there); retrain it with out=") from None
    except Exception as e:  # noqa: BLE001 - e.g. the user's class is not importable here
        raise RunDirError(f"cannot load {path} ({type(e).__name__}: {e}); import the module "
                          "that defines your layers first, or run where it is importable") from None
    if not isinstance(net, LayeredNet):
        raise RunDirError(f"{path} does not hold a layerib net; retrain it with out=")
    return net.eval()


def _python_data(run_dir: Path):
    """The ``(train, test)`` tensors a :func:`layerib.train_layerwise` run saved in ``data.pt``."""
    path = Path(run_dir) / "data.pt"
    if not path.is_file():
        raise RunDirError(f"{run_dir} trained on data passed from Python and holds no data.pt "
                          "(too large to save); measure it with layerib.measure_layers instead")
    d = torch.load(path, map_location="cpu", weights_only=True)
    return tuple(ImageDataset(d[k]["x"], d[k]["y"], d[k]["num_classes"], f"python:{path}")
                 for k in ("train", "test"))


@torch.inference_mode()
def layer_features(net: LayeredNet, x: torch.Tensor, chunk: int | None = None) -> list[torch.Tensor]:
    """Every layer's output on ``x`` ``(N, ...)``, each flattened to ``(N, d_i)`` (float32),
    :func:`~layerib.utils.memory.outputs_in_chunks` of ``chunk`` rows (default 256)."""
    net.eval()
    return outputs_in_chunks(lambda h: [f.float() for f in net.features(h)], x, chunk)


def ground_truth(features: torch.Tensor, noise_var: float, n_samples: int, seed: int) -> dict:
    """I(X; L + eps) for X uniform over the rows of ``features`` (nats), with its stderr.

    At ``noise_var`` 0 this is the entropy of the distinct rows (exact, stderr 0).
    """
    if noise_var == 0:
        _, counts = torch.unique(features, dim=0, return_counts=True)
        p = counts.double() / len(features)
        return {"value": float(-(p * p.log()).sum()), "stderr": 0.0, "n_samples": 0,
                "n_points": len(features), "noise_var": 0.0}
    mc = mixture_mi(features.double(), noise_var, n_samples=n_samples,
                    generator=torch.Generator().manual_seed(seed))
    return asdict(mc)


def _recorded_path(run_dir: Path, dataset: str) -> str:
    """``npz:PATH`` / ``folder:PATH`` with a relative PATH (relative to where training ran) as
    the absolute path the run recorded (``config.json``'s ``data_source``), when that file
    still exists and PATH does not resolve from here; otherwise ``dataset`` unchanged.

    Raises:
        DataError: neither PATH (from here) nor the recorded path exists."""
    kind, sep, rel = dataset.partition(":")
    if not sep or kind not in ("npz", "folder") or Path(rel).expanduser().is_absolute() \
            or Path(rel).expanduser().exists():
        return dataset
    try:
        source = json.loads((run_dir / "config.json").read_text()).get("data_source") or ""
    except (OSError, ValueError, AttributeError):
        return dataset
    if source.startswith(kind + ":") and Path(source[len(kind) + 1:]).exists():
        return source
    where = f" (recorded as {source[len(kind) + 1:]})" if source.startswith(kind + ":") else ""
    raise DataError(f"the run's data set {dataset}{where} is not found from here; run layerib "
                    "estimate from the folder the run was trained in, or put the file back")


def take_subset(data: ImageDataset, n: int, seed: int) -> ImageDataset:
    if n >= len(data):
        return data
    idx = stratified_subset(data.labels, n / len(data), seed)
    return ImageDataset(data.images[idx], data.labels[idx], data.num_classes, data.source)


def _prepare(cfg: EstimateConfig):
    """Net, its description, and the (train, test) image sets."""
    if cfg.run_dir is not None:
        net, run_cfg = load_run(cfg.run_dir)
        data_root = cfg.data_root if cfg.data_root is not None else run_cfg.get("data_root")
        noise_vars = cfg.noise_vars or (float(run_cfg["noise_var"]),)
        source = {"source": "run", "run_dir": str(cfg.run_dir), "run_config": run_cfg}
        dataset = _recorded_path(Path(cfg.run_dir), run_cfg.get("dataset", "mnist"))
        cifar_source = run_cfg.get("cifar_source", "auto")
    else:
        torch.manual_seed(cfg.critic.seed)
        net = mlp((1, 28, 28), tuple(cfg.widths)).eval()
        data_root, noise_vars = cfg.data_root, cfg.noise_vars or (1.0,)
        source = {"source": "random", "init_seed": cfg.critic.seed}
        dataset, cifar_source = "mnist", "auto"
    if dataset == "python":  # a train_layerwise run: its data.pt
        train, test = _python_data(Path(cfg.run_dir))
    else:
        from layerib.data.registry import load_dataset
        kw = dict(data_root=data_root, download=cfg.download, cifar_source=cifar_source)
        train, test = (load_dataset(dataset, split, **kw) for split in ("train", "test"))
    train = take_subset(train, cfg.n_train, cfg.critic.seed)
    n_test_all = len(test)
    test = take_subset(test, cfg.n_test, cfg.critic.seed)
    if len(test) < 2 * cfg.critic.batch_size:
        fix = (f"pass --batch-size {max(2, len(test) // 2)} or lower" if len(test) >= cfg.n_test
               or len(test) >= n_test_all else "lower --batch-size or raise --n-test")
        raise ConfigError(f"{len(test)} held-out images give fewer than 2 batches of "
                          f"{cfg.critic.batch_size}; {fix}")
    layers = cfg.layers or tuple(range(1, len(net) + 1))
    if max(layers) > len(net):
        raise ConfigError(f"layer {max(layers)} does not exist in a {len(net)}-layer net")
    return net, source, tuple(float(v) for v in noise_vars), layers, train, test


def run_estimate(cfg: EstimateConfig, out: str | Path | None = None, *,
                 progress: bool = False, argv: list[str] | None = None) -> dict:
    """Estimate every chosen layer's MI and write ``out`` (JSON, atomically) when given.

    Returns:
        The result dict: settings, N, the number of classes, the requested B and its ln B
        (each estimate records the B it used: at most half its held-out rows), and per layer ``i_x`` (one entry per noise
        variance: ``truth`` and ``estimates`` by ``"critic/bound"``, each an
        :class:`~layerib.mi.protocol.MIResult` dict plus ``wall_seconds``) and ``i_y``.

    Raises:
        LayerIBError: bad settings, run folder or data (before anything is written).
    """
    t0 = time.perf_counter()
    net, source, noise_vars, layers, train, test = _prepare(cfg)
    s = cfg.critic
    feats_tr, feats_te = layer_features(net, train.images), layer_features(net, test.images)
    prior = torch.bincount(train.labels, minlength=train.num_classes).float() / len(train)
    n_tasks = len(layers) * (len(noise_vars) * (len(cfg.x_critics) + 1)
                             + (len(cfg.bounds) if cfg.estimate_y else 0))
    bar = progress_bar(total=n_tasks, desc="estimate", enabled=progress)
    out_layers = []
    for i in layers:
        f_tr, f_te = feats_tr[i - 1], feats_te[i - 1]
        entry = {"index": i, "width": f_tr.shape[1], "i_x": [], "i_y": {}}
        for nv in noise_vars:
            row = {"noise_var": nv, "truth": ground_truth(f_te, nv, cfg.mc_samples, s.seed + i),
                   "estimates": {}}
            bar.update()
            for critic in cfg.x_critics:
                for bound in (("auto",) if critic == "auto" else _named(cfg.bounds)):
                    t = time.perf_counter()
                    r, protocol = _estimate_x(critic, bound, train, test, f_tr, f_te, nv, s, i)
                    d = r.to_dict()  # every critic and bound: the same checks against the truth
                    d["flags"] = {**d["flags"], **truth_flag_reasons(
                        r, row["truth"]["value"], row["truth"]["stderr"])}
                    row["estimates"][critic if critic == "auto" else f"{critic}/{bound}"] = {
                        **d, "protocol": protocol, "wall_seconds": time.perf_counter() - t}
                bar.update()
            entry["i_x"].append(row)
        for bound in cfg.bounds if cfg.estimate_y else ():
            t = time.perf_counter()
            r, protocol = _estimate_y(bound, f_tr, train.labels, f_te, test.labels, prior, s, i)
            entry["i_y"][bound] = {**r.to_dict(), "protocol": protocol,
                                   "wall_seconds": time.perf_counter() - t}
            bar.update()
        out_layers.append(entry)
    bar.close()
    result = {**source, "widths": list(net.feature_dims), "noise_vars": list(noise_vars),
              "n_train": len(train), "n_test": len(test), "num_classes": train.num_classes,
              "batch_size": s.batch_size,
              "ln_batch": math.log(s.batch_size), "ln_n_test": math.log(len(test)),
              "data_source": train.source, "config": cfg.to_dict(),
              "argv": argv if argv is not None else sys.argv, "versions": versions(),
              "wall_seconds": time.perf_counter() - t0, "layers": out_layers}
    if out is not None:
        atomic_write_json(Path(out), result)
    return result


def _named(bounds) -> tuple[str, ...]:
    """The bounds a named critic runs under: ``auto`` means DV there."""
    return tuple(dict.fromkeys("dv" if b == "auto" else b for b in bounds))


def _options(s: EstimatorSettings) -> dict:
    """:func:`estimate_mi` options from the critic settings (``steps`` and ``passes`` belong
    to the held-out-batch recipes: estimate_mi stops its critics early)."""
    return dict(eval_batch_size=s.batch_size, hidden=s.hidden, n_centers=s.n_centers, lr=s.lr,
                baseline=s.baseline, ema_rate=s.ema_rate)


def _estimate_x(critic, bound, train, test, f_tr, f_te, nv, s, i):
    """One I(X; L + eps) entry: ``(MIResult, protocol name)``."""
    name = f"{critic}-{bound}"
    if nv > 0 and critic == "auto":  # the Monte-Carlo value's cross-check: the trainer's report's
        f_chk = check_subset(f_tr, CHECK_ROWS, s.seed + i)
        r = estimate_mi(f_chk, f_chk, noise_var=nv, seed=s.seed + i, test=(f_te, f_te),
                        **check_options(_options(s)))
        return dataclasses.replace(r, notes=r.notes + (
            f"the cross-check of the Monte-Carlo value: one critic training on {len(f_chk)} "
            "rows, no baseline (the Monte-Carlo value is the reference)",)), "estimate_mi"
    if nv > 0 and name in CANDIDATES:
        return estimate_mi(f_tr, f_tr, noise_var=nv, seed=s.seed + i, test=(f_te, f_te),
                           **{**_options(s), "candidates": (name,)}), "estimate_mi"
    if critic == "auto":
        critic, bound = "mixture", "dv"  # noise variance 0: H(L) by the recipe's narrow critic
    u_tr, u_te = (train.images, test.images) if critic == "mine" else (f_tr, f_te)
    return estimate_x(critic, bound, u_tr, f_tr, u_te, f_te, nv, s), "heldout-batches"


def _estimate_y(bound, f_tr, y_tr, f_te, y_te, prior, s, i):
    """One I(Y; L) entry: ``(MIResult, protocol name)``."""
    if bound == "auto":  # the trainer's report's I(Y; L): one restart, a baseline where needed
        return estimate_y_report(f_tr, y_tr, seed=s.seed + i, test=(f_te, y_te), restarts=1,
                                 **_options(s)), "estimate_mi"
    if f"heads-{bound}" in CANDIDATES:
        opts = {**_options(s), "candidates": (f"heads-{bound}",)}
        return estimate_mi(f_tr, y_tr, seed=s.seed + i, test=(f_te, y_te), **opts), "estimate_mi"
    return estimate_y(bound, f_tr, y_tr, f_te, y_te, prior, s), "heldout-batches"


def _cell(r: dict) -> str:
    flag = "^" if r["exceeds_ln_batch"] else " "
    base = "" if r["shuffled"] is None else f" [{r['shuffled']:+.2f}]"
    low, high = r.get("low"), r.get("high")
    spread = f"+-{r['stderr']:.3f}" if low is None else f" ({low:.3f},{high:.3f})"
    return f"{r['value']:.3f}{flag}{spread}{base}"


def format_table(result: dict) -> str:
    """A plain-text table of a :func:`run_estimate` result (nats)."""
    ln_c = math.log(result.get("num_classes", 10))
    lines = [f"N_train={result['n_train']} N_test={result['n_test']} (ln N_test="
             f"{result['ln_n_test']:.2f})  values in nats. I(X; L+eps): the Monte-Carlo value "
             "first (exact for X uniform on the held-out images, +- its Monte-Carlo error: the "
             "number to read), then the neural estimates as cross-checks: value (95 % interval) "
             "[shuffled-pairs baseline], ^ = above ln B of its held-out batches; flags, with "
             "their remedies, after each table"]
    for layer in result["layers"]:
        names = list(layer["i_x"][0]["estimates"]) if layer["i_x"] else []
        lines.append(f"layer {layer['index']} (width {layer['width']}): I(X; L+eps)")
        lines.append(f"  {'noise var':>10} {'Monte Carlo':>16} " + " ".join(f"{n:>34}" for n in names))
        flagged = []
        for row in layer["i_x"]:
            t = row["truth"]
            lines.append(f"  {row['noise_var']:>10.3g} {t['value']:>9.3f}+-{t['stderr']:.3f} "
                         + " ".join(f"{_cell(row['estimates'][n]):>34}" for n in names))
            for n in names:
                e = row["estimates"][n]
                if e.get("flags"):
                    flagged.append(f"    noise var {row['noise_var']:g} {n} ({e.get('critic')}, "
                                   f"{e['bound']}, B = {e['batch_size']}, ln B = {e['ln_batch']:.2f}): "
                                   + "; ".join(f"{k}: {v}" for k, v in e["flags"].items()))
        used = sorted({(e["batch_size"], e["ln_batch"]) for row in layer["i_x"]
                       for e in row["estimates"].values()})
        if used:
            lines.append("  I(X; L+eps) held-out batches: " + ", ".join(
                f"B = {b} (ln B = {lb:.2f})" for b, lb in used))
        for bound, r in layer["i_y"].items():
            lines.append(f"  I(Y; L) {bound:>8}: {_cell(r)}   ({r.get('critic') or 'label'} critic, "
                         f"{r['bound']}; B = {r['batch_size']}; ceiling "
                         + (f"H(Y) = {r['entropy']:.3f} of the test labels, " if r.get("entropy")
                            is not None else "H(Y) ")
                         + f"<= ln {result.get('num_classes', 10)} = {ln_c:.3f})")
            if r.get("flags"):
                flagged.append(f"    I(Y; L) {bound}: " + "; ".join(f"{k}: {v}" for k, v in r["flags"].items()))
        if flagged:
            lines.append("  FLAGS:")
            lines.extend(flagged)
    return "\n".join(lines)
