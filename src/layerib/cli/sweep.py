"""``layerib sweep CONFIG.yaml --out DIR``: run a grid of training runs (see :mod:`layerib.sweep`)."""

from __future__ import annotations

from pathlib import Path


def add(sub) -> None:
    """Add the ``sweep`` parser to the sub-parsers ``sub``."""
    p = sub.add_parser(
        "sweep", help="run a grid of training runs (here or on a Ray cluster)",
        description="Run every point of a grid of `layerib train` settings, each in its own "
                    "folder under --out, and gather the results in --out/sweep.csv. Finished "
                    "points are skipped on re-run; a failed point does not stop the others.")
    p.add_argument("config", type=Path,
                   help="sweep YAML: base: {config keys}, grid: {key: [values], ...} "
                        "(or a list of such grids)")
    p.add_argument("--out", type=Path, required=True, help="sweep folder (one subfolder per point)")
    p.add_argument("--workers", type=int, default=None,
                   help="points run at once on this machine (default: cores, at most 8)")
    p.add_argument("--threads", type=int, default=None,
                   help="threads per point (default: cores // workers here, 1 with Ray)")
    p.add_argument("--ray-address", default=None,
                   help="run the points as tasks on a Ray cluster: auto, host:port, ray://host:port, "
                        "or local (a Ray instance on this machine); needs pip install 'layerib[ray]'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args) -> int:
    """Run the sweep; print a one-line summary; exit 1 when a point failed, else 0."""
    from layerib.sweep import read_spec, run_sweep
    res = run_sweep(read_spec(args.config), args.out, workers=args.workers, threads=args.threads,
                    ray_address=args.ray_address, progress=not args.no_progress)
    print(f"sweep: {len(res.points)} points: {len(res.ran)} ran, {len(res.skipped)} finished "
          f"before, {len(res.failed)} failed; table in {res.table}")
    for name, error in res.failed.items():
        print(f"  failed {name}: {error} (log: {args.out / name / 'train.log'})")
    return 1 if res.failed else 0
