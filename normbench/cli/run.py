"""`normbench run`: the main job (every suite, one process per framework group, then the report)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..adapters import registry
from ..adapters.base import Adapter
from ..bench import allocator, threads
from ..results import counts
from ..results.kinds import Outcome
from ..running import folder, progress, runner, supervisor
from ..running.job import plan
from .common import COMPILE_CACHE_HELP, MODES_HELP, UNTIMED, fail, load_results, positive_int, write_reports


def add(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="the main job: every suite, one process per framework group, then the "
                                     "reports (the default command)")
    run.add_argument("--adapters", help="comma-separated adapter names or module:Class (default: all known)")
    run.add_argument("--modes", help=MODES_HELP + "; verified on the full matrix, timed at every shape (default: "
                                   "the compiled modes, verified on the short matrix (each op's stress configurations "
                                   "in float32 and bfloat16) and timed at the default shapes beside their default "
                                   "modes; none with --quick)")
    run.add_argument("--suites", help=f"comma-separated, some of {', '.join(runner.SUITES)} (default: all)")
    run.add_argument("--quick", action="store_true",
                     help="quick matrix: float32/float64 checks only, one timed pass of the default "
                          "benchmark shapes (no sweeps)")
    run.add_argument("--threads", type=positive_int, default=threads.available(),
                     help="threads for every framework (default: every CPU this process may use)")
    run.add_argument("-o", "--output", help="run folder (default normbench-results/<time>)")
    run.add_argument("--compile-cache", metavar="DIR", help=COMPILE_CACHE_HELP)
    run.add_argument("--overwrite", action="store_true", help="replace an earlier run in the -o folder")
    run.add_argument("-n", "--workers", help="pytest-xdist workers for the verification suites (a number or "
                                             "'auto'); benchmarks always run alone")
    run.add_argument("-j", "--jobs", type=positive_int, default=min(2, threads.available()),
                     help="verification processes at once (default: 2, or 1 on one core, or with -n); "
                          "benchmarks always run one at a time")
    run.add_argument("--allocator", default=None,
                     help=f"memory allocator of the benchmark processes: {', '.join(allocator.names())} or the path "
                          "of a library to preload (default warm; see README, Benchmarks)")
    run.add_argument("--timeout", type=positive_int, default=runner.DEFAULT_TIMEOUT_S,
                     help="seconds before a group's process is killed and recorded as an error "
                          f"(default {runner.DEFAULT_TIMEOUT_S})")
    run.set_defaults(func=main_job)


def with_modes(chosen: list[Adapter], modes: str | None, quick: bool) -> tuple[list[Adapter], tuple[str, ...]]:
    """The adapters in the modes ``--modes`` adds, and the groups of those the run adds by default (the
    compiled modes ``Mode.in_run``, none with ``--quick``), which are verified on the short matrix and timed
    at the default shapes beside their default modes in a pass of their own, so the compilers' numerics and
    speed are in every run, within a benchmark pass's memory budget."""
    if modes:
        return registry.with_modes(chosen, modes), ()
    adapters, short = [], []
    for a in chosen:
        adapters.append(a)
        for mode in a.modes[1:] if a.mode is None and not quick else ():
            if mode.compiled and mode.in_run:
                adapters.append(a.in_mode(mode.name))
                short.append(adapters[-1].group)
    return adapters, tuple(short)


def main_job(args: argparse.Namespace) -> int:
    try:
        adapters, short = with_modes(registry.select(args.adapters), args.modes, args.quick)
        suites = runner.parse_suites(args.suites)
    except (registry.UnknownAdapter, runner.RunError) as exc:
        return fail(str(exc))
    if not adapters:
        return fail("--adapters names no adapter")
    if args.workers is not None and args.workers != "auto" and not args.workers.isdigit():
        return fail(f"-n/--workers must be a whole number or 'auto', got {args.workers!r}")
    try:
        alloc = allocator.resolve(args.allocator)
        out = folder.run_folder(args.output, args.overwrite)
    except (allocator.AllocatorError, folder.FolderError) as exc:
        return fail(str(exc))
    threads.configure(args.threads)  # inherited by every process through the environment
    untimed = UNTIMED if args.adapters is None else ()
    opts = runner.Options(suites=suites, quick=args.quick, threads=args.threads, timeout_s=args.timeout,
                          workers=args.workers, jobs=1 if args.workers else args.jobs, untimed=untimed,
                          short=short, allocator=alloc,
                          compile_cache=str(Path(args.compile_cache).absolute()) if args.compile_cache else None)
    job_list = runner.jobs(plan(adapters), out, opts)
    runner.write_plan(out, job_list, opts)
    stop = supervisor.supervise(job_list, opts.jobs, opts.timeout_s, "normbench run",
                                on_finish=lambda job: runner.write_plan(out, job_list, opts))
    files = [f for job in job_list for f in folder.result_files(job.folder)]
    report, problem, tally = None, None, counts.Counts()
    if files:
        try:
            res = load_results(files)  # read once: the closing line counts what the report counts
            tally = counts.count(res.checks.to_dict("records"))
            report = write_reports(res, out / "report")[0]
        except Exception as exc:  # noqa: BLE001 - the results are kept; say why the report is missing
            problem = f"could not render the report ({type(exc).__name__}: {exc}); results are in {out}"
    else:
        problem = "no process wrote any results"
    progress.summary(job_list, out, tally, report, problem)
    if stop.is_set():
        done = sum(job.finished and not job.failed for job in job_list)
        print(f"normbench: interrupted by {stop.signal}: {done} of {len(job_list)} processes finished; "
              + (f"partial report: {report}" if report else f"results so far in {out}"), file=sys.stderr)
        return 130
    failed = any(job.failed or job.counts.get(Outcome.FAIL) or job.counts.get(Outcome.ERROR) for job in job_list)
    return 1 if failed or problem else 0
