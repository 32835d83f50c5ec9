"""``layerib train``: flags -> :class:`~layerib.config.TrainConfig` -> :func:`~layerib.runs.training.run_training`.

Every flag is generated from a :class:`~layerib.config.TrainConfig` field (same name,
dashes for underscores; its help is the field's comment, grouped by config section),
so the flags, the YAML keys and the Python API's ``**settings`` cannot drift apart.
Settings: the defaults, then ``--config file.yaml``, then flags.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from layerib.config import (AUGMENTS, BUDGET_SPLITS, CE_OPTIMIZERS, CIFAR_SOURCES, CRITIC_UPDATES,
                            ESTIMATOR_PRESETS, FROZEN_CACHES, LR_SCHEDULES, METHODS, PRECISIONS, SECTIONS,
                            TrainConfig, config_from_dict, field_help)
from layerib.errors import ConfigError
from layerib.models.registry import MODELS, arch_params
from layerib.ib.objective import X_BOUNDS, Y_BOUNDS
from layerib.mi.critics import TRAINER_X_CRITICS, TRAINER_Y_CRITICS

#: fields whose values are one of a fixed set (argparse lists them in --help)
#: (arch is read from layerib.models.registry.MODELS when the parser is built)
CHOICES = {"method": METHODS, "cifar_source": CIFAR_SOURCES, "augment": AUGMENTS,
           "critic_update": CRITIC_UPDATES, "x_marginal": ("all", "shuffle"),
           "y_bound": Y_BOUNDS, "x_bound": X_BOUNDS,
           "y_critic": tuple(TRAINER_Y_CRITICS), "x_critic": tuple(TRAINER_X_CRITICS),
           "val_metric": ("i_y", "accuracy"), "y_input_norm": ("none", "rms", "standard"),
           "frozen_cache": FROZEN_CACHES, "lr_schedule": LR_SCHEDULES,
           "precision": PRECISIONS, "ce_optimizer": CE_OPTIMIZERS,
           "budget_split": BUDGET_SPLITS}


def _ints(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers such as 512,512,10, got {text!r}") from None


def _bool(text: str) -> bool:
    if text.lower() in ("true", "1", "yes"):
        return True
    if text.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")


def _param(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--arch-params``: integers, comma-separated integers, true/false, or text."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"must be KEY=VALUE such as pool_after=2,4,6, got {text!r}")
    if value.lower() in ("true", "false"):
        return key, value.lower() == "true"
    try:
        return key, (tuple(int(w) for w in value.split(",")) if "," in value else int(value))
    except ValueError:
        return key, value


def _shown(value) -> str:
    """A default as a flag would take it: ``512,512,10``, ``true``."""
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) or value is None else str(value)


def _flag_type(annotation: str):
    if annotation == "bool":
        return _bool
    if "tuple" in annotation:
        return _ints
    for name, typ in (("float", float), ("int", int)):
        if name in annotation:
            return typ
    return str


def add(sub) -> None:
    """Add the ``train`` parser, one flag per config field, grouped by section."""
    p = sub.add_parser("train", help="train one net (layer-wise IB, I(Y;L) only, or CE)",
                       description="Train a net layer by layer with the IB objective "
                                   "(Elad et al. 2019, Eq. 2), or a baseline, and write a run folder. "
                                   "MI in nats; noise as a variance.")
    defaults, types = TrainConfig(), {f.name: str(f.type) for f in fields(TrainConfig)}
    for title, names in SECTIONS.values():
        group = p.add_argument_group(title)
        for name in names:
            if name == "download":
                group.add_argument("--offline", action="store_true",
                                   help="never download data (sets download: false)")
                continue
            default = getattr(defaults, name)
            shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
            kw = {"type": _flag_type(types[name]), "default": None,
                  "help": f"{field_help(name)} (default: {shown})".replace("%", "%%")}
            if name in ("widths", "channels", "arch_params"):  # each net's own defaults, from the registry
                own = {a: {k: v for k, v in arch_params(a).items()
                           if (k == name if name != "arch_params" else k not in ("widths", "channels"))}
                       for a in MODELS}
                shown = "; ".join(f"{a}: " + " ".join(f"{k}={_shown(v)}" for k, v in d.items())
                                  for a, d in own.items() if d)
                kw["help"] = f"{field_help(name)} ({shown})".replace("%", "%%")
            if name == "arch_params":
                kw.update(type=_param, nargs="+", metavar="KEY=VALUE")
            if name in CHOICES or name == "arch":
                kw["choices"] = tuple(MODELS) if name == "arch" else CHOICES[name]
            elif kw["type"] is _bool:  # help reads --val-refit {true,false}, not VAL_REFIT
                kw["metavar"] = "{true,false}"
            group.add_argument("--" + name.replace("_", "-"), **kw)
    p.add_argument("--estimators", choices=sorted(ESTIMATOR_PRESETS), default=None,
                   help="a bundle of estimator settings applied before the other flags: ours "
                        "(the defaults) or paper (MINE/DV for I(Y;L), an MLP AA-MINE critic under "
                        "DV with shuffled marginal pairs, alternating critic and layer steps)")
    run = p.add_argument_group("this command")
    run.add_argument("--config", type=Path, help="YAML file of config keys (flags override it)")
    run.add_argument("--out", type=Path, required=True, help="run folder to write")
    run.add_argument("--force", action="store_true",
                     help="overwrite a finished run, or another config's run, in --out")
    run.add_argument("--resume", action="store_true",
                     help="continue the run in --out from its last checkpoint (re-running the same "
                          "command into the same --out does so too); an error when there is none")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")


def _read_yaml(path: Path) -> dict:
    import yaml
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as e:
        raise ConfigError(f"cannot read --config {path}: {e.strerror}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"--config {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--config {path} must hold a mapping of config keys to values")
    return data


def build_train_config(args: argparse.Namespace) -> TrainConfig:
    """Defaults, then ``--config`` YAML, then flags -> a validated :class:`TrainConfig`."""
    cfg = config_from_dict(_read_yaml(args.config)) if args.config else TrainConfig()
    if args.estimators is not None:
        cfg = config_from_dict({"estimators": args.estimators}, base=cfg)
    flags = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if f.name != "download" and getattr(args, f.name) is not None}
    if "arch_params" in flags:
        flags["arch_params"] = {**cfg.arch_params, **dict(flags["arch_params"])}
    if args.offline:
        flags["download"] = False
    return config_from_dict(flags, base=cfg)


def _interval(r: dict | None, value: float | None) -> str:
    """``value [low, high]`` (nats) of a stored MIResult dict; ``+- stderr`` for older runs."""
    if r is None or value is None:
        return "-"
    if r.get("low") is not None:
        return f"{value:.3f} [{r['low']:.3f}, {r['high']:.3f}]"
    return f"{value:.3f}+-{r.get('stderr', 0):.3f}"


def format_summary(res: dict) -> list[str]:
    """The lines ``layerib train`` prints: accuracy, then per layer the Monte-Carlo I(X;L+eps)
    (exact on the test rows) with its error first, the neural estimate beside it as the check,
    I(Y;L), each with its 95 % interval, B and ln B, the flags and, where stored, each flag's
    reason and remedy (never a bare number). Reads ``result.json`` of older runs too."""
    refit = res.get("refit") or {}
    rows = (f"{max(r['rows'] for r in refit.values())} training images: stages early-stopped on "
            f"{res['n_val']} of them, then refitted on all" if refit else f"{res['n_train']} training images")
    lines = [f"{res['method']} on {res['dataset']} ({rows}): "
             f"test accuracy {100 * res['test_accuracy']:.2f}%  [{res['wall_seconds']:.0f} s]"]
    majority = res.get("majority_accuracy")
    if majority is not None and res["test_accuracy"] <= majority:
        hint = (f"; for IB try a smaller --beta (this run: {res['beta']:g}"
                f"{' = 600 / N' if res.get('beta_auto') else ''})" if res["method"] == "ib" else "")
        lines.append(f"WARNING: test accuracy {100 * res['test_accuracy']:.2f}% is not above the "
                     f"{100 * majority:.2f}% of always answering the most frequent training class: "
                     f"the net kept no usable label information{hint}")
    for i, unit in enumerate(res.get("units") or [], start=1):
        lines.append(f"unit {i}: {unit}")
    if not res["layers"]:
        return lines
    b = res["layers"][0]["batch_size"]
    ix0 = res["layers"][0]["i_x"]
    how = (f"{ix0['critic']} critic, {ix0['bound']}; " if ix0.get("critic") else "")
    lines.append(f"{'layer':>5} {'I(X;L+eps) Monte-Carlo truth':>29} {'neural check [95 %]':>24} "
                 f"{'I(Y;L) nats [95 %]':>22} {'output RMS':>10}   (nats; noise var "
                 f"{res['noise_var']:g}; Monte-Carlo truth: exact on the test rows, +- its error; neural "
                 f"check: {how}held-out B={b}, ln B={ix0.get('ln_batch', 0):.2f})")
    reasons = []
    for layer in res["layers"]:
        rms = layer.get("output_rms")
        mc = f"{layer['i_x_monte_carlo_nats']:.3f}+-{layer['i_x_monte_carlo_stderr']:.3f}"
        lines.append(f"{layer['index']:>5} {mc:>29} {_interval(layer['i_x'], layer['i_x_nats']):>24} "
                     f"{_interval(layer['i_y'], layer['i_y_nats']):>22} "
                     f"{'' if rms is None else f'{rms:10.3g}'}  {' '.join(layer.get('flags', []))}")
        reasons += [f"  layer {layer['index']} {k}: {v}"  # runs before the reasons were stored: none
                    for k, v in (layer.get("flag_reasons") or {}).items()]
    return lines + (["flags:"] + reasons if reasons else [])


def run(args) -> int:
    """Train, print the summary; exit status 0."""
    from layerib.runs.training import run_training
    cfg = build_train_config(args)
    res = run_training(cfg, args.out, force=args.force, progress=not args.no_progress,
                       argv=sys.argv, resume=args.resume)
    print("\n".join(format_summary(res)))
    print(f"results in {args.out / 'result.json'}")
    return 0
