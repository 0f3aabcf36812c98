"""The ``normbench`` command: the main job (``run``: every suite, each framework group in its
own process, then the reports), the verification suites or the benchmarks alone in this
process (``verify``, ``bench``), reports, comparisons, and the list of adapters."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import faulthandler
import json
import os
import shutil
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from .adapters import registry
from .bench import allocator, threads
from .results import records
from .running import runner


def _list(_: argparse.Namespace) -> int:
    """Every adapter × op: installed and its version, or the install hint; what it runs and where."""
    from . import ops

    adapters = [registry.get(name) for name in registry.known()]
    width = max(len(a.name) for a in adapters)
    head = "  ".join(f"{op.name:<13}" for op in ops.all())
    print(f"{'adapter':<{width}}  {head}  status")
    for a in adapters:
        missing = a.missing()
        status = f"not installed: {a.install_hint()}" if missing else f"installed {a.version()}"
        built = "  ".join(f"{('builds' if op.name in a.ops else '-'):<13}" for op in ops.all())
        process = f"process: {a.group or a.name}" + "".join(f" {k}={v}" for k, v in a.environment.items())
        print(f"{a.name:<{width}}  {built}  {status}")
        print(f"{'':<{width}}  dtypes: {','.join(sorted(a.dtypes))}  features: {','.join(sorted(a.features))}  "
              f"{process}")
    return 0


def _fail(message: str) -> int:
    print(f"normbench: error: {message}", file=sys.stderr)
    return 2


def _folder(args: argparse.Namespace) -> Path:
    """-o, or a new folder named for the time under normbench-results/."""
    return Path(args.output or Path("normbench-results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S"))


def _output(args: argparse.Namespace) -> Path | None:
    """The fresh, writable results folder; None (after saying why) if it already holds
    something or cannot be written."""
    out = _folder(args)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        _fail(f"{out} exists and is not an empty folder; choose another -o")
        return None
    return _writable(out)


def _writable(out: Path) -> Path | None:
    """Create ``out`` and prove it writable by writing in it (permission bits do not tell for
    root or a read-only file system); None after a one-line error if it cannot be."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        _fail(f"cannot write the output folder {out}: {exc.strerror or exc}")
        return None
    return out


def _pytest(argv: list[str], args: argparse.Namespace, results: Path) -> int:
    import pytest

    _dump_stacks_on_request()
    _stop_with_parent()

    if args.adapters:
        argv += ["--adapters", args.adapters]
    argv += ["-q"] if not args.verbose else ["-v"]
    code = pytest.main(argv + ["--results", str(results), "-p", "no:cacheprovider"] + args.pytest_args)
    print(f"normbench: results in {results}" if results.exists() else "normbench: no results written")
    return int(code)


def _dump_stacks_on_request() -> None:
    """SIGUSR1 writes every thread's stack to stderr: `normbench run` sends it to a process past
    its timeout before stopping it, so the error record can say where it hung. A copy of the
    stderr descriptor, because pytest redirects descriptor 2 while tests run."""
    faulthandler.register(signal.SIGUSR1, file=os.dup(sys.stderr.fileno()), all_threads=True)


def _stop_with_parent() -> None:
    """A process `normbench run` started (in a session of its own, so a terminal's Ctrl-C does
    not reach it) interrupts itself if that parent disappears without stopping it."""
    parent = os.environ.get(runner.PARENT)
    if not parent or not parent.isdigit():
        return

    def watch() -> None:
        while os.getppid() == int(parent):
            time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGINT)  # pytest stops after the current test
        time.sleep(runner.GRACE_S)
        os._exit(130)

    threading.Thread(target=watch, name="normbench-parent-watch", daemon=True).start()


