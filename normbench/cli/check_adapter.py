"""`normbench check-adapter`: what an adapter will exercise and what it cannot, read from its declarations
before anything runs (``verify.coverage``)."""

from __future__ import annotations

import argparse

from ..adapters import registry
from .common import fail


def add(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser("check-adapter", help="what an adapter will exercise (ops, dtypes, layouts, features, "
                                                 "modes) and what it cannot, and why, before running anything")
    check.add_argument("adapters", help="adapter names or module:Class, comma-separated")
    check.set_defaults(func=check_adapters)


def check_adapters(args: argparse.Namespace) -> int:
    from ..verify import coverage  # the case matrices: only for this command

    try:
        adapters = registry.select(args.adapters)
    except registry.UnknownAdapter as exc:
        return fail(str(exc))
    for i, adapter in enumerate(adapters):
        print(("\n" if i else "") + "\n".join(coverage.report(adapter)))
    return 0
