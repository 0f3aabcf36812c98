"""`normbench run`: the main job, with every framework group in a process of its own.

The parent imports no framework: it starts one ``normbench verify`` process per group (and one
for the synchronized suite), then one ``normbench bench`` process that times every adapter head to
head (``bench.conductor``: a process per adapter, all alive at once), and the supervisor turns a
crash, a timeout or an abnormal exit into ``error`` records. The benchmark runs after every
verification process has finished, with the machine to itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.base import Adapter
from ..bench import allocator
from ..results import kinds
from ..results.kinds import Suite
from ..results.records import RUN_FORMAT
from . import commands
from .folder import MODES_FIELD, RUN_PLAN, write_json
from .job import Group, Job

VERIFY_SUITES = kinds.VERIFY_SUITES
# Run in processes of their own, each started with several host devices for its framework, so a
# collective that hangs loses only these rows.
SYNC_SUITE = Suite.SYNCHRONIZED
SUITES = kinds.RUN_SUITES
# The main job's benchmark: fewer passes and rounds than `normbench bench` (conductor.PROCESSES x
# conductor.ROUNDS), so the whole run stays near its 13 minutes on 2 cores; bench is for close calls.
RUN_PASSES = 2
RUN_ROUNDS = 4
HEAD_TO_HEAD = "head-to-head"  # the group of the main benchmark job: every timed adapter, each in its processes
QUICK_FILTER = "not float16"  # the quick matrix: float32 and float64 cases (also drops bfloat16)
DEFAULT_TIMEOUT_S = 900  # seconds before a process is killed and recorded as an error


class RunError(ValueError):
    """A bad option for `normbench run`; the message is one line naming it."""


def parse_suites(text: str | None) -> tuple[str, ...]:
    if not text:
        return SUITES
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in SUITES]
    if bad or not names:
        raise RunError(f"unknown suite {bad[0] if bad else text!r}; known suites: {', '.join(SUITES)}")
    return names


@dataclass
class Options:
    suites: tuple[str, ...] = SUITES
    quick: bool = False
    threads: int | None = None
    timeout_s: float = DEFAULT_TIMEOUT_S
    workers: str | None = None  # pytest-xdist -n for the verification processes
    dtypes: str | None = None  # benchmark dtypes; None: each op's own
    repeats: int = RUN_PASSES  # benchmark passes, each with a fresh process per adapter
    rounds: int = RUN_ROUNDS  # interleaved blocks per process and case
    jobs: int = 1  # verification processes at once
    untimed: tuple[str, ...] = ()  # groups verified but not benchmarked
    # groups verified on the short matrix and timed at the default shapes in a pass of their own, beside their
    # default modes: the compiled modes a run adds by default (in the main field they would hold ~3 more
    # processes and GBs at once, past a pass's memory budget, and sit through every sweep)
    short: tuple[str, ...] = ()
    allocator: allocator.Allocator = field(default_factory=allocator.resolve)  # benchmark processes' setting
    compile_cache: str | None = None  # the verification processes' (`verify --compile-cache`); None: the user's


def _host_devices(env: dict[str, str]) -> dict[str, str]:
    """JAX takes its host device count from the environment it starts in."""
    from ..verify import synchronized  # imports numpy and the checks: only when a sync process starts

    return synchronized.with_host_devices(env)


def jobs(groups: list[Group], out: Path, opts: Options) -> list[Job]:
    """Verification processes for every group, then the benchmark passes: each pass times
    every group's cases once, in a fresh process per group, so a case's repeats are minutes
    apart and in different processes, and a transient slowdown of the machine (or one
    process's allocator state) spoils one repeat of a case, not all of them."""
    out_jobs = []
    logs = out / "logs"
    verify = [s for s in opts.suites if s in VERIFY_SUITES]
    cache = ["--compile-cache", opts.compile_cache] if opts.compile_cache else []
    for g in groups if verify else []:
        folder = out / "verify" / g.name
        cmd = [*commands.CLI, "verify", "--adapters", g.refs, "-o", str(folder), "--no-report",
               "--suites", ",".join(verify), *cache]
        cmd += ["--matrix", "short"] if g.name in opts.short else []
        extra = (["-k", QUICK_FILTER] if opts.quick else []) + (["-n", opts.workers] if opts.workers else [])
        out_jobs.append(Job("verify", g, folder, cmd + (["--", *extra] if extra else []), logs))
    # synchronized BatchNorm runs on each framework's own engine, in its default mode
    for g in [g for g in groups if all(a.mode is None for a in g.adapters)] if SYNC_SUITE in opts.suites else []:
        folder = out / "sync" / g.name
        cmd = [*commands.CLI, "verify", "--adapters", g.refs, "-o", str(folder), "--no-report", "--suites", SYNC_SUITE,
               *cache]
        out_jobs.append(Job("sync", g, folder, cmd, logs, env_steps=(_host_devices,)))
    timed = [a for g in groups if g.name not in (*opts.untimed, *opts.short) for a in g.adapters]
    if Suite.SPEED in opts.suites and timed:
        out_jobs.append(_head_to_head(timed, out, opts))
        if beside := _modes_field(groups, timed, opts):
            out_jobs.append(_head_to_head(beside, out, opts, MODES_FIELD))
    return out_jobs


def _modes_field(groups: list[Group], timed: list[Adapter], opts: Options) -> list[Adapter]:
    """The compiled modes a run adds (``opts.short``), each beside its default mode where the main
    field times that: the side field that gives the Execution modes section its ratios."""
    defaults = {a.ref or a.name: a for a in timed}
    chosen: list[Adapter] = []
    for a in (a for g in groups if g.name in opts.short for a in g.adapters):
        if base := defaults.get((a.ref or a.name).rpartition("+")[0]):
            chosen += [x for x in (base, a) if x not in chosen]
    return chosen


def _head_to_head(adapters: list[Adapter], out: Path, opts: Options, side: str | None = None) -> Job:
    """One `normbench bench` process conducting every timed adapter's processes head to head: its
    contenders have per-request limits of their own, so its limit is the supervisor's per pass. A
    ``side`` field (``bench --field``) times the default shapes only."""
    folder = out / ("bench" if side is None else f"bench-{side}")
    passes = 1 if opts.quick else opts.repeats
    refs = ",".join(a.ref or a.name for a in adapters)
    cmd = [*commands.CLI, "bench", "-o", str(folder), "--no-report", "--adapters", refs, "--processes", str(passes),
           "--rounds", str(opts.rounds), "--allocator", opts.allocator.spec,
           "--verbose"]  # its log says what each case and each phase took
    cmd += ["--threads", str(opts.threads)] if opts.threads else []
    cmd += ["--dtypes", opts.dtypes] if opts.dtypes else []
    cmd += ["--no-sweeps"] if opts.quick or side else []
    cmd += ["--field", side] if side else []
    group = HEAD_TO_HEAD if side is None else f"{side}-{HEAD_TO_HEAD}"
    return Job("bench", Group(group, adapters), folder, cmd, out / "logs", exclusive=True,
               timeout_s=opts.timeout_s * passes)


def write_plan(out: Path, job_list: list[Job], opts: Options) -> None:
    """``run.json``: what this run folder holds and how each process ended, rewritten as each
    one finishes (so an interrupted run says which finished); its ``format`` marks the folder
    as a run normbench may replace (see ``records.is_run_plan``)."""
    write_json(out / RUN_PLAN, {
        "format": RUN_FORMAT, "suites": list(opts.suites), "quick": opts.quick, "threads": opts.threads,
        "timeout_s": opts.timeout_s, "workers": opts.workers, "short_matrix": list(opts.short),
        "allocator": opts.allocator.spec, "compile_cache": opts.compile_cache,
        "jobs": describe(job_list, out)})


def describe(job_list: list[Job], out: Path) -> list[dict]:
    """Each job and how it stands, its folder relative to ``out``."""
    return [{"phase": j.phase, "group": j.group.name, "repeat": j.repeat, "adapters": j.group.refs,
             **({"variant": j.variant} if j.variant else {}),
             "folder": str(j.folder.relative_to(out)), "command": j.command, "status": j.status,
             "returncode": j.returncode, "elapsed_s": round(j.elapsed_s, 1), "counts": dict(j.counts),
             "detail": j.detail}
            for j in job_list]
