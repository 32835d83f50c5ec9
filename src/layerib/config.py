"""The one source of training defaults: :class:`TrainConfig`.

Precedence: these defaults, then a ``--config file.yaml``, then command-line
flags. Unknown keys and out-of-range values are :class:`ConfigError` s with a
one-line message. Every regulariser in play is a field here (docs/design.md, Sec. 5).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import re
import warnings
from dataclasses import dataclass, fields
from typing import Any

from layerib.data.registry import check_dataset_name
from layerib.errors import ConfigError
from layerib.models.registry import MODELS, arch_params, check_arch_params
from layerib.ib.objective import X_BOUNDS, Y_BOUNDS
from layerib.mi.critics import TRAINER_X_CRITICS, TRAINER_Y_CRITICS

#: ``dataset`` of a run whose data were passed from Python (:func:`layerib.train_layerwise`);
#: registered names and the ``folder:PATH`` / ``npz:PATH`` forms are checked by
#: :func:`layerib.data.registry.check_dataset_name`.
IN_MEMORY = "python"
#: ``model`` of a run whose net was passed from Python (pickled whole in the run's ``net.pt``).
OBJECT_MODEL = "object"
CIFAR_SOURCES = ("auto", "batches", "folder")
CRITIC_UPDATES = ("auto", "joint", "alternating")
CE_OPTIMIZERS = ("adam", "nesterov")  #: layerib.ib.endtoend.ce_optimizer's optimisers
BUDGET_SPLITS = ("time", "steps")  #: layerib.ib.budget.stage_weights's splits of a budget
LR_SCHEDULES = ("constant", "cosine")  #: layerib.utils.optim.scheduled_lr's schedules
PRECISIONS = ("float32", "bfloat16")  #: layerib.utils.precision.training_autocast's precisions
AUGMENTS = ("none", "crop_flip")
FROZEN_CACHES = ("auto", "memory", "disk", "recompute")
METHODS = ("ib", "iy", "ce")


class ArchParams(dict):
    """A net's parameters (``arch_params``): a read-only, hashable dict, so configs stay hashable."""

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(tuple(sorted((k, repr(v)) for k, v in self.items())))

    def _read_only(self, *args, **kwargs):
        raise TypeError("arch_params is read-only; use dataclasses.replace(config, arch_params={...})")

    __setitem__ = __delitem__ = update = pop = popitem = clear = setdefault = _read_only


