"""`normbench bench`: the benchmarks alone. By default head to head (:mod:`.head_to_head`): one
process per adapter, all alive at once, taking turns on each case. ``--in-process`` times every
adapter named in this one process with pytest-benchmark, the path ``--allocators`` and
``--self-check`` take in each of their supervised processes (:mod:`.bench_passes`)."""

from __future__ import annotations

import argparse
import os
import sys

from ..adapters import registry
from ..bench import allocator, conductor, heat_plan, threads
from ..ops.dtypes import DTYPES
from ..running import commands, runner
from . import bench_passes, head_to_head
from .common import fail, output, own_results, positive_int, reports_beside, run_pytest, timed_by_default


def add(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="run the benchmarks alone (never under xdist)")
    bench.add_argument("--adapters", help="comma-separated adapter names or module:Class")
    bench.add_argument("--modes", help="execution modes to add to each adapter's default, head to head with it: "
                                       "compiled, all, or mode names (`normbench list` shows them)")
    bench.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    bench.add_argument("--threads", type=positive_int, default=threads.available(),
                       help="threads for every framework (default: every CPU this process may use)")
    bench.add_argument("--dtypes", default=None, help="comma-separated, e.g. float32,float16,bfloat16 "
                       "(default: each op's own: float32, and bfloat16 too for RMSNorm)")
    bench.add_argument("--default-shapes-for", default=None, metavar="ADAPTERS",
                       help="head to head: time these adapters (some of --adapters) at the default shapes alone, "
                            "not the sweeps (normbench run times the compiled modes it adds this way)")
    bench.add_argument("--field", default=None, metavar="NAME",
                       help="head to head: name this pass a side field. Its records are shown in the Execution "
                            "modes section alone, not in the speed tables (normbench run's 'modes' pass: the "
                            "compiled modes it adds, beside their default modes, which the main pass also times)")
    bench.add_argument("--quick", action="store_true", help="tiny shapes: checks the harness, not speed")
    bench.add_argument("--no-sweeps", action="store_true", help="the default shapes only (normbench run --quick)")
    bench.add_argument("--repeats", type=positive_int, default=None,
                       help="with --in-process: timed blocks per case, spread over the run and pooled "
                            f"(default {commands.DEFAULT_REPEATS})")
    bench.add_argument("--first-repeat", type=int, default=0, help=argparse.SUPPRESS)  # normbench run's passes
    bench.add_argument("--no-report", action="store_true", help="write results only")
    bench.add_argument("--allocator", default=None,
                       help=f"memory allocator setting: {', '.join(allocator.names())} or the path of a library "
                            "to preload (default warm; see README, Benchmarks)")
    bench.add_argument("--allocators", default=None,
                       help="comma-separated allocators: time the same cases under each, side by side")
    bench.add_argument("--self-check", action="store_true",
                       help="harness vs bare timeit of the same call (in the benchmark process, interleaved, and "
                            "in a fresh one), for torch, flax.linen, keras[tensorflow] and onnxruntime")
    bench.add_argument("--in-process", action="store_true",
                       help="time every adapter in this one process with pytest-benchmark, one after another, "
                            "instead of head to head (the default: every adapter's process alive at once, taking "
                            "turns on each case; an adapter may then be given as NAME@/path/to/python)")
    bench.add_argument("--head-to-head", action="store_true", help=argparse.SUPPRESS)  # the default now
    bench.add_argument("--processes", type=positive_int, default=conductor.PROCESSES,
                       help="head to head: fresh processes per adapter, one pass after another "
                            f"(default {conductor.PROCESSES})")
    bench.add_argument("--rounds", type=positive_int, default=conductor.ROUNDS,
                       help="head to head: interleaved blocks per process and case "
                            f"(default {conductor.ROUNDS})")
    bench.add_argument("--memory-budget", type=float, default=None, metavar="MB",
                       help="head to head: the most a pass's processes may hold at once; a case the whole field "
                            "cannot hold runs in heats that share an anchor adapter (default "
                            f"{heat_plan.MEMORY_BUDGET_MB:.0f}, or {heat_plan.MEMORY_SHARE * 100:.0f} %% of this "
                            "machine's memory if less; 0: no budget)")
    bench.add_argument("--timeout", type=positive_int, default=None,
                       help="with --allocators or --self-check: seconds before one of their processes is killed and "
                            f"recorded as an error (default {runner.DEFAULT_TIMEOUT_S})")
    bench.add_argument("-v", "--verbose", action="store_true", help="one line per benchmark")
    bench.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    bench.set_defaults(func=bench_cases)


def settings(args: argparse.Namespace) -> commands.Bench:
    """The benchmark options given, for the command lines of the processes this one starts."""
    return commands.Bench(adapters=args.adapters, threads=args.threads, dtypes=args.dtypes,
                          repeats=args.repeats or commands.DEFAULT_REPEATS,
                          first_repeat=args.first_repeat, quick=args.quick, no_sweeps=args.no_sweeps,
                          verbose=args.verbose, pytest_args=tuple(args.pytest_args))


