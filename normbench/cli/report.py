"""`normbench report`: HTML and Markdown reports (and a CSV) from results files."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..running import folder
from .common import REPORT_FILES, fail, output, warn, write_reports


def add(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser("report", help="HTML and Markdown reports from results files")
    report.add_argument("results", nargs="+", help="results.jsonl files or run folders (merged)")
    report.add_argument("-o", "--output", help="report folder (default normbench-results/<time>)")
    report.add_argument("--overwrite", action="store_true",
                        help="replace an earlier report in -o (a folder holding only report files)")
    report.set_defaults(func=render)


def render(args: argparse.Namespace) -> int:
    from ..reports import model  # pandas: only for the commands that read results

    try:
        res = model.load(args.results, warn=warn)  # read before anything is written
    except (FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    target = Path(args.output) if args.output else None
    if args.overwrite and target and target.is_dir() and {p.name for p in target.iterdir()} <= REPORT_FILES:
        try:
            out = folder.writable(target)  # only an earlier report's own files are replaced
        except folder.FolderError as exc:
            return fail(str(exc))
    else:
        out = output(args)
    if out is None:
        return 2
    print("normbench: wrote " + ", ".join(map(str, write_reports(res, out))))
    return 0