def _verify(args: argparse.Namespace) -> int:
    try:
        registry.select(args.adapters)
        suites = ([s for s in runner.parse_suites(args.suites) if s != "speed"] if args.suites
                  else list(runner.VERIFY_SUITES))
    except (registry.UnknownAdapter, runner.RunError) as exc:
        return _fail(str(exc))
    if not suites:
        return _fail("--suites names no verification suite (speed runs with `normbench bench`)")
    out = _output(args)
    if out is None:
        return 2
    if runner.SYNC_SUITE in suites:  # before any framework starts in this process
        from .verify import synchronized

        os.environ.update(synchronized.with_host_devices())
    code = _pytest(["--pyargs", *(f"normbench.suites.test_{s}" for s in suites)], args, out / "results.jsonl")
    return _with_reports(code, out, args.no_report)


def _search(args: argparse.Namespace) -> int:
    """Hypothesis's search for the worst input of every op, one process per framework group (as
    `normbench run` starts them), every group's searches sharing one example database."""
    import random

    from . import ops
    from .search import case_ids

    try:
        adapters = registry.select(args.adapters)
        for name in (args.ops or "").split(","):
            if name.strip():
                ops.get(name.strip())
        examples, seed = _whole(args.max_examples, "--max-examples", 1), _whole(args.seed, "--seed", 0)
        for case_id in (args.replay or "").split(","):
            if case_id.strip():
                case_ids.parse(case_id.strip())
    except (registry.UnknownAdapter, ValueError) as exc:
        return _fail(str(exc))
    if not adapters:
        return _fail("--adapters names no adapter")
    if args.database and Path(args.database).exists() and not Path(args.database).is_dir():
        return _fail(f"--database {args.database} is not a folder")
    out = _output(args)
    if out is None:
        return 2
    seed = random.randrange(2**32) if seed is None else seed
    database = Path(args.database) if args.database else out / _SEARCH_DB
    os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", str(out / "hypothesis"))  # not ./.hypothesis
    given = {"seed": seed, "database": database, "max-examples": examples, "ops": args.ops, "replay": args.replay}
    options = {name: str(value) for name, value in given.items() if value is not None}
    if not args.replay:
        print(f"normbench: search seed {seed}, example database {database} (the same search again: --seed {seed})",
              flush=True)
    groups = [g for g in runner.plan(adapters) if len([a for a in g.adapters if a.missing()]) < len(g.adapters)]
    groups.sort(key=lambda g: -len(g.adapters))  # most searches first: the longest process starts first
    if len(groups) <= 1:
        argv = ["--pyargs", "normbench.suites.search", "-p", "no:xdist"]
        argv += [arg for name, value in options.items() for arg in (f"--search-{name}", value)]
        code = _pytest(argv, args, out / "results.jsonl")
        return _with_reports(code, out, args.no_report)
    return _search_groups(args, groups, options, out)


_SEARCH_DB = "search-db"  # normbench.search.profile.DATABASE, without importing Hypothesis here


def _whole(text: str | None, option: str, least: int) -> int | None:
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


def _search_groups(args: argparse.Namespace, groups: list, options: dict[str, str], out: Path) -> int:
    """One `normbench search` process per framework group, ``args.jobs`` at once; then one report."""
    from concurrent.futures import ThreadPoolExecutor

    def one(group) -> int:
        folder, log = out / group.name, out / f"{group.name}.log"
        cmd = [sys.executable, "-m", "normbench.cli", "search", "--adapters", group.refs, "-o", str(folder),
               "--no-report", *(arg for name, value in options.items() for arg in (f"--{name}", value))]
        cmd += ["-v"] if args.verbose else []
        cmd += ["--", *args.pytest_args] if args.pytest_args else []
        start = time.monotonic()
        code = _child(cmd, {**os.environ, **group.environment}, log=log)
        print(f"normbench: search {group.name}: {_outcome(code)} in {time.monotonic() - start:.0f} s "
              f"(output in {log})", flush=True)
        return code

    with ThreadPoolExecutor(args.jobs) as pool:
        codes = list(pool.map(one, groups))
    code = 1 if any(c not in (0, 5) for c in codes) else 0
    return _report_beside(sorted(out.glob("*/results.jsonl")), out, code, args.no_report)


def _outcome(code: int) -> str:
    return {0: "no failure", 1: "found failures", 5: "nothing to search"}.get(code, f"exit status {code}")