@dataclass(frozen=True)
class TrainConfig:
    """Settings of one ``layerib train`` run (MI in nats, noise as a variance).

    One flat, frozen set of keys (the names of the CLI flags, the YAML keys and the
    ``**settings`` of :func:`layerib.train_layerwise`), grouped into the sections of
    :data:`SECTIONS` (data, model, IB objective, estimators, schedule, run):
    ``cfg.section("objective")`` gives one group as a dict. The comment after each
    field is its help text on the command line (:func:`field_help`).
    """

    # --- data
    dataset: str = "mnist"            # data set: a registered name (mnist, fashion-mnist, kmnist, cifar10, cifar100, digits) or folder:PATH / npz:PATH
    train_fraction: float = 1.0       # stratified seeded subset of the training set, in (0, 1]
    cifar_source: str = "auto"        # cifar10 copy: auto (python batches if present, else the JPEG zip/folder), batches, folder
    data_root: str | None = None      # folder holding the data sets (MNIST/raw, ...); None: $LAYERIB_DATA_ROOT or a cache
    download: bool = True             # fetch missing data from the standard mirrors (checksums checked)
    workers: int = 0                  # layerib train: >= 1 reads every batch of the (loaded) data sets through a torch DataLoader with this many worker processes, the same batches and result as 0 (index the tensors in this process); not with val_refit (pass --val-refit false or --val-fraction 0)
    # --- model
    arch: str = "mlp"                 # built-in net (layerib.models.registry.MODELS): mlp (784-512-512-10), conv (conv blocks, then FC layers), vgg (six convs 64-64-128-128-256-256 with batch norm in three units, then a linear layer), resnet, airbench (a 2x2 patch conv, three conv blocks 64-256-256, a linear head)
    widths: tuple[int, ...] | None = None  # widths of the FC layers (mlp: every layer; conv, vgg, resnet: those after the convs); the last has no nonlinearity; None: the arch's default
    channels: tuple[int, ...] | None = None  # conv, vgg, resnet: output channels of each conv block / conv / stage; None: the arch's default
    arch_params: dict = dataclasses.field(default_factory=dict)  # the arch's other parameters as KEY=VALUE, e.g. vgg pool_after=2,4,6 unit=conv; absent: the arch's default
    model: str | None = None          # PACKAGE.MODULE:FACTORY of a function (input_shape) -> list of layer-wise units or an nn.Sequential (a Linear or ConvNd starts a unit; norms, activations, pooling, dropout join the one before); importable (installed or on PYTHONPATH); replaces arch
    # --- IB objective
    method: str = "ib"                # ib: I(Y;L)-beta*I(X;L+eps) per layer; iy: beta=0; ce: end-to-end cross-entropy
    beta: float | None = None         # IB trade-off beta of Eq. 2 (ignored for iy, ce); None: 600 / number of training images
    noise_var: float = 100.0          # sigma^2 of the measuring noise eps ~ N(0, sigma^2 I), in squared units of the layer output
    # --- estimators
    y_bound: str = "infonce"          # bound on I(Y;L): infonce (per-sample over the exact classes) or dv (MINE, the paper)
    x_bound: str = "infonce"          # bound on I(X;L+eps) the layer minimises: infonce (unexploitable) or dv (the paper)
    y_critic: str = "concat"          # I(Y;L) critic: concat MLP on (l, onehot y) (the paper), heads (MLP(l)_y, faster) or convhead (3x3 conv, BN, ReLU, average pool, linear on the map y_pool gives: the greedy layer-wise papers' auxiliary head; needs y_pool >= 1)
    x_critic: str = "gaussian"        # AA-MINE inner critic: gaussian (exact Gaussian term + learnt q(z)) or concat MLP (the paper)
    x_marginal: str = "all"           # AA-MINE marginal pairs: all off-diagonal pairs, or one shuffle (a derangement)
    critic_hidden: int = 128          # hidden width of the critics' MLPs
    critic_steps: int = 1             # k critic steps per layer step (alternating update)
    critic_update: str = "auto"       # joint: one pass updates critic and layer; alternating: critic steps then a layer step (the paper); auto: joint where exact
    layer_first: bool = False         # alternating only: the layer steps before the critic updates of the same batch (the joint order; the paper's order collapses at beta 1e-2..1e-1)
    y_input_norm: str = "none"        # how the label critic reads L: none (as it is), rms (divided by the batch RMS) or standard (also centred): scale-invariant I(Y;L)
    y_pool: int = 0                   # what the label critics read of a conv layer's (C, H, W) output, in layer-wise training and in every run's final MI report: 0 the flattened maps; K each channel averaged over a K x K grid (C*K*K inputs; still a lower bound on I(Y; L)); vector outputs as they are
    ema_rate: float = 0.01            # MINE moving-average rate for the DV gradient (1 = no correction)
    lr_critic: float = 1e-3           # Adam learning rate of the critics
    mi_eval_batch_size: int = 512     # batch size B of held-out MI estimates (ln B is their ceiling)
    mi_restarts: int = 1              # final MI report (estimate_mi on each layer): critic restarts of I(Y;L) averaged into its value and interval (I(X;L+eps) leads with its exact Monte-Carlo value; its AA-MINE cross-check trains once)
    mi_baseline: bool = True          # final MI report: fit I(Y;L)'s critic on shuffled pairs (the baseline, truth 0) where its interval's lower end is below 0.1 nats (above, the interval already excludes 0); false: never
    mi_max_rows: int = 10000          # final MI report: at most this many training rows (seeded subset) fit the critics; the value is on the test set
    mi_max_steps: int = 4000          # final MI report: step limit of each critic fit (early stopping on a validation split usually ends it sooner)
    # --- schedule
    batch_size: int = 256             # training batch size for layers, critics and CE
    epochs_per_layer: int = 5         # IB/IY: epochs for each layer stage (see min_steps_per_layer)
    min_steps_per_layer: int = 600    # IB/IY: at least this many steps per layer (small subsets); also read-out, CE x layers
    ce_epochs: int = 15               # CE: end-to-end epochs (at least min_steps_per_layer * layers steps)
    budget_minutes: float | None = None  # train within this wall-clock budget (minutes; None: off): each stage (a layer; the read-out with 0.05 of a layer's share; CE's one stage) gets its share of the time left (at least a quarter of its part of the whole budget) and plans its steps (and its learning-rate schedule) for it from a timed probe, replacing epochs_per_layer, readout_epochs, ce_epochs and min_steps_per_layer; the final MI report comes on top; not with val_refit (pass --val-refit false or --val-fraction 0) or budget_extend > 1
    budget_split: str = "time"        # budget_minutes, layer-wise: how the layer stages share the budget: time (each layer stage the same part of the time left) or steps (each the same number of steps: every layer stage is timed by a probe before the first, and its share is in proportion to its seconds per step)
    budget_last_layer_weight: float = 1.0  # budget_minutes, layer-wise: the last layer stage's weight beside each other layer's (1 under time), e.g. 0.25 to give a cheap linear head a quarter of a conv block's time and the conv blocks the rest; in (0, 1]
    ce_optimizer: str = "adam"        # CE: adam, or nesterov (SGD with Nesterov momentum 0.9: give it an SGD rate, e.g. --lr-layer 0.05, with --lr-schedule cosine); the read-out keeps Adam
    label_smoothing: float = 0.0      # CE: label smoothing of the end-to-end cross-entropy, in [0, 1) (airbench's recipe: 0.2); the read-out has none
    readout_epochs: int = 5           # epochs of the linear read-out on the frozen net (CE on cached outputs)
    lr_layer: float = 1e-3            # Adam learning rate of the layer being trained (and of CE training)
    lr_readout: float = 1e-2          # Adam learning rate of the read-out
    lr_schedule: str = "constant"     # learning-rate schedule of each layer stage and of CE: constant (the paper's) or cosine (lr_layer decayed to 0 over the stage's planned steps; the critics and the read-out keep their rates)
    weight_decay: float = 0.0         # L2 weight decay on trained layers (off: the IB term regularises)
    grad_clip: float | None = None    # clip layer and critic gradient norms to this value (None: off)
    augment: str = "none"             # none, or crop_flip (4-pixel padded random crop + horizontal flip per batch; layer stages then recompute the frozen prefix per batch)
    frozen_cache: str = "auto"        # the frozen layers' outputs: memory, disk (a float32 file in the run folder, read per batch), recompute (a stage's input per batch), auto (recompute when augmenting; else memory within cache_budget_mb, then disk); with val_refit the refit's outputs stay in memory
    cache_budget_mb: float = 256.0    # frozen_cache auto: MiB of frozen outputs (train, test, validation sets) held in memory in all; later ones go to disk
    val_fraction: float = 0.2         # share of the training set held out (stratified, seeded) to early-stop every stage (then refitted on all rows: val_refit); 0: off; never the test set
    patience: int = 5                 # early stopping: validation checks without a better score before a stage stops (0: run all steps, keep the best)
    val_checks: int = 20              # early stopping: validation checks per stage (read-out and CE: accuracy; layer stages: val_metric)
    val_metric: str = "accuracy"      # layer stages' early-stopping score on the validation split: i_y (the I(Y;L) bound, nats) or accuracy (the label critic's argmax)
    budget_extend: int = 1            # early stopping: a stage (layer, read-out, CE) whose validation score still improves at its step budget (epochs_per_layer, readout_epochs, ce_epochs, min_steps_per_layer) goes on, checked at the same interval, until patience runs out or this many times the budget; 1 (default): stop at the budget (2 measured on all of MNIST: no better, docs/results/early_stopping.md)
    val_refit: bool = True            # early stopping: each stage finds its best validation step s* on a copy of the net trained on the fit rows, then restarts from its initial weights on all training rows (fit + validation) for s* x n_all/n_fit steps (the same epochs), without stopping
    # --- run
    seed: int = 0                     # seeds the subset, init, batches and noise
    device: str = "cpu"               # cpu, cuda, or auto (cuda when torch sees a GPU)
    evals_per_layer: int = 10         # held-out MI evaluations (metrics.jsonl) per layer stage
    infoplane_evals: int = 10         # CE: every layer's held-out (I(X;L+eps), I(Y;L)) at step 0 and this many times more (0: off)
    infoplane_critic_steps: int = 100  # CE: label-critic steps before each of those evaluations (critics kept between them)
    checkpoint_every: int = 500       # save checkpoint.pt every this many steps of a stage (0: only at stage ends)
    precision: str = "float32"        # training passes only: float32, or bfloat16 (torch.autocast of the layers' and CE's forward passes, conv weights channels-last; the critics, every MI estimate, validation score and accuracy stay float32)
    flush_denormal: bool = True       # CPU: flush float32 denormals to zero during the run (torch.set_flush_denormal; underflowing InfoNCE weights made conv critics' steps up to 1.65x slower); reset to off after

    def __post_init__(self) -> None:
        if isinstance(self.arch_params, dict) and not isinstance(self.arch_params, ArchParams):
            object.__setattr__(self, "arch_params", ArchParams(self.arch_params))
        validate(self)

    def to_dict(self) -> dict[str, Any]:
        """All settings as JSON-ready values."""
        d = dataclasses.asdict(self)
        for key in ("widths", "channels"):
            d[key] = None if d[key] is None else list(d[key])
        d["arch_params"] = {k: list(v) if isinstance(v, tuple) else v for k, v in self.arch_params.items()}
        return d

    def section(self, name: str) -> dict[str, Any]:
        """The fields of one section of :data:`SECTIONS` (e.g. ``"objective"``) as a dict."""
        return {k: getattr(self, k) for k in SECTIONS[name][1]}

    @property
    def effective_beta(self) -> float:
        """beta actually used: 0 for ``iy`` (and unused for ``ce``); resolve None first."""
        if self.method != "ib":
            return 0.0
        if self.beta is None:
            raise ValueError("beta is None (auto): resolve it with resolve_beta(config, n_train)")
        return self.beta


