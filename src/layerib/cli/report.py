"""``layerib report RUN_DIR... --out report.html``: one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path


def add(sub) -> None:
    """Add the ``report`` parser to the sub-parsers ``sub``."""
    p = sub.add_parser("report", help="write one self-contained HTML page for run folders",
                       description="Write one HTML page (figures embedded, no server needed) "
                                   "for training-run and reproduction folders.")
    p.add_argument("dirs", type=Path, nargs="+", metavar="RUN_DIR",
                   help="run folders (layerib train) or reproduction folders (layerib reproduce)")
    p.add_argument("--out", type=Path, required=True, help="HTML file to write")


def run(args) -> int:
    """Build and write the page; exit status 0."""
    from layerib.report.html import write_report
    out = write_report(args.dirs, args.out)
    print(f"report of {len(args.dirs)} folder(s) in {out}")
    return 0