def _run_folder(args: argparse.Namespace) -> Path | None:
    """A new, writable run folder. An existing one is replaced only with --overwrite, and only
    if it is a normbench run: its run.json parses as one, it holds nothing a run does not write,
    and it is not the working directory, a folder above it, the home folder or the root."""
    out = _folder(args)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not args.overwrite:
            _fail(f"{out} already exists; choose another -o, or pass --overwrite to replace an earlier run")
            return None
        problem = _not_replaceable(out)
        if problem:
            _fail(f"not deleting {out}: {problem}")
            return None
        for entry in out.iterdir():  # only what a run writes (_not_replaceable checked)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return _writable(out)


def _not_replaceable(out: Path) -> str | None:
    """Why --overwrite must not empty ``out`` (None if it may)."""
    where = out.resolve()
    cwd = Path.cwd().resolve()
    if where == cwd or where in cwd.parents or where in (Path.home().resolve(), Path(where.anchor)):
        return "it is the working directory, a folder above it, the home folder or the root"
    plan = out / "run.json"
    if not plan.is_file():
        return "it is not a normbench run folder (no run.json)"
    try:
        data = json.loads(plan.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"its run.json is not a normbench run record ({exc})"
    if not records.is_run_plan(data):
        return "its run.json is not a normbench run record"
    foreign = sorted(e.name for e in out.iterdir() if e.name not in runner.RUN_ENTRIES)
    if foreign:
        return f"it holds files a run does not write ({', '.join(foreign[:5])}{', …' if len(foreign) > 5 else ''})"
    return None


def _main_job(args: argparse.Namespace) -> int:
    from .running import progress

    try:
        adapters = registry.select(args.adapters)
        suites = runner.parse_suites(args.suites)
    except (registry.UnknownAdapter, runner.RunError) as exc:
        return _fail(str(exc))
    if not adapters:
        return _fail("--adapters names no adapter")
    if args.workers is not None and args.workers != "auto" and not args.workers.isdigit():
        return _fail(f"-n/--workers must be a whole number or 'auto', got {args.workers!r}")
    try:
        alloc = allocator.resolve(args.allocator)
    except allocator.AllocatorError as exc:
        return _fail(str(exc))
    out = _run_folder(args)
    if out is None:
        return 2
    threads.configure(args.threads)  # inherited by every process through the environment
    # The float64 reference is what the frameworks are measured against, not one of them: timed
    # only when named (its float64 passes over a 4096 × 16384 RMSNorm take seconds per call).
    untimed = ("numpy",) if args.adapters is None else ()
    opts = runner.Options(suites=suites, quick=args.quick, threads=args.threads, timeout_s=args.timeout,
                          workers=args.workers, jobs=1 if args.workers else args.jobs, untimed=untimed,
                          allocator=alloc)
    job_list = runner.jobs(runner.plan(adapters), out, opts)
    runner.write_plan(out, job_list, opts)
    plan_lock = threading.Lock()  # verification jobs finish on the pool's threads

    with _stopped_by_signals() as stop, progress.Display(job_list) as display:
        def on_change(job: runner.Job) -> None:
            display.update(job)
            if job.finished:
                with plan_lock:
                    runner.write_plan(out, job_list, opts)

        runner.run_all(job_list, opts, on_change, stop)
    files = [f for job in job_list for f in runner.result_files(job.folder)]
    report, problem = None, None
    if files:
        try:
            report = write_reports(files, out / "report")[0]
        except Exception as exc:  # noqa: BLE001 - the results are kept; say why the report is missing
            problem = f"could not render the report ({type(exc).__name__}: {exc}); results are in {out}"
    else:
        problem = "no process wrote any results"
    progress.summary(job_list, out, report, problem)
    if stop.is_set():
        done = sum(job.status in ("done", "not installed") for job in job_list)
        print(f"normbench: interrupted by {stop.signal}: {done} of {len(job_list)} processes finished; "
              + (f"partial report: {report}" if report else f"results so far in {out}"), file=sys.stderr)
        return 130
    failed = any(job.failed or job.counts.get("fail") or job.counts.get("error") for job in job_list)
    return 1 if failed or problem else 0


class _Stop(threading.Event):
    signal: str = ""


@contextlib.contextmanager
def _stopped_by_signals():
    """SIGINT and SIGTERM set the event the runner watches (it stops every child and starts no
    more), instead of a KeyboardInterrupt traceback in the middle of a run."""
    stop = _Stop()

    def handler(signum, _frame) -> None:
        stop.signal = stop.signal or signal.Signals(signum).name
        stop.set()

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def _with_reports(code: int, out: Path, skip: bool = False) -> int:
    """Render the run's reports beside its results; a rendering problem loses no results."""
    if not skip and (out / "results.jsonl").exists():
        try:
            print("normbench: report in " + str(write_reports([out / "results.jsonl"], out)[0]))
        except Exception as exc:  # noqa: BLE001 - the results are what matters; say why and go on
            print(f"normbench: could not render the report ({type(exc).__name__}: {exc})", file=sys.stderr)
            return code or 1
    return code


def _bench(args: argparse.Namespace) -> int:
    from .numerics.dtypes import DTYPES

    try:
        registry.select(args.adapters)
    except registry.UnknownAdapter as exc:
        return _fail(str(exc))
    bad = [d for d in (args.dtypes or "").split(",") if args.dtypes and d not in DTYPES]
    if bad:
        return _fail(f"unknown dtype {bad[0]!r} in --dtypes; expected some of {', '.join(DTYPES)}")
    if args.allocator and args.allocators:
        return _fail("give --allocator or --allocators, not both")
    try:
        threads.configure(args.threads)
        chosen = (allocator.parse_list(args.allocators) if args.allocators
                  else [allocator.resolve(args.allocator)])
    except allocator.AllocatorError as exc:
        return _fail(str(exc))
    except ValueError as exc:
        return _fail(f"--threads: {exc}")
    if args.self_check and len(chosen) > 1:
        return _fail("--self-check runs under one allocator; give --allocator")
    out = _output(args)
    if out is None:
        return 2
    if args.self_check:
        return _self_check(args, chosen[0], out)
    if len(chosen) > 1:
        return _bench_allocators(args, chosen, out)
    if not allocator.current(chosen[0]):
        # The allocator acts from process start (the loader reads GLIBC_TUNABLES and LD_PRELOAD):
        # run this same command again in a process started under it.
        return _child(_bench_command(args, out, chosen[0]), allocator.process_env(chosen[0]))
    argv = ["--pyargs", "normbench.suites.speed", *(["--bench-dtypes", args.dtypes] if args.dtypes else []),
            "-p", "no:xdist",
            "--bench-repeats", str(args.repeats), "--bench-first-repeat", str(args.first_repeat),
            # gc off while timing, as timeit does: with it on, a collection's cost grows with the
            # benchmark process's heap (pytest's objects), which made the harness 4-9 % slower than a
            # bare loop in a fresh process for the same torch call
            "--benchmark-json", str(out / "benchmark.json"), "--benchmark-disable-gc"]
    if args.quick:
        argv.append("--bench-quick")
    if args.no_sweeps:
        argv.append("--bench-no-sweeps")
    code = _pytest(argv, args, out / "results.jsonl")
    return _with_reports(code, out, args.no_report)


def _bench_command(args: argparse.Namespace, out: Path, alloc, **changes) -> list[str]:
    """``normbench bench`` with ``args`` (and ``changes``), writing to ``out`` under ``alloc``."""
    opts = {**vars(args), **changes}
    cmd = [sys.executable, "-m", "normbench.cli", "bench", "-o", str(out), "--threads", str(opts["threads"]),
           "--repeats", str(opts["repeats"]), "--first-repeat", str(opts["first_repeat"]),
           "--allocator", alloc.spec]
    cmd += ["--adapters", opts["adapters"]] if opts["adapters"] else []
    cmd += ["--dtypes", opts["dtypes"]] if opts["dtypes"] else []
    cmd += [flag for flag, on in (("--quick", opts["quick"]), ("--no-sweeps", opts["no_sweeps"]),
                                  ("--no-report", opts["no_report"]), ("-v", opts["verbose"])) if on]
    return cmd + (["--", *opts["pytest_args"]] if opts["pytest_args"] else [])


def _child(cmd: list[str], env: dict[str, str], log: Path | None = None) -> int:
    """Run ``cmd`` to its end, its output to ``log`` if given; Ctrl-C reaches it too (same
    process group), so wait for it to stop."""
    import subprocess

    with contextlib.ExitStack() as stack:
        out = stack.enter_context(open(log, "wb")) if log else None
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT if out else None)
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:
                continue