def _field_comments() -> tuple[dict[str, str], dict[str, list[str]]]:
    """``({field: its trailing comment}, {section title: [fields]})`` read from this module's source."""
    helps: dict[str, str] = {}
    groups: dict[str, list[str]] = {}
    title = "settings"
    for line in inspect.getsource(TrainConfig).splitlines():
        head = re.match(r"\s*# --- (.+)$", line)
        if head:
            title = head.group(1).strip()
            continue
        m = re.match(r"\s*(\w+): [^=]+=.*?#\s*(.+)$", line)
        if m and m.group(1) in {f.name for f in fields(TrainConfig)}:
            helps[m.group(1)] = m.group(2).strip()
            groups.setdefault(title, []).append(m.group(1))
    return helps, groups


_HELP, _GROUPS = _field_comments()
#: section key -> (title, field names): data, model, objective, estimators, schedule, run.
SECTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    key: (title, tuple(_GROUPS[title])) for key, title in
    (("data", "data"), ("model", "model"), ("objective", "IB objective"),
     ("estimators", "estimators"), ("schedule", "schedule"), ("run", "run"))}


def field_help(name: str) -> str:
    """The help text of a :class:`TrainConfig` field: the comment after it in this module."""
    return _HELP.get(name, "")


def auto_beta(n_train: int) -> float:
    """Default beta for a training set of ``n_train`` items: ``600 / n_train``.

    A regulariser's weight per training example should shrink like 1/N (as a
    prior's does in a MAP objective). The constant is measured on MNIST with
    noise variance 100 (see the core issue's note; alternating updates, 600 steps
    per layer): beta = 1 at 600 images (MNIST 1 %: 84.7 % test accuracy, against
    76.5 % with the penalty saturated) and beta = 0.01 at 60000 images (97.98 %,
    against 97.20 % with beta = 1). With today's defaults (joint updates) beta = 0.01
    gives 98.32 % on all of MNIST (3 seeds).
    """
    return 600.0 / n_train


