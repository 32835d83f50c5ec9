"""``layerib reproduce NAME --out DIR [--preset P]``: run one paper reproduction.

A thin shell over :data:`layerib.experiments.EXPERIMENTS`: the choices of
NAME are that registry's keys, and every runner gets the same arguments.
"""

from __future__ import annotations

import sys
from pathlib import Path

from layerib.config import ESTIMATOR_PRESETS
from layerib.errors import ConfigError
from layerib.experiments import EXPERIMENTS


def add(sub) -> None:
    """Add the ``reproduce`` parser to the sub-parsers ``sub``."""
    p = sub.add_parser("reproduce", help="reproduce a figure or table of the paper",
                       description="Run one reproduction of Elad et al. 2019 into a folder: "
                                   "results (JSON, metrics) first, then figures drawn from them.")
    p.add_argument("name", choices=sorted(EXPERIMENTS), help="what to reproduce")
    p.add_argument("--out", type=Path, required=True, help="folder to write")
    p.add_argument("--preset", default="default",
                   help="settings bundle: default (the real run; table1: paper) or quick "
                        "(seconds to minutes, smoke test)")
    p.add_argument("--data-root", default=None, help="folder holding MNIST/raw "
                   "(default: $LAYERIB_DATA_ROOT or a cache)")
    p.add_argument("--offline", action="store_true", help="never download data")
    p.add_argument("--device", default=None, help="cpu, cuda or auto (default: the preset's)")
    p.add_argument("--seed", type=int, default=None, help="seed (default: the preset's)")
    p.add_argument("--seeds", type=int, default=None,
                   help="table1 only: number of seeds per cell (default: the preset's, 3)")
    p.add_argument("--estimators", choices=sorted(ESTIMATOR_PRESETS), default=None,
                   help="table1 only: train the layer-wise cells (iy, ib) with this estimator "
                        "bundle (paper: MINE, the MLP AA-MINE critic, DV, alternating updates) "
                        "and write a second table, table1-estimators-NAME.md, beside ours")
    p.add_argument("--setting", default=None,
                   help="claim only (required): the data setting, e.g. mnist1, digits, tiny "
                        "(layerib.experiments.claim.SETTINGS)")
    p.add_argument("--workers", type=int, default=None,
                   help="claim and budget only: runs side by side, one thread each (default: "
                        "claim 1, budget the preset's)")
    p.add_argument("--force", action="store_true", help="overwrite a finished reproduction")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args) -> int:
    """Run the chosen reproduction; print its summary lines; exit status 0.

    Raises:
        ConfigError: ``--seeds`` or ``--estimators`` given for a reproduction other than
            table1, ``--setting`` for one other than claim, ``--workers`` for one other than
            claim or budget, or claim
            without ``--setting``.
    """
    kw = {}
    for flag, owners in (("seeds", ("table1",)), ("estimators", ("table1",)), ("setting", ("claim",)),
                         ("workers", ("claim", "budget"))):
        if getattr(args, flag) is not None:
            if args.name not in owners:
                raise ConfigError(f"--{flag} applies to {' and '.join(owners)} only, not {args.name}")
            kw[flag] = getattr(args, flag)
    if args.name == "claim" and args.setting is None:
        raise ConfigError("reproduce claim needs --setting NAME, e.g. --setting mnist1 "
                          "(tiny: a seconds-long smoke test)")
    res = EXPERIMENTS[args.name](
        args.out, preset=args.preset, data_root=args.data_root,
        download=False if args.offline else None, device=args.device, seed=args.seed,
        force=args.force, progress=not args.no_progress, argv=sys.argv, **kw)
    for line in res.get("summary", []):
        print(line)
    print(f"{args.name}: results in {args.out}")
    return 0
