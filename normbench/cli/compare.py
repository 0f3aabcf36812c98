"""`normbench compare`: speed and outcome changes between two results files."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import fail, number, warn


def add(sub: argparse._SubParsersAction) -> None:
    cmp = sub.add_parser("compare", help="speed and outcome changes between two results files")
    cmp.add_argument("old", help="baseline results.jsonl or run folder")
    cmp.add_argument("new", help="results.jsonl or run folder to judge")
    cmp.add_argument("--factor", type=_ratio, default=None,
                     help="slowdown ratio that counts, beyond what the machine probes measured, greater than 1 "
                          "(default: compare.DEFAULT_FACTOR, measured from same-code runs; see README)")
    cmp.add_argument("--alpha", type=_probability, default=0.05,
                     help="significance level, between 0 and 1 (default 0.05)")
    cmp.add_argument("--all", action="store_true", help="list unchanged cases too")
    cmp.set_defaults(func=compare_runs)


def compare_runs(args: argparse.Namespace) -> int:
    from ..reports import compare, model  # pandas: only for the commands that read results

    try:
        old, new = model.load(args.old, warn=warn), model.load(args.new, warn=warn)
        same = sorted(set(map(_resolved, old.environments["source"])) & set(map(_resolved, new.environments["source"])))
        if same:
            return fail(f"{same[0]} is on both sides of the comparison"
                        + (f" ({len(same)} files are)" if len(same) > 1 else "") + "; compare two different runs")
        factor = compare.DEFAULT_FACTOR if args.factor is None else args.factor
        result = compare.compare(old, new, factor=factor, alpha=args.alpha)
    except (FileNotFoundError, ValueError) as exc:
        return fail(str(exc))
    print(result.markdown(only_changed=not args.all))
    return 1 if result.regressed else 0


def _resolved(path: str) -> str:
    return str(Path(path).resolve())


def _ratio(text: str) -> float:
    value = number(text)
    if not value > 1:
        raise argparse.ArgumentTypeError(f"must be greater than 1 (a ratio of times), got {text}")
    return value


def _probability(text: str) -> float:
    value = number(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value