def resolve_beta(cfg: "TrainConfig", n_train: int) -> "TrainConfig":
    """``cfg`` with ``beta`` set: :func:`auto_beta` when it is None, else unchanged."""
    return cfg if cfg.beta is not None else dataclasses.replace(cfg, beta=auto_beta(n_train))


def _joint_exact(d: dict) -> bool:
    return (d["y_bound"] == "infonce" and d["x_bound"] == "infonce" and d["x_critic"] == "gaussian"
            and d["critic_steps"] == 1)


def joint_update_exact(c: "TrainConfig") -> bool:
    """Whether one shared pass is exact gradient ascent for critic and layer (see
    :mod:`layerib.ib.layerwise`): InfoNCE bounds on both terms, the q-free Gaussian
    AA-MINE critic, and one critic step per layer step."""
    return _joint_exact(dataclasses.asdict(c))


def resolve_critic_update(c: "TrainConfig") -> str:
    """``critic_update`` as used: ``auto`` is ``joint`` where that is exact, else ``alternating``."""
    if c.critic_update != "auto":
        return c.critic_update
    return "joint" if joint_update_exact(c) else "alternating"


#: What a key meant in configs written before it existed, where that differs from today's
#: default: runs from before ``critic_update`` always alternated; runs from before
#: ``val_refit`` never refitted, those from before early stopping had none, and those
#: from before ``flush_denormal`` kept denormals.
LEGACY_VALUES = {"critic_update": "alternating", "val_fraction": 0.0, "frozen_cache": "auto",
                 "val_refit": False, "val_metric": "i_y", "flush_denormal": False}

