"""`normbench search`: Hypothesis's search for the worst input of every op, one supervised process
per framework group (as `normbench run` starts them), every group's searches sharing one example
database."""

from __future__ import annotations

import argparse
import os
import random
from pathlib import Path

from .. import ops
from ..adapters import registry
from ..bench import threads
from ..running import commands, folder, runner, supervisor
from ..running.job import Group, Job, plan
from ..search import budget, case_ids
from .common import fail, output, own_results, positive_int, reports_beside, run_pytest, supervised_status, warn

DATABASE = "search-db"  # normbench.search.profile.DATABASE, without importing Hypothesis here
STATUS = "jobs.json"  # how each group's process ended, rewritten as each one finishes


def add(sub: argparse._SubParsersAction) -> None:
    search = sub.add_parser("search", help="property-based search (Hypothesis) for each op's worst input")
    search.add_argument("--adapters", help="comma-separated adapter names or module:Class (default: all known)")
    search.add_argument("--ops", help="comma-separated ops to search (default: every op)")
    search.add_argument("--budget", default=None, metavar="SECONDS",
                        help="seconds of searching per adapter, shared by its ops: each op's search draws examples "
                             "until its share (an equal part of what the adapter has left) is spent (default "
                             f"{budget.DEFAULT_BUDGET_S:g}, unless --max-examples is given)")
    search.add_argument("--max-examples", default=None,
                        help="examples per adapter and op instead of a time budget (8 is the normbench-ci profile "
                             "the project's tests run); with --budget, whichever ends first")
    search.add_argument("--seed", default=None, help="seed of the whole search (default: random, printed)")
    search.add_argument("--database", default=None,
                        help="Hypothesis example database folder: past failures replay first (default: "
                             f"{DATABASE} in the output folder; give an earlier run's to reuse it)")
    search.add_argument("--replay", default=None, metavar="CASE_ID",
                        help="run the checks on these comma-separated case ids instead of searching (what a "
                             "failure's rerun command does)")
    search.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    search.add_argument("-j", "--jobs", type=positive_int, default=min(2, threads.available()),
                        help="framework groups searched at once, each in its own process (default: 2)")
    search.add_argument("--timeout", type=positive_int, default=None,
                        help="with several framework groups: seconds before a group's process is killed and "
                             f"recorded as an error (default {runner.DEFAULT_TIMEOUT_S}, plus --budget per adapter in "
                             "the group)")
    search.add_argument("--no-report", action="store_true", help="write results only")
    search.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    search.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    search.set_defaults(func=search_inputs)


def whole(text: str | None, option: str, least: int) -> int | None:
    """An option's whole number (None if not given); ValueError naming the option otherwise."""
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{option} must be a whole number, got {text!r}") from None
    if value < least:
        raise ValueError(f"{option} must be at least {least}, got {value}")
    return value


def search_inputs(args: argparse.Namespace) -> int:
    try:
        adapters = registry.select(args.adapters)
        for name in (args.ops or "").split(","):
            if name.strip():
                ops.get(name.strip())
        examples, seed = whole(args.max_examples, "--max-examples", 1), whole(args.seed, "--seed", 0)
        seconds = budget.seconds(args.budget, "--budget")
        for case_id in (args.replay or "").split(","):
            if case_id.strip():
                case_ids.parse(case_id.strip())
    except (registry.UnknownAdapter, ValueError) as exc:
        return fail(str(exc))
    if not adapters:
        return fail("--adapters names no adapter")
    if args.database and Path(args.database).exists() and not Path(args.database).is_dir():
        return fail(f"--database {args.database} is not a folder")
    out = output(args)
    if out is None:
        return 2
    seed = random.randrange(2**32) if seed is None else seed
    if seconds is None and examples is None and not args.replay:
        seconds = budget.DEFAULT_BUDGET_S
    database = Path(args.database) if args.database else out / DATABASE
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(out / "hypothesis"))  # not ./.hypothesis
    given = {"seed": seed, "database": database, "max-examples": examples, "budget": seconds, "ops": args.ops,
             "replay": args.replay}
    options = {name: f"{value:g}" if isinstance(value, float) else str(value)
               for name, value in given.items() if value is not None}
    if not args.replay:
        how = f"{seconds:g} s per adapter" if seconds else f"{examples} examples per op"
        how += f" and at most {examples} examples per op" if seconds and examples else ""
        print(f"normbench: search seed {seed}, {how}, example database {database} (the same search again: "
              f"--seed {seed})", flush=True)
    groups = [g for g in plan(adapters) if len([a for a in g.adapters if a.missing()]) < len(g.adapters)]
    groups.sort(key=lambda g: -len(g.adapters))  # most searches first: the longest process starts first
    if len(groups) <= 1:
        argv = ["--pyargs", "normbench.suites.search", "-p", "no:xdist"]
        argv += [arg for name, value in options.items() for arg in (f"--search-{name}", value)]
        code = run_pytest(argv, args, out / "results.jsonl", hypothesis=True)
        return _finish(own_results(out), out, code, args, seconds)
    return _search_groups(args, groups, options, out, seconds)


def _finish(files: list[Path], out: Path, code: int, args: argparse.Namespace, seconds: float | None) -> int:
    """One line per adapter on what its searches covered, then the report."""
    if not args.replay and files:
        from ..reports import search_summary as summary
        from ..results import records

        try:
            rows = [row for f in files for row in records.read(f)[1]]
        except ValueError as exc:  # a process killed mid-line: the report says what it can
            warn(f"no search summary ({exc})")
        else:
            for line in summary.lines(rows, seconds):
                print(f"normbench: searched {line}", flush=True)
    return reports_beside(files, out, code, args.no_report)


def _command(args: argparse.Namespace, group: Group, options: dict[str, str], where: Path) -> list[str]:
    cmd = [*commands.CLI, "search", "--adapters", group.refs, "-o", str(where), "--no-report",
           *(arg for name, value in options.items() for arg in (f"--{name}", value))]
    cmd += ["-v"] if args.verbose else []
    return cmd + (["--", *args.pytest_args] if args.pytest_args else [])


def _search_groups(args: argparse.Namespace, groups: list[Group], options: dict[str, str], out: Path,
                   seconds: float | None) -> int:
    """One supervised `normbench search` process per framework group, ``args.jobs`` at once; then one report.
    Without ``--timeout``, a group's process may run the usual limit plus its adapters' budgets."""
    job_list = [Job("search", g, out / g.name, _command(args, g, options, out / g.name), out / "logs",
                    timeout_s=args.timeout or runner.DEFAULT_TIMEOUT_S + (seconds or 0) * len(g.adapters))
                for g in groups]

    def status(_job: Job) -> None:
        folder.write_json(out / STATUS, {"command": "search", "jobs": runner.describe(job_list, out)})

    stop = supervisor.supervise(job_list, args.jobs, args.timeout or runner.DEFAULT_TIMEOUT_S, "normbench search",
                                on_finish=status)
    files = [f for job in job_list for f in folder.result_files(job.folder)]
    return _finish(files, out, supervised_status(job_list, stop, out), args, seconds)
