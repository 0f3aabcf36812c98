"""The ``normbench`` command: run the verification suites or the benchmarks into a fresh results
folder, or list adapters."""

from __future__ import annotations

import argparse
import datetime as dt
import os
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


def _fail(message: str) -> int:
    print(f"normbench: error: {message}", file=sys.stderr)
    return 2


def _output(args: argparse.Namespace) -> Path | None:
    """The fresh results folder; None (after saying why) if it already holds something."""
    out = Path(args.output or Path("normbench-results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        _fail(f"{out} exists and is not an empty folder; choose another -o")
        return None
    return out


def _pytest(argv: list[str], args: argparse.Namespace, results: Path) -> int:
    import pytest

    if args.adapters:
        argv += ["--adapters", args.adapters]
    argv += ["-q"] if not args.verbose else ["-v"]
    code = pytest.main(argv + ["--results", str(results), "-p", "no:cacheprovider"] + args.pytest_args)
    print(f"normbench: results in {results}" if results.exists() else "normbench: no results written")
    return int(code)


def _run(args: argparse.Namespace) -> int:
    try:
        registry.select(args.adapters)
    except registry.UnknownAdapter as exc:
        return _fail(str(exc))
    out = _output(args)
    if out is None:
        return 2
    code = _pytest(["--pyargs", "normbench.suites"], args, out / "results.jsonl")
    return _with_reports(code, out)


def _with_reports(code: int, out: Path) -> int:
    """Render the run's reports beside its results; a rendering problem loses no results."""
    if (out / "results.jsonl").exists():
        try:
            print("normbench: report in " + str(write_reports([out / "results.jsonl"], out)[0]))
        except Exception as exc:  # noqa: BLE001 - the results are what matters; say why and go on
            print(f"normbench: could not render the report ({type(exc).__name__}: {exc})", file=sys.stderr)
            return code or 1
    return code


def _bench(args: argparse.Namespace) -> int:
    from . import threads
    from .dtypes import DTYPES

    if args.self_check:
        args.adapters = "torch"
    try:
        registry.select(args.adapters)
    except registry.UnknownAdapter as exc:
        return _fail(str(exc))
    bad = [d for d in args.dtypes.split(",") if d not in DTYPES]
    if bad:
        return _fail(f"unknown dtype {bad[0]!r} in --dtypes; expected some of {', '.join(DTYPES)}")
    try:
        threads.configure(args.threads)
    except ValueError as exc:
        return _fail(f"--threads: {exc}")
    out = _output(args)
    if out is None:
        return 2
    out.mkdir(parents=True, exist_ok=True)
    argv = ["--pyargs", "normbench.suites.speed", "--bench-dtypes", args.dtypes, "-p", "no:xdist",
            "--benchmark-json", str(out / "benchmark.json"),
            "-k", "harness_overhead" if args.self_check else "not harness_overhead"]
    if args.quick:
        argv.append("--bench-quick")
    code = _pytest(argv, args, out / "results.jsonl")
    if not args.self_check:
        return _with_reports(code, out)
    from .records import read

    rows = [r for r in read(out / "results.jsonl")[1] if r["check"] == "harness_overhead"]
    if not rows:
        return _fail("the self-check did not run (is torch installed?)")
    print(f"normbench: self-check {rows[0]['message']}")
    return 0 if rows[0]["outcome"] == "pass" else 1


def write_reports(sources: list[Path], out: Path) -> list[Path]:
    """report.html, report.md and results.csv in ``out`` from the given results files."""
    from .reports import html, markdown, model

    res = model.load(sources)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.html", out / "report.md", out / "results.csv"]
    written[0].write_text(html.render(res), encoding="utf-8")
    written[1].write_text(markdown.render(res, html_name="report.html"), encoding="utf-8")
    model.tidy(res).to_csv(written[2], index=False)
    return written


def _report(args: argparse.Namespace) -> int:
    sources = [Path(p) for p in args.results]
    out = _output(args)
    if out is None:
        return 2
    try:
        written = write_reports(sources, out)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    print("normbench: wrote " + ", ".join(map(str, written)))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .reports import compare, model

    try:
        old, new = model.load(args.old), model.load(args.new)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    try:
        result = compare.compare(old, new, factor=args.factor, alpha=args.alpha)
    except ValueError as exc:
        return _fail(str(exc))
    print(result.markdown(only_changed=not args.all))
    return 1 if result.regressed else 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="normbench", description=__doc__)
    sub = parser.add_subparsers(dest="command")
    run = sub.add_parser("run", help="run the verification suites (the default command)")
    run.add_argument("--adapters", help="comma-separated adapter names or module:Class")
    run.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    run.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    run.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    run.set_defaults(func=_run)
    bench = sub.add_parser("bench", help="run the benchmarks alone (never under xdist)")
    bench.add_argument("--adapters", help="comma-separated adapter names or module:Class")
    bench.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    bench.add_argument("--threads", type=_positive_int, default=os.cpu_count() or 1,
                       help="threads for every framework (default: all cores)")
    bench.add_argument("--dtypes", default="float32", help="comma-separated, e.g. float32,float16,bfloat16")
    bench.add_argument("--quick", action="store_true", help="tiny shapes: checks the harness, not speed")
    bench.add_argument("--self-check", action="store_true",
                       help="harness overhead: torch LayerNorm timed by the suite vs a bare timeit loop")
    bench.add_argument("-v", "--verbose", action="store_true", help="one line per benchmark")
    bench.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    bench.set_defaults(func=_bench)
    report = sub.add_parser("report", help="HTML and Markdown reports from results files")
    report.add_argument("results", nargs="+", help="results.jsonl files or run folders (merged)")
    report.add_argument("-o", "--output", help="report folder (default normbench-results/<time>)")
    report.set_defaults(func=_report)
    cmp = sub.add_parser("compare", help="speed and outcome changes between two results files")
    cmp.add_argument("old", help="baseline results.jsonl or run folder")
    cmp.add_argument("new", help="results.jsonl or run folder to judge")
    cmp.add_argument("--factor", type=float, default=1.3,
                     help="slowdown ratio that counts (default 1.3; 1.1 on dedicated hardware)")
    cmp.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    cmp.add_argument("--all", action="store_true", help="list unchanged cases too")
    cmp.set_defaults(func=_compare)
    sub.add_parser("list", help="list known adapters").set_defaults(func=_list)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "bench", "report", "compare", "list", "-h", "--help"):
        argv.insert(0, "run")  # plain `normbench` runs the suites
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
