"""The paper's claim tested fairly on MNIST 1 %: the same tuning budget for every method.

    LAYERIB_DATA_ROOT=../shared/data python examples/claim_tuning.py OUT [--jobs 2]

The same as ``layerib reproduce claim --setting mnist1 --out OUT [--workers 2]``
(:mod:`layerib.experiments.claim`, which documents the study and its other settings):
six settings per method (ib: beta x noise variance; iy and ce: learning rate x weight
decay), each at seeds 0-2 scored on the 59 400 MNIST training images outside its subset,
the best at seeds 0-4, and the paired differences IB - iy and IB - CE with 95 %
intervals in ``OUT/claim.md``. Re-running resumes.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from layerib.experiments.claim import run


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path)
    p.add_argument("--jobs", type=int, default=1, help="runs side by side (one thread each)")
    p.add_argument("--data-root", default=None)
    a = p.parse_args(argv)
    run(a.out, setting="mnist1", workers=a.jobs, data_root=a.data_root)
    print((a.out / "claim.md").read_text(), end="")


if __name__ == "__main__":
    main()