def _bench_allocators(args: argparse.Namespace, chosen: list, out: Path) -> int:
    """The same cases under each allocator: one process per allocator, pass and framework group
    (as `normbench run` times them: in one process, one framework's worker threads, still
    spinning after its call, slow the next framework's), passes outermost, so a slow spell of
    the machine spoils one repeat of every allocator rather than all repeats of one."""
    groups = runner.plan(registry.select(args.adapters))
    code = 0
    for repeat in range(args.first_repeat, args.first_repeat + args.repeats):
        for alloc in chosen:
            for group in groups:
                folder = out / alloc.name / f"r{repeat}" / group.name
                cmd = _bench_command(args, folder, alloc, adapters=group.refs, repeats=1, first_repeat=repeat,
                                     no_report=True)
                folder.parent.mkdir(parents=True, exist_ok=True)
                log = folder.parent / f"{group.name}.log"
                print(f"normbench: {alloc.name}, pass {repeat + 1 - args.first_repeat} of {args.repeats}, "
                      f"{group.name} (output in {log})", flush=True)
                env = allocator.process_env(alloc, {**os.environ, **group.environment})
                code = max(code, _child(cmd, env, log=log))
    return _report_beside(sorted(out.rglob("results.jsonl")), out, code, args.no_report)


def _report_beside(files: list[Path], out: Path, code: int, skip: bool) -> int:
    """The report of the child processes' results, written into ``out``; the exit status, made a
    failure if the report could not be written (the results are kept either way)."""
    if files and not skip:
        try:
            print("normbench: report in " + str(write_reports(files, out)[0]))
        except Exception as exc:  # noqa: BLE001 - the results are kept; say why the report is missing
            print(f"normbench: could not render the report ({type(exc).__name__}: {exc})", file=sys.stderr)
            return code or 1
    return code


