"""The parser: one sub-command per module, `run` when none is named."""

from __future__ import annotations

import argparse
import sys

from . import bench, check_adapter, compare, listing, new_adapter, report, repro, run, search, verify

# in `normbench --help`'s order
COMMANDS = (run, verify, bench, report, compare, search, repro, listing, check_adapter, new_adapter)


DESCRIPTION = ("The normbench command: the main job (run: every suite, each framework group in its own "
               "process, then the reports), the verification suites or the benchmarks alone in this process "
               "(verify, bench), property-based search, reports, comparisons, and the list of adapters.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="normbench", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command")
    for command in COMMANDS:
        command.add(sub)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in (*sub.choices, "-h", "--help"):
        argv.insert(0, "run")  # plain `normbench` is the main job
    args = parser.parse_args(argv)
    return args.func(args)
