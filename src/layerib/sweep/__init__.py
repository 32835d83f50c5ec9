"""Sweeps: a grid of ``layerib train`` runs, here or on a Ray cluster, gathered in ``sweep.csv``.

:mod:`~layerib.sweep.spec` parses and expands the grid (every point validated
first), :mod:`~layerib.sweep.runner` runs the unfinished points in worker
processes or Ray tasks, :mod:`~layerib.sweep.table` writes ``sweep.csv``.
"""

from layerib.sweep.runner import SweepOutcome, run_sweep
from layerib.sweep.spec import SweepPoint, SweepSpec, expand, read_spec, spec_from_dict
from layerib.sweep.table import read_table, write_table

__all__ = ["SweepOutcome", "SweepPoint", "SweepSpec", "expand", "read_spec", "read_table",
           "run_sweep", "spec_from_dict", "write_table"]
