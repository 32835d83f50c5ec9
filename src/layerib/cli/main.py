"""Command line: a thin shell over the Python API.

``layerib train ...`` parses flags, builds a :class:`TrainConfig` (defaults,
then ``--config file.yaml``, then flags) and calls
:func:`layerib.runs.training.run_training`. A :class:`LayerIBError` becomes a one-line
``layerib: error: ...`` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import logging
import sys

from layerib.cli import estimate as cli_estimate, report as cli_report, reproduce as cli_reproduce, sweep as cli_sweep, train as cli_train
from layerib.errors import LayerIBError

#: Sub-commands: name -> (function adding its parser to ``sub``, function running it).
#: A sub-command module adds one entry here; its runner takes the parsed args
#: and returns the exit status.
COMMANDS = {
    "train": (cli_train.add, cli_train.run),
    "reproduce": (cli_reproduce.add, cli_reproduce.run),
    "report": (cli_report.add, cli_report.run),
    "estimate": (cli_estimate.add, cli_estimate.run),
    "sweep": (cli_sweep.add, cli_sweep.run),
}


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line (exit status 2), like ours."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def make_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="layerib", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="log at INFO level")
    sub = parser.add_subparsers(dest="command", required=True)
    for add, _ in COMMANDS.values():
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return COMMANDS[args.command][1](args)
    except LayerIBError as e:
        print(f"layerib: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("layerib: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