#: Keys that never change what a run computes: where the data is read from, how often
#: checkpoints are saved and how many DataLoader workers read the batches (the same batches
#: and result as 0). Runs whose configs differ only in these are the same run (resume,
#: sweeps, Table 1's finished cells).
RESULT_NEUTRAL_KEYS = ("data_root", "download", "checkpoint_every", "workers")

#: Keys of configs written by earlier versions that no longer exist, with why. Stored configs
#: holding them still load (the key is dropped, with a warning naming it).
RETIRED_KEYS = {"mi_eval_epochs": "the final MI report now early-stops its critics "
                                  "(layerib.estimate_mi); see mi_restarts and mi_max_rows"}


def effective_settings(stored: dict[str, Any]) -> dict[str, Any]:
    """A stored config dict (``config.json``, ``point.yaml``) as the settings it ran with.

    Keys it lacks take :data:`LEGACY_VALUES`, else today's defaults; ``critic_update``
    ``auto`` is resolved to the scheme it selects. Use this to compare stored configs.
    """
    stored = {k: v for k, v in stored.items() if k not in RETIRED_KEYS}
    full = {**TrainConfig().to_dict(), **LEGACY_VALUES, **stored}
    full.update(_migrate_model_keys(full))
    if full.get("critic_update") == "auto":
        try:
            full["critic_update"] = "joint" if _joint_exact(full) else "alternating"
        except KeyError:
            pass
    return full


#: ``channels`` and ``widths`` were written into every config before each net kept its own
#: defaults; a stored value for a net that has no such parameter never had an effect.
_OLD_MODEL_DEFAULTS = {"channels": (32, 64), "widths": (512, 512, 10)}