def bench_cases(args: argparse.Namespace) -> int:
    in_process = args.in_process or args.self_check or bool(args.allocators)
    if args.in_process and args.head_to_head:
        return fail("give --in-process or --head-to-head (the default), not both")
    if args.head_to_head and (args.self_check or args.allocators):
        return fail("--head-to-head times under one allocator, without --self-check")
    if not in_process and args.repeats is not None:
        return fail("--repeats counts in-process passes (--in-process); head to head, give --processes")
    try:  # head to head, an adapter may name its interpreter (NAME@PYTHON)
        if args.modes:
            if "@" in (args.adapters or ""):
                return fail("--modes adds modes to adapters of this interpreter; name each one as "
                            "<name>+<mode>@PYTHON instead")
            chosen_adapters = registry.select(args.adapters) if args.adapters else timed_by_default()
            args.adapters = ",".join(a.ref or a.name for a in registry.with_modes(chosen_adapters, args.modes))
        entrants = (registry.select(args.adapters) if in_process
                    else head_to_head.entrants(args.adapters, args.default_shapes_for))
    except (registry.UnknownAdapter, ValueError) as exc:
        return fail(str(exc))
    bad = [d for d in (args.dtypes or "").split(",") if args.dtypes and d not in DTYPES]
    if bad:
        return fail(f"unknown dtype {bad[0]!r} in --dtypes; expected some of {', '.join(DTYPES)}")
    if args.allocator and args.allocators:
        return fail("give --allocator or --allocators, not both")
    try:
        threads.configure(args.threads)
        chosen = (allocator.parse_list(args.allocators) if args.allocators
                  else [allocator.resolve(args.allocator)])
    except allocator.AllocatorError as exc:
        return fail(str(exc))
    except ValueError as exc:
        return fail(f"--threads: {exc}")
    if args.self_check and len(chosen) > 1:
        return fail("--self-check runs under one allocator; give --allocator")
    if not in_process and args.pytest_args:
        return fail("head to head runs no pytest: pytest arguments need --in-process "
                    f"({' '.join(args.pytest_args)})")
    if args.default_shapes_for and in_process:
        return fail("--default-shapes-for is head to head only, without --in-process")
    if args.field is not None and (in_process or not args.field.isidentifier()):
        return fail(f"--field {args.field!r}: " + ("head to head only, without --in-process" if in_process
                    else "a name of letters, digits and underscores"))
    if args.memory_budget is not None and (in_process or args.memory_budget < 0):
        return fail(f"--memory-budget {args.memory_budget:g}: " + ("head to head only, without --in-process"
                    if in_process else "give a number of MB, or 0 for no budget"))
    if args.timeout is not None and not (args.allocators or args.self_check):
        return fail(f"--timeout {args.timeout}: only --allocators and --self-check start processes it limits "
                    "(head to head, each request has its own limit; --in-process runs in this process)")
    args.timeout = args.timeout or runner.DEFAULT_TIMEOUT_S
    if not in_process and not entrants:
        return fail("no adapter to time head to head (none is installed but the numpy reference)")
    out = output(args)
    if out is None:
        return 2
    if not in_process:
        return head_to_head.run(args, entrants, chosen[0], out)
    if args.self_check:
        return bench_passes.self_check(args, settings(args), chosen[0], out)
    if args.allocators:  # supervised passes, one name or several: --timeout holds for each
        return bench_passes.allocators(args, settings(args), chosen, out)
    if not allocator.current(chosen[0]):
        # The allocator acts from process start (the loader reads GLIBC_TUNABLES and LD_PRELOAD):
        # this same command again, the process started afresh under it.
        cmd = commands.bench(out, settings(args), chosen[0], report=not args.no_report)
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(cmd[0], cmd, allocator.process_env(chosen[0]))
    argv = ["--pyargs", "normbench.suites.speed", *(["--bench-dtypes", args.dtypes] if args.dtypes else []),
            "-p", "no:xdist",
            "--bench-repeats", str(args.repeats or commands.DEFAULT_REPEATS),
            "--bench-first-repeat", str(args.first_repeat),
            # gc off while timing, as timeit does: with it on, a collection's cost grows with the
            # benchmark process's heap (pytest's objects), which made the harness 4-9 % slower than a
            # bare loop in a fresh process for the same torch call
            "--benchmark-json", str(out / "benchmark.json"), "--benchmark-disable-gc"]
    if args.quick:
        argv.append("--bench-quick")
    if args.no_sweeps:
        argv.append("--bench-no-sweeps")
    code = run_pytest(argv, args, out / "results.jsonl")
    return reports_beside(own_results(out), out, code, args.no_report)
