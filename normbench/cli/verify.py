"""`normbench verify`: the verification suites alone, in this process."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..adapters import compile_cache, registry
from ..results.kinds import Suite
from ..running import runner
from ..verify.cases import MATRICES
from .common import COMPILE_CACHE_HELP, MODES_HELP, fail, output, own_results, reports_beside, run_pytest


def add(sub: argparse._SubParsersAction) -> None:
    verify = sub.add_parser("verify", help="the verification suites alone, in this process")
    verify.add_argument("--adapters", help="comma-separated adapter names or module:Class")
    verify.add_argument("--modes", help=MODES_HELP)
    verify.add_argument("--matrix", choices=MATRICES, default="full",
                        help="full: every case (the default); short: each op's stress configuration in float32 and "
                             "bfloat16, the matrix normbench run verifies the compiled modes it adds on")
    verify.add_argument("--suites", help=f"comma-separated, some of {', '.join(runner.VERIFY_SUITES)}, "
                        f"{runner.SYNC_SUITE} (default: all but {runner.SYNC_SUITE})")
    verify.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    verify.add_argument("--compile-cache", metavar="DIR", help=COMPILE_CACHE_HELP)
    verify.add_argument("--no-report", action="store_true", help="write results only")
    verify.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    verify.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    verify.set_defaults(func=verify_suites)


def verify_suites(args: argparse.Namespace) -> int:
    try:
        registry.with_modes(registry.select(args.adapters), args.modes)
        suites = ([s for s in runner.parse_suites(args.suites) if s != Suite.SPEED] if args.suites
                  else list(runner.VERIFY_SUITES))
    except (registry.UnknownAdapter, runner.RunError) as exc:
        return fail(str(exc))
    if not suites:
        return fail("--suites names no verification suite (speed runs with `normbench bench`)")
    out = output(args)
    if out is None:
        return 2
    if runner.SYNC_SUITE in suites:  # before any framework starts in this process
        from ..verify import synchronized  # imports numpy and the checks: only for this suite

        os.environ.update(synchronized.with_host_devices())
    # before any framework starts here: a variable the user set is kept, unless --compile-cache names a folder
    folder = Path(args.compile_cache) if args.compile_cache else compile_cache.default_folder()
    os.environ.update(compile_cache.environ(os.environ, folder, keep=not args.compile_cache))
    argv = ["--pyargs", *(f"normbench.suites.test_{s}" for s in suites), "--matrix", args.matrix]
    code = run_pytest(argv, args, out / "results.jsonl")
    return reports_beside(own_results(out), out, code, args.no_report)