def _self_check(args: argparse.Namespace, alloc, out: Path) -> int:
    """For one adapter per framework family (those installed, or named by --adapters): a benchmark
    process under ``alloc`` that times the self-check case, then interleaves harness blocks with
    bare blocks of the same call in that process and in a fresh one (bench.self_check)."""
    from .bench import self_check

    wanted = [a.name for a in registry.select(args.adapters)] if args.adapters else list(self_check.FAMILIES.values())
    present = [name for name in self_check.FAMILIES.values() if name in wanted and not registry.get(name).missing()]
    if not present:
        return _fail("the self-check times " + ", ".join(self_check.FAMILIES.values())
                     + "; none of them is installed" + (" and named by --adapters" if args.adapters else ""))
    env = {**allocator.process_env(alloc), self_check.FRESH: "1"}
    code = 0
    for name in present:
        folder = out / name.replace("[", "-").replace("]", "")
        cmd = _bench_command(args, folder, alloc, adapters=name, quick=True, no_report=True, repeats=1,
                             first_repeat=0, pytest_args=["-k", "test_self_check"])
        log = out / f"{folder.name}.log"
        code = max(code, _child(cmd, env, log=log))
        results = folder / "results.jsonl"
        rows = [r for r in records.read(results)[1] if r["check"] == "self_check"] if results.exists() else []
        if not rows:
            print(f"normbench: {name}: the self-check did not run; see {log}", file=sys.stderr)
            code = max(code, 1)
            continue
        print(f"normbench: {name} ({alloc.name}): {rows[0]['outcome']}: {rows[0]['message']}", flush=True)
        code = max(code, 0 if rows[0]["outcome"] == "pass" else 1)
    return code


