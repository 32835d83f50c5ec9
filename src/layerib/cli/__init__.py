"""The command line, one module per sub-command; a thin shell over the Python API.

``layerib train|estimate|report|reproduce|sweep``: each module here adds its
parser (``add``) and runs it (``run``); :mod:`layerib.cli.main` dispatches and
turns a :class:`~layerib.errors.LayerIBError` into one line and exit status 2.
"""

from layerib.cli.main import main, make_parser
from layerib.cli.train import build_train_config

__all__ = ["build_train_config", "main", "make_parser"]
