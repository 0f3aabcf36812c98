"""The ``normbench`` command: run the suites into a fresh results folder, or list adapters."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from .adapters import registry


def _list(_: argparse.Namespace) -> int:
    rows = []
    for name in registry.known():
        a = registry.get(name)
        missing = a.missing()
        status = f"not installed: {a.install_hint()}" if missing else f"installed {a.version()}"
        rows.append((name, status, ",".join(sorted(a.dtypes)), ",".join(sorted(a.features))))
    width = max(len(r[0]) for r in rows)
    for name, status, dtypes, features in rows:
        print(f"{name:<{width}}  {status}\n{'':<{width}}  dtypes: {dtypes}  features: {features}")
    return 0


def _run(args: argparse.Namespace) -> int:
    import pytest

    try:
        registry.select(args.adapters)
    except registry.UnknownAdapter as exc:
        print(f"normbench: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.output or Path("normbench-results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    if out.exists() and any(out.iterdir()):
        print(f"normbench: error: {out} exists and is not empty; choose another -o", file=sys.stderr)
        return 2
    results = out / "results.jsonl"
    argv = ["--pyargs", "normbench.suites", "--results", str(results), "-p", "no:cacheprovider"]
    if args.adapters:
        argv += ["--adapters", args.adapters]
    argv += ["-q"] if not args.verbose else ["-v"]
    code = pytest.main(argv + args.pytest_args)
    print(f"normbench: results in {results}" if results.exists() else "normbench: no results written")
    return int(code)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="normbench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the verification suites (the default command)")
    run.add_argument("--adapters", help="comma-separated adapter names or module:Class")
    run.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    run.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    run.set_defaults(func=_run)
    sub.add_parser("list", help="list known adapters").set_defaults(func=_list)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "list", "-h", "--help"):
        argv.insert(0, "run")  # plain `normbench` runs the suites
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