def write_reports(sources, out: Path) -> list[Path]:
    """report.html, report.md and results.csv in ``out`` from results files (or loaded results)."""
    from .reports import html, markdown, model

    res = sources if isinstance(sources, model.Results) else model.load(sources, warn=_warn)
    out.mkdir(parents=True, exist_ok=True)
    written = [out / "report.html", out / "report.md", out / "results.csv"]
    written[0].write_text(html.render(res), encoding="utf-8")
    written[1].write_text(markdown.render(res, html_name="report.html"), encoding="utf-8")
    model.tidy(res).to_csv(written[2], index=False)
    return written


REPORT_FILES = {"report.html", "report.md", "results.csv"}


def _warn(message: str) -> None:
    print(f"normbench: warning: {message}", file=sys.stderr)


def _report(args: argparse.Namespace) -> int:
    from .reports import model

    try:
        res = model.load(args.results, warn=_warn)  # read before anything is written
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    target = Path(args.output) if args.output else None
    if args.overwrite and target and target.is_dir() and {p.name for p in target.iterdir()} <= REPORT_FILES:
        out = _writable(target)  # only an earlier report's own files are replaced
    else:
        out = _output(args)
    if out is None:
        return 2
    print("normbench: wrote " + ", ".join(map(str, write_reports(res, out))))
    return 0


def _compare(args: argparse.Namespace) -> int:
    from .reports import compare, model

    try:
        old, new = model.load(args.old, warn=_warn), model.load(args.new, warn=_warn)
        same = sorted(set(map(_resolved, old.environments["source"])) & set(map(_resolved, new.environments["source"])))
        if same:
            return _fail(f"{same[0]} is on both sides of the comparison"
                         + (f" ({len(same)} files are)" if len(same) > 1 else "") + "; compare two different runs")
        factor = compare.DEFAULT_FACTOR if args.factor is None else args.factor
        result = compare.compare(old, new, factor=factor, alpha=args.alpha)
    except (FileNotFoundError, ValueError) as exc:
        return _fail(str(exc))
    print(result.markdown(only_changed=not args.all))
    return 1 if result.regressed else 0


def _resolved(path: str) -> str:
    return str(Path(path).resolve())


def _ratio(text: str) -> float:
    value = _float(text)
    if not value > 1:
        raise argparse.ArgumentTypeError(f"must be greater than 1 (a ratio of times), got {text}")
    return value


