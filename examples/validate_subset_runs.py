"""Validation accuracy of MNIST subset runs on the training images they never saw.

    LAYERIB_DATA_ROOT=../shared/data python examples/validate_subset_runs.py runs/t1/mnist1/ib/seed*

Prints one line per run folder and the mean over them; compare settings by the
validation column, never by the test column (see layerib.analysis.validation).
"""

import argparse
import statistics
import sys

from layerib.analysis.validation import outside_subset_accuracy
from layerib.errors import LayerIBError


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", help="finished run folders of layerib train")
    p.add_argument("--data-root", default=None)
    a = p.parse_args()
    try:
        rows = [outside_subset_accuracy(r, a.data_root) for r in a.runs]
    except LayerIBError as e:  # one line naming the problem, not a traceback
        sys.exit(f"validate_subset_runs: {e}")
    for r in rows:
        print(f"{r['run']}: validation {100 * r['val_accuracy']:.2f} % on {r['n_val']} images, "
              f"test {100 * r['test_accuracy']:.2f} %")
    print(f"mean over {len(rows)} runs: validation "
          f"{100 * statistics.fmean(r['val_accuracy'] for r in rows):.2f} %, test "
          f"{100 * statistics.fmean(r['test_accuracy'] for r in rows):.2f} %")


if __name__ == "__main__":
    main()