def _migrate_model_keys(values: dict[str, Any], only: dict[str, Any] | None = None) -> dict[str, Any]:
    """The ``channels`` / ``widths`` of ``values`` (those in ``only``, if given) with the old
    written defaults dropped (None) where ``values["arch"]`` has no such parameter; for
    :func:`effective_settings` (``only`` None) also those equal to the arch's own default.

    Configs written before each net kept its own defaults hold ``channels: [32, 64]`` for
    the MLP, which ignored it; dropping it changes nothing the run computed. Other values
    are kept, and :func:`validate` names them.
    """
    arch, out = values.get("arch", "mlp"), {}
    if values.get("model") is not None or arch not in MODELS:
        return out
    known = arch_params(arch)
    for key, old in _OLD_MODEL_DEFAULTS.items():
        v = values.get(key)
        if (only is None or key in only) and key not in known and v is not None and tuple(v) == old:
            out[key] = None
        elif only is None and key in known and v is not None and tuple(v) == known[key]:
            out[key] = None  # the arch's own default, written out: the same run as None
    return out


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate(c: TrainConfig) -> None:
    """Check every field's type and range; raise :class:`ConfigError` naming the first bad one."""
    for name in ("dataset", "method", "val_metric", "x_marginal", "y_bound", "x_bound", "x_critic", "y_critic", "device",
                 "arch", "cifar_source", "augment", "critic_update", "frozen_cache", "lr_schedule", "precision", "budget_split"):
        v = getattr(c, name)
        _check(isinstance(v, str), f"{name} must be a string, got {v!r}")
    _check(c.data_root is None or isinstance(c.data_root, str),
           f"data_root must be a folder name (a string), got {c.data_root!r}")
    _check(isinstance(c.download, bool), f"download must be true or false, got {c.download!r}")
    _check(isinstance(c.flush_denormal, bool),
           f"flush_denormal must be true or false, got {c.flush_denormal!r}")
    if c.dataset != IN_MEMORY:
        check_dataset_name(c.dataset)
    _check(c.model is None or c.model == OBJECT_MODEL or (isinstance(c.model, str) and re.fullmatch(
        r"[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_]\w*", c.model) is not None),
           f"model must be PACKAGE.MODULE:FACTORY (e.g. mynets.digits:layers), got {c.model!r}")
    _check(c.method in METHODS, f"unknown method {c.method!r}; choose one of {', '.join(METHODS)}")
    _check(c.beta is None or (_finite(c.beta) and c.beta >= 0),
           f"--beta must be a finite number >= 0, got {c.beta}")
    _check(_finite(c.noise_var) and c.noise_var > 0,
           f"--noise-var must be a finite number > 0 (the MI is infinite at 0), got {c.noise_var}")
    _check(_finite(c.val_fraction) and 0 <= c.val_fraction < 1,
           f"--val-fraction must be in [0, 1), got {c.val_fraction}")
    _check(_finite(c.train_fraction) and 0 < c.train_fraction <= 1,
           f"--train-fraction must be in (0, 1], got {c.train_fraction}")
    for name in ("seed", "batch_size", "epochs_per_layer", "min_steps_per_layer", "ce_epochs",
                 "readout_epochs", "critic_steps", "critic_hidden", "mi_restarts", "mi_max_rows", "mi_max_steps",
                 "mi_eval_batch_size", "evals_per_layer", "infoplane_evals",
                 "infoplane_critic_steps", "checkpoint_every", "patience", "val_checks", "budget_extend"):
        v = getattr(c, name)
        low = 0 if name in ("seed", "min_steps_per_layer", "infoplane_evals",
                            "checkpoint_every", "patience") else 1
        _check(isinstance(v, int) and not isinstance(v, bool) and v >= low,
               f"{name} must be an integer >= {low}, got {v!r}")
    _check(c.batch_size >= 2 and c.mi_eval_batch_size >= 2, "batch sizes must be at least 2")
    for name in ("lr_layer", "lr_critic", "lr_readout"):
        v = getattr(c, name)
        _check(_finite(v) and v > 0, f"{name} must be a finite number > 0, got {v!r}")
    _check(_finite(c.ema_rate) and 0 < c.ema_rate <= 1, f"ema_rate must be in (0, 1], got {c.ema_rate}")
    _check(_finite(c.weight_decay) and c.weight_decay >= 0, f"weight_decay must be >= 0, got {c.weight_decay}")
    _check(c.grad_clip is None or (_finite(c.grad_clip) and c.grad_clip > 0),
           f"grad_clip must be None or > 0, got {c.grad_clip}")
    _check(c.x_marginal in ("all", "shuffle"), f"x_marginal must be 'all' or 'shuffle', got {c.x_marginal!r}")
    _check(c.y_bound in Y_BOUNDS, f"y_bound must be one of {', '.join(Y_BOUNDS)}, got {c.y_bound!r}")
    _check(c.x_bound in X_BOUNDS, f"x_bound must be one of {', '.join(X_BOUNDS)}, got {c.x_bound!r}")
    _check(isinstance(c.layer_first, bool), f"layer_first must be true or false, got {c.layer_first!r}")
    _check(isinstance(c.val_refit, bool), f"val_refit must be true or false, got {c.val_refit!r}")
    _check(isinstance(c.workers, int) and not isinstance(c.workers, bool) and c.workers >= 0,
           f"--workers must be an integer >= 0, got {c.workers!r}")
    _check(not (c.workers > 0 and c.val_refit and c.val_fraction > 0),
           f"--workers {c.workers} streams the data, which val_refit does not do yet (it holds the "
           "training rows in memory); pass --val-refit false (or --val-fraction 0), or --workers 0")
    _check(isinstance(c.y_pool, int) and not isinstance(c.y_pool, bool) and c.y_pool >= 0,
           f"y_pool must be an integer >= 0 (0: the label critic reads the flattened output), "
           f"got {c.y_pool!r}")
    _check(c.y_input_norm in ("none", "rms", "standard"),
           f"y_input_norm must be none, rms or standard, got {c.y_input_norm!r}")
    _check(c.val_metric in ("i_y", "accuracy"),
           f"val_metric must be 'i_y' or 'accuracy', got {c.val_metric!r}")
    _check(c.y_critic != "convhead" or c.y_pool >= 1,
           "y_critic convhead reads a conv layer's map through y_pool's grid; pass --y-pool K "
           "(K >= the map's side: the whole map)")
    _check(c.y_critic in TRAINER_Y_CRITICS,
           f"y_critic must be one of {', '.join(TRAINER_Y_CRITICS)}, got {c.y_critic!r}")
    _check(c.x_critic in TRAINER_X_CRITICS,
           f"x_critic must be one of {', '.join(TRAINER_X_CRITICS)}, got {c.x_critic!r}")
    for key in ("widths", "channels"):
        v = getattr(c, key)
        _check(v is None or (isinstance(v, tuple) and len(v) >= 1
                             and all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in v)),
               f"{key} must be positive integers (or null: the arch's default), got {v!r}")
    _check(c.arch in MODELS, f"unknown arch {c.arch!r}; choose one of {', '.join(MODELS)}, "
           "or pass model: PACKAGE.MODULE:FACTORY")
    _check(isinstance(c.arch_params, dict) and all(isinstance(k, str) for k in c.arch_params),
           f"arch_params must be a mapping of parameter names to values, got {c.arch_params!r}")
    if c.model is None and c.dataset != IN_MEMORY:
        check_arch_params(c.arch, {**c.arch_params, **{k: getattr(c, k) for k in ("widths", "channels")
                                                        if getattr(c, k) is not None}})
    _check(c.cifar_source in CIFAR_SOURCES,
           f"cifar_source must be one of {', '.join(CIFAR_SOURCES)}, got {c.cifar_source!r}")
    _check(c.augment in AUGMENTS, f"augment must be one of {', '.join(AUGMENTS)}, got {c.augment!r}")
    _check(c.lr_schedule in LR_SCHEDULES,
           f"lr_schedule must be one of {', '.join(LR_SCHEDULES)}, got {c.lr_schedule!r}")
    _check(not (c.lr_schedule == "cosine" and c.budget_extend > 1),
           f"lr_schedule 'cosine' ends at the step budget, so budget_extend {c.budget_extend} could "
           "only add steps at a rate of 0; use budget_extend 1 or lr_schedule constant")
    _check(c.budget_minutes is None or (_finite(c.budget_minutes) and c.budget_minutes > 0),
           f"budget_minutes must be a number of minutes > 0 (or None: off), got {c.budget_minutes!r}")
    _check(c.budget_minutes is None or not (c.val_refit and c.val_fraction > 0),
           "budget_minutes plans each stage once, which a val_refit search and refit cannot "
           "share; pass --val-refit false (early stopping) or --val-fraction 0")
    _check(c.budget_minutes is None or c.budget_extend == 1,
           f"budget_minutes plans each stage's steps for its share, so budget_extend "
           f"{c.budget_extend} cannot run past them; use budget_extend 1")
    _check(_finite(c.budget_last_layer_weight) and 0 < c.budget_last_layer_weight <= 1,
           f"budget_last_layer_weight must be in (0, 1] (1: the last layer's time is a layer's), "
           f"got {c.budget_last_layer_weight!r}")
    _check(c.budget_split in BUDGET_SPLITS,
           f"budget_split must be one of {', '.join(BUDGET_SPLITS)}, got {c.budget_split!r}")
    _check(c.ce_optimizer in CE_OPTIMIZERS,
           f"ce_optimizer must be one of {', '.join(CE_OPTIMIZERS)}, got {c.ce_optimizer!r}")
    _check(_finite(c.label_smoothing) and 0 <= c.label_smoothing < 1,
           f"label_smoothing must be in [0, 1), got {c.label_smoothing!r}")
    _check(c.precision in PRECISIONS,
           f"precision must be one of {', '.join(PRECISIONS)}, got {c.precision!r}")
    _check(c.frozen_cache in FROZEN_CACHES,
           f"frozen_cache must be one of {', '.join(FROZEN_CACHES)}, got {c.frozen_cache!r}")
    _check(_finite(c.cache_budget_mb) and c.cache_budget_mb >= 0,
           f"cache_budget_mb must be a finite number >= 0, got {c.cache_budget_mb!r}")
    _check(not (c.augment != "none" and c.frozen_cache in ("memory", "disk") and c.method != "ce"),
           f"augment={c.augment!r} with frozen_cache={c.frozen_cache!r} would train on one fixed "
           "cache; use frozen_cache 'recompute' or 'auto'")
    _check(c.critic_update in CRITIC_UPDATES,
           f"critic_update must be one of {', '.join(CRITIC_UPDATES)}, got {c.critic_update!r}")
    if c.critic_update == "joint":
        _check(c.y_bound == "infonce" and c.x_bound == "infonce" and c.x_critic == "gaussian",
               "critic_update='joint' needs y_bound='infonce', x_bound='infonce' and "
               "x_critic='gaussian' (then the critics and the layer ascend the same objective); "
               f"got y_bound={c.y_bound!r}, x_bound={c.x_bound!r}, x_critic={c.x_critic!r}: "
               "use critic_update='alternating' or 'auto' with these")
        _check(c.critic_steps == 1, f"critic_update='joint' makes one critic step per layer step; "
               f"got critic_steps={c.critic_steps}: set it to 1 or use critic_update='alternating' "
               "(or 'auto')")
    _check(c.device in ("cpu", "cuda", "auto") or c.device.startswith("cuda:"),
           f"device must be cpu, cuda or auto, got {c.device!r}")