def _probability(text: str) -> float:
    value = _float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


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
    run = sub.add_parser("run", help="the main job: every suite, one process per framework group, then the "
                                     "reports (the default command)")
    run.add_argument("--adapters", help="comma-separated adapter names or module:Class (default: all known)")
    run.add_argument("--suites", help=f"comma-separated, some of {', '.join(runner.SUITES)} (default: all)")
    run.add_argument("--quick", action="store_true",
                     help="quick matrix: float32/float64 checks only, one timed pass of the default "
                          "benchmark shapes (no sweeps)")
    run.add_argument("--threads", type=_positive_int, default=threads.available(),
                     help="threads for every framework (default: every CPU this process may use)")
    run.add_argument("-o", "--output", help="run folder (default normbench-results/<time>)")
    run.add_argument("--overwrite", action="store_true", help="replace an earlier run in the -o folder")
    run.add_argument("-n", "--workers", help="pytest-xdist workers for the verification suites (a number or "
                                             "'auto'); benchmarks always run alone")
    run.add_argument("-j", "--jobs", type=_positive_int, default=min(2, threads.available()),
                     help="verification processes at once (default: 2, or 1 on one core, or with -n); "
                          "benchmarks always run one at a time")
    run.add_argument("--allocator", default=None,
                     help=f"memory allocator of the benchmark processes: {', '.join(allocator.names())} or the path "
                          "of a library to preload (default warm; see README, Benchmarks)")
    run.add_argument("--timeout", type=_positive_int, default=900,
                     help="seconds before a group's process is killed and recorded as an error (default 900)")
    run.set_defaults(func=_main_job)
    verify = sub.add_parser("verify", help="the verification suites alone, in this process")
    verify.add_argument("--adapters", help="comma-separated adapter names or module:Class")
    verify.add_argument("--suites", help=f"comma-separated, some of {', '.join(runner.VERIFY_SUITES)}, "
                        f"{runner.SYNC_SUITE} (default: all but {runner.SYNC_SUITE})")
    verify.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    verify.add_argument("--no-report", action="store_true", help="write results only")
    verify.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    verify.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    verify.set_defaults(func=_verify)
    bench = sub.add_parser("bench", help="run the benchmarks alone (never under xdist)")
    bench.add_argument("--adapters", help="comma-separated adapter names or module:Class")
    bench.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    bench.add_argument("--threads", type=_positive_int, default=threads.available(),
                       help="threads for every framework (default: every CPU this process may use)")
    bench.add_argument("--dtypes", default=None, help="comma-separated, e.g. float32,float16,bfloat16 "
                       "(default: each op's own: float32, and bfloat16 too for RMSNorm)")
    bench.add_argument("--quick", action="store_true", help="tiny shapes: checks the harness, not speed")
    bench.add_argument("--no-sweeps", action="store_true", help="the default shapes only (normbench run --quick)")
    bench.add_argument("--repeats", type=_positive_int, default=3,
                       help="timed blocks per case, spread over the run and pooled (default 3)")
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
    bench.add_argument("-v", "--verbose", action="store_true", help="one line per benchmark")
    bench.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    bench.set_defaults(func=_bench)
    report = sub.add_parser("report", help="HTML and Markdown reports from results files")
    report.add_argument("results", nargs="+", help="results.jsonl files or run folders (merged)")
    report.add_argument("-o", "--output", help="report folder (default normbench-results/<time>)")
    report.add_argument("--overwrite", action="store_true",
                        help="replace an earlier report in -o (a folder holding only report files)")
    report.set_defaults(func=_report)
    cmp = sub.add_parser("compare", help="speed and outcome changes between two results files")
    cmp.add_argument("old", help="baseline results.jsonl or run folder")
    cmp.add_argument("new", help="results.jsonl or run folder to judge")
    cmp.add_argument("--factor", type=_ratio, default=None,
                     help="slowdown ratio that counts, beyond what the machine probes measured, greater than 1 "
                          "(default: compare.DEFAULT_FACTOR, measured from same-code runs; see README)")
    cmp.add_argument("--alpha", type=_probability, default=0.05,
                     help="significance level, between 0 and 1 (default 0.05)")
    cmp.add_argument("--all", action="store_true", help="list unchanged cases too")
    cmp.set_defaults(func=_compare)
    search = sub.add_parser("search", help="property-based search (Hypothesis) for each op's worst input")
    search.add_argument("--adapters", help="comma-separated adapter names or module:Class (default: all known)")
    search.add_argument("--ops", help="comma-separated ops to search (default: every op)")
    search.add_argument("--max-examples", default=None,
                        help="examples per adapter and op (default: the normbench-ci profile's; see README)")
    search.add_argument("--seed", default=None, help="seed of the whole search (default: random, printed)")
    search.add_argument("--database", default=None,
                        help="Hypothesis example database folder: past failures replay first (default: "
                             f"{_SEARCH_DB} in the output folder; give an earlier run's to reuse it)")
    search.add_argument("--replay", default=None, metavar="CASE_ID",
                        help="run the checks on these comma-separated case ids instead of searching (what a "
                             "failure's rerun command does)")
    search.add_argument("-o", "--output", help="results folder (default normbench-results/<time>)")
    search.add_argument("-j", "--jobs", type=_positive_int, default=min(2, threads.available()),
                        help="framework groups searched at once, each in its own process (default: 2)")
    search.add_argument("--no-report", action="store_true", help="write results only")
    search.add_argument("-v", "--verbose", action="store_true", help="one line per test")
    search.add_argument("pytest_args", nargs="*", help="extra pytest arguments, after --")
    search.set_defaults(func=_search)
    sub.add_parser("list", help="list known adapters").set_defaults(func=_list)
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("run", "verify", "bench", "report", "compare", "search", "list", "-h", "--help"):
        argv.insert(0, "run")  # plain `normbench` is the main job
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
