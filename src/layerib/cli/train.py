"""``layerib train``: flags -> :class:`~layerib.config.TrainConfig` -> :func:`~layerib.runs.training.run_training`.

Settings: the defaults, then ``--config file.yaml``, then flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from layerib.config import (ARCHS, AUGMENTS, CIFAR_SOURCES, CRITIC_UPDATES, DATASETS, METHODS, TrainConfig,
                            config_from_dict)
from layerib.errors import ConfigError

#: flag -> config field, for the flags of ``layerib train`` that map one-to-one.
_TRAIN_FLAGS = {
    "dataset": str, "method": str, "beta": float, "noise_var": float, "train_fraction": float,
    "seed": int, "batch_size": int, "epochs_per_layer": int, "min_steps_per_layer": int,
    "ce_epochs": int, "readout_epochs": int, "lr_layer": float, "lr_critic": float,
    "lr_readout": float, "critic_steps": int, "critic_hidden": int, "ema_rate": float,
    "weight_decay": float, "grad_clip": float, "mi_eval_epochs": int,
    "mi_eval_batch_size": int, "device": str, "data_root": str,
    "infoplane_evals": int, "infoplane_critic_steps": int, "checkpoint_every": int,
}


def _widths(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(w) for w in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated integers such as 512,512,10, got {text!r}") from None


def add(sub) -> None:
    p = sub.add_parser("train", help="train one net (layer-wise IB, I(Y;L) only, or CE)",
                       description="Train a net layer by layer with the IB objective "
                                   "(Elad et al. 2019, Eq. 2), or a baseline, and write a run folder.")
    defaults = TrainConfig()
    for name, typ in _TRAIN_FLAGS.items():
        flag = "--" + name.replace("_", "-")
        default = getattr(defaults, name)
        kw = {"type": typ, "default": None,
              "help": "(default: 600 / number of training images)" if name == "beta"
              else f"(default: {default})"}
        if name == "dataset":
            kw["choices"] = DATASETS
        if name == "method":
            kw["choices"] = METHODS
        p.add_argument(flag, **kw)
    p.add_argument("--widths", type=_widths, default=None,
                   help="comma-separated layer widths (default: 512,512,10)")
    p.add_argument("--arch", choices=ARCHS, default=None,
                   help="mlp, or conv: conv blocks then FC layers of --widths (default: mlp)")
    p.add_argument("--channels", type=lambda s: tuple(int(w) for w in s.split(",")), default=None,
                   help="conv: comma-separated output channels of the blocks (default: 32,64)")
    p.add_argument("--cifar-source", choices=CIFAR_SOURCES, default=None,
                   help="cifar10 copy: auto (python batches if present, else the JPEG zip/folder), "
                        "batches or folder (default: auto)")
    p.add_argument("--augment", choices=AUGMENTS, default=None,
                   help="ce only: none or crop_flip (random 4-pixel-padded crop + flip; default: none)")
    p.add_argument("--x-marginal", choices=("all", "shuffle"), default=None,
                   help="AA-MINE marginal pairs (default: all)")
    p.add_argument("--y-bound", choices=("dv", "infonce"), default=None,
                   help="bound on I(Y;L) (default: infonce over the exact classes; dv is MINE as in the paper)")
    p.add_argument("--x-bound", choices=("infonce", "dv"), default=None,
                   help="bound on I(X;L+eps) the layer minimises (default: infonce; dv as in the paper)")
    p.add_argument("--x-critic", choices=("gaussian", "concat"), default=None,
                   help="AA-MINE inner critic (default: gaussian; concat is the paper's MLP critic)")
    p.add_argument("--y-critic", choices=("concat", "heads"), default=None,
                   help="I(Y;L) critic (default: concat, the paper's MLP on (L, onehot Y); "
                        "heads: one MLP output per class, faster)")
    p.add_argument("--critic-update", choices=CRITIC_UPDATES, default=None,
                   help="joint: one forward/backward pass updates the label critic and the layer "
                        "(exact with the InfoNCE bounds, the gaussian x critic and one critic "
                        "step); alternating: critic step(s), then a layer step on the updated "
                        "critic (the paper's scheme); auto: joint where exact, else alternating "
                        "(default: auto)")
    p.add_argument("--offline", action="store_true", help="never download data")
    p.add_argument("--config", type=Path, help="YAML file of config keys (flags override it)")
    p.add_argument("--out", type=Path, required=True, help="run folder to write")
    p.add_argument("--force", action="store_true",
                   help="overwrite a finished run, or another config's run, in --out")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (re-running the same "
                        "command into the same --out does so too); an error when there is none")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


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
    extra = ["widths", "arch", "channels", "cifar_source", "augment", "x_marginal", "x_critic",
             "x_bound", "y_bound", "y_critic", "critic_update"]
    flags = {k: getattr(args, k) for k in list(_TRAIN_FLAGS) + extra
             if getattr(args, k) is not None}
    if args.offline:
        flags["download"] = False
    return config_from_dict(flags, base=cfg)


def run(args) -> int:
    from layerib.runs.training import run_training
    cfg = build_train_config(args)
    res = run_training(cfg, args.out, force=args.force, progress=not args.no_progress,
                       argv=sys.argv, resume=args.resume)
    print(f"{res['method']} on {res['dataset']} ({res['n_train']} training images): "
          f"test accuracy {100 * res['test_accuracy']:.2f}%  [{res['wall_seconds']:.0f} s]")
    print(f"{'layer':>5} {'I(Y;L) nats':>12} {'I(X;L+eps) nats':>16}   (noise var "
          f"{cfg.noise_var:g}, held-out B={res['layers'][0]['batch_size']})")
    for layer in res["layers"]:
        print(f"{layer['index']:>5} {layer['i_y_nats']:>12.3f} {layer['i_x_nats']:>16.3f}")
    print(f"results in {args.out / 'result.json'}")
    return 0


