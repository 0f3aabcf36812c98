"""The parser: one sub-command per module, `run` when none is named."""

from __future__ import annotations

import argparse
import sys

from . import bench, compare, listing, report, run, search, verify

COMMANDS = (run, verify, bench, report, compare, search, listing)  # in `normbench --help`'s order


def main(argv: list[str] | None = None) -> int:
    from . import __doc__ as description

    parser = argparse.ArgumentParser(prog="normbench", description=description)
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS:
        command.add(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*sub.choices, "-h", "--help"):
        argv.insert(0, "run")  # plain `normbench` is the main job
    args = parser.parse_args(argv)
    return args.func(args)
