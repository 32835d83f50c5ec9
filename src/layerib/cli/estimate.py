"""``layerib estimate [--run RUN_DIR] --out FILE.json``: per-layer MI estimates beside the truth.

A thin shell: flags -> :class:`~layerib.runs.estimation.EstimateConfig` ->
:func:`~layerib.runs.estimation.run_estimate`, then the table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from layerib.errors import ConfigError, RunDirError
from layerib.mi.bounds import BOUND_NAMES
from layerib.mi.recipes import RECIPE_SETTINGS, X_CRITICS, recipe_settings


def _list(typ):
    def parse(text: str) -> tuple:
        try:
            return tuple(typ(t) for t in text.split(",") if t.strip())
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                             f"{typ.__name__} values") from None
    return parse


def add(sub) -> None:
    """Add the ``estimate`` parser to the sub-parsers ``sub``."""
    p = sub.add_parser("estimate", help="estimate I(X;L+eps) and I(Y;L) of every layer, beside the truth",
                       description="Estimate I(X; L_i + eps) and I(Y; L_i) for every layer of a trained "
                                   "run (--run) or of a fresh random-weight MLP on MNIST inputs, beside "
                                   "the Monte-Carlo ground truth of I(X; L_i + eps). MI in nats.")
    d = RECIPE_SETTINGS
    p.add_argument("--run", type=Path, help="run folder written by `layerib train` (default: a fresh net)")
    p.add_argument("--widths", type=_list(int), help="fresh net: layer widths (default: 512,512,10)")
    p.add_argument("--noise-var", type=_list(float),
                   help="comma-separated noise variances sigma^2 >= 0 (default: the run's, or 1)")
    p.add_argument("--layers", type=_list(int), help="comma-separated 1-based layers (default: all)")
    p.add_argument("--critics", type=_list(str), default=("auto",),
                   help=f"critics of I(X;L+eps): auto (layerib.estimate_mi's protocol and choice: "
                        f"the mixture critic under DV, early-stopped, restarts, interval) or any of "
                        f"{','.join(X_CRITICS)} (default: auto)")
    p.add_argument("--bounds", type=_list(str), default=("auto",),
                   help=f"bounds of the named critics and of I(Y;L): auto (estimate_mi's choice; DV "
                        f"for a named critic) or any of {','.join(BOUND_NAMES)} (default: auto)")
    p.add_argument("--no-y", action="store_true", help="skip I(Y; L)")
    p.add_argument("--n-train", type=int, default=10000, help="training images that fit critics (default: 10000)")
    p.add_argument("--n-test", type=int, default=10000, help="held-out test images (default: 10000)")
    p.add_argument("--mc-samples", type=int, default=4096, help="Monte-Carlo samples of the truth (default: 4096)")
    for name in ("steps", "batch_size", "hidden", "n_centers", "passes", "seed"):
        p.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(d, name),
                       help=f"critic setting (default: {getattr(d, name)})"
                            + ("; held-out-batch recipes only (estimate_mi stops early)"
                               if name in ("steps", "passes") else ""))
    for name in ("lr", "zero_noise_critic_var"):
        p.add_argument("--" + name.replace("_", "-"), type=float, default=getattr(d, name),
                       help=f"critic setting (default: {getattr(d, name)})")
    p.add_argument("--no-baseline", action="store_true", help="skip the shuffled-pairs baselines")
    p.add_argument("--data-root", help="folder holding MNIST/raw (default: the run's, $LAYERIB_DATA_ROOT)")
    p.add_argument("--offline", action="store_true", help="never download data")
    p.add_argument("--out", type=Path, help="JSON file to write (default: RUN/estimate.json)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def build_config(args: argparse.Namespace):
    """The :class:`~layerib.runs.estimation.EstimateConfig` the flags ask for."""
    from layerib.runs.estimation import EstimateConfig
    critic = recipe_settings(steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                            hidden=args.hidden, n_centers=args.n_centers, passes=args.passes,
                            baseline=not args.no_baseline, seed=args.seed,
                            zero_noise_critic_var=args.zero_noise_critic_var)
    return EstimateConfig(run_dir=str(args.run) if args.run else None,
                          widths=args.widths or (512, 512, 10), noise_vars=args.noise_var,
                          layers=args.layers, x_critics=args.critics, bounds=args.bounds,
                          estimate_y=not args.no_y, n_train=args.n_train, n_test=args.n_test,
                          mc_samples=args.mc_samples, critic=critic, data_root=args.data_root,
                          download=not args.offline)


def run(args: argparse.Namespace) -> int:
    """Estimate, write the JSON, print the table; exit status 0."""
    from layerib.runs.estimation import format_table, run_estimate
    if args.run is not None and not args.run.is_dir():
        raise RunDirError(f"run folder {args.run} does not exist; pass a folder written by layerib train")
    if args.out is None and args.run is None:
        raise ConfigError("--out FILE.json is required for a fresh net (with --run it defaults "
                          "to RUN/estimate.json)")
    out = args.out if args.out is not None else args.run / "estimate.json"
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; name a JSON file")
    if out.exists() and not args.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it or choose another --out")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: folder {out.parent} does not exist; create it first")
    cfg = build_config(args)
    res = run_estimate(cfg, out, progress=not args.no_progress, argv=sys.argv)
    print(format_table(res))
    print(f"estimate: results in {out}  [{res['wall_seconds']:.0f} s]")
    return 0