#: named estimator bundles (``--estimators NAME``, ``estimators=`` in YAML and the API), applied
#: before any other key. ``paper``: the paper's choices (Elad et al. 2019, Sec. 3-4): MINE
#: (the DV bound with its moving-average gradient) for I(Y; L); AA-MINE with an MLP critic on
#: (F_i(x), z) under DV, its marginal pairs drawn as MINE draws them (one in-batch shuffle:
#: B pairs a step; all B(B-1) off-diagonal pairs through the MLP critic made an MNIST 1 % run
#: over 10 minutes, against 30 s for the defaults); alternating critic and layer steps.
ESTIMATOR_PRESETS: dict[str, dict[str, Any]] = {
    "ours": {"y_bound": "infonce", "x_bound": "infonce", "x_critic": "gaussian",
             "x_marginal": "all", "critic_update": "auto"},
    "paper": {"y_bound": "dv", "x_bound": "dv", "x_critic": "concat", "x_marginal": "shuffle",
              "critic_update": "alternating"},
}


def config_from_dict(values: dict[str, Any], base: TrainConfig | None = None) -> TrainConfig:
    """Override ``base`` (default: the defaults) with ``values``; unknown keys are errors.

    Raises:
        ConfigError: an unknown key, or a value of the wrong type or range.
    """
    base = base or TrainConfig()
    values = dict(values)
    preset = values.pop("estimators", None)
    if preset is not None:
        _check(preset in ESTIMATOR_PRESETS, f"unknown estimators preset {preset!r}; choose one "
               f"of {', '.join(ESTIMATOR_PRESETS)}")
        values = {**ESTIMATOR_PRESETS[preset], **values}
    for key in sorted(set(values) & set(RETIRED_KEYS)):
        warnings.warn(f"config key {key!r} is retired and ignored: {RETIRED_KEYS[key]}", stacklevel=2)
        del values[key]
    names = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - names)
    _check(not unknown, f"unknown config key(s) {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}")
    values = dict(values)
    for key in ("widths", "channels"):
        if key in values and isinstance(values[key], list):
            values[key] = tuple(values[key])
    if isinstance(values.get("arch_params"), dict):
        values["arch_params"] = {k: tuple(v) if isinstance(v, list) else v
                                 for k, v in values["arch_params"].items()}
    values.update(_migrate_model_keys({"arch": base.arch, "model": base.model, **values},
                                      only=values))
    types = {f.name: str(f.type) for f in fields(TrainConfig)}
    for k, v in values.items():
        if "float" not in types[k]:
            continue
        if isinstance(v, int) and not isinstance(v, bool):  # ints are fine where floats are expected
            values[k] = float(v)
        elif isinstance(v, str):  # PyYAML reads 1e-3 (no dot) as a string: take it as the number
            try:
                values[k] = float(v)
            except ValueError:
                pass  # not a number: validate() names the field
    return dataclasses.replace(base, **values)
