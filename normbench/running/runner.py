"""`normbench run`: the main job, with every framework group in a process of its own.

A framework that segfaults, hangs or cannot be imported takes down only its own group:
the parent imports no framework, starts one ``normbench verify`` (then one ``normbench
bench``) process per group, watches the records it flushes, and turns a crash, a timeout
or an abnormal exit into ``error`` records carrying the tail of the process's stderr.
Benchmark processes run one at a time, after every verification process has finished.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.base import Adapter
from ..bench import allocator
from ..results import kinds, records
from ..results.kinds import Suite
from ..results.records import OUTCOMES, RUN_FORMAT, Record, ResultsFile
from . import lock, tracebacks

VERIFY_SUITES = kinds.VERIFY_SUITES
# Run in processes of their own, each started with several host devices for its framework, so a
# collective that hangs loses only these rows.
SYNC_SUITE = Suite.SYNCHRONIZED
SUITES = kinds.RUN_SUITES
QUICK_FILTER = "not float16"  # the quick matrix: float32 and float64 cases (also drops bfloat16)
STDERR_TAIL = 3000  # characters of a failed process's stderr kept in its error records
GRACE_S = 5.0  # between asking a process to stop (SIGINT, SIGTERM) and SIGKILL
DUMP_S = 1.0  # for a hung process to write its stacks after SIGUSR1, before it is stopped
PARENT = "NORMBENCH_PARENT_PID"  # a child stops itself if this process goes away (see cli)


class RunError(ValueError):
    """A bad option for `normbench run`; the message is one line naming it."""


@dataclass
class Group:
    """Adapters that share one process (see ``Adapter.group``)."""

    name: str
    adapters: list[Adapter]

    @property
    def refs(self) -> str:
        return ",".join(a.ref or a.name for a in self.adapters)

    @property
    def environment(self) -> dict[str, str]:
        return {k: v for a in self.adapters for k, v in a.environment.items()}


def plan(adapters: list[Adapter]) -> list[Group]:
    """Groups in the order their first adapter was given."""
    groups: dict[str, Group] = {}
    for a in adapters:
        key = a.group or a.name
        groups.setdefault(key, Group(key, [])).adapters.append(a)
    return list(groups.values())


def parse_suites(text: str | None) -> tuple[str, ...]:
    if not text:
        return SUITES
    names = tuple(s.strip() for s in text.split(",") if s.strip())
    bad = [s for s in names if s not in SUITES]
    if bad or not names:
        raise RunError(f"unknown suite {bad[0] if bad else text!r}; known suites: {', '.join(SUITES)}")
    return names


@dataclass
class Job:
    """One group's verification or benchmark process."""

    phase: str  # "verify", "sync" (the synchronized suite) or "bench"
    group: Group
    folder: Path
    command: list[str]
    repeat: int | None = None  # benchmarks: which pass over the cases
    status: str = "waiting"  # waiting, running, done, not installed, crashed, timeout, failed to start, interrupted
    returncode: int | None = None
    elapsed_s: float = 0.0
    counts: Counter = field(default_factory=Counter)
    detail: str = ""

    @property
    def label(self) -> str:
        return f"{self.phase} {self.group.name}" + (f" r{self.repeat}" if self.repeat is not None else "")

    @property
    def slug(self) -> str:
        return self.label.replace(" ", "-")

    @property
    def finished(self) -> bool:
        return self.status not in ("waiting", "waiting for the machine", "running")

    @property
    def failed(self) -> bool:
        """Finished without running to its end (crashed, timed out, never started)."""
        return self.finished and self.status not in ("done", "not installed")


@dataclass
class Options:
    suites: tuple[str, ...] = SUITES
    quick: bool = False
    threads: int | None = None
    timeout_s: float = 900.0
    workers: str | None = None  # pytest-xdist -n for the verification processes
    dtypes: str | None = None  # benchmark dtypes; None: each op's own
    repeats: int = 3  # benchmark passes
    jobs: int = 1  # verification processes at once
    untimed: tuple[str, ...] = ()  # groups verified but not benchmarked
    allocator: allocator.Allocator = field(default_factory=allocator.resolve)  # benchmark processes' setting


def jobs(groups: list[Group], out: Path, opts: Options) -> list[Job]:
    """Verification processes for every group, then the benchmark passes: each pass times
    every group's cases once, in a fresh process per group, so a case's repeats are minutes
    apart and in different processes, and a transient slowdown of the machine (or one
    process's allocator state) spoils one repeat of a case, not all of them."""
    base = [sys.executable, "-X", "faulthandler", "-m", "normbench.cli"]
    out_jobs = []
    verify = [s for s in opts.suites if s in VERIFY_SUITES]
    for g in groups if verify else []:
        folder = out / "verify" / g.name
        cmd = [*base, "verify", "--adapters", g.refs, "-o", str(folder), "--no-report", "--suites", ",".join(verify)]
        extra = (["-k", QUICK_FILTER] if opts.quick else []) + (["-n", opts.workers] if opts.workers else [])
        out_jobs.append(Job("verify", g, folder, cmd + (["--", *extra] if extra else [])))
    for g in groups if SYNC_SUITE in opts.suites else []:
        folder = out / "sync" / g.name
        cmd = [*base, "verify", "--adapters", g.refs, "-o", str(folder), "--no-report", "--suites", SYNC_SUITE]
        out_jobs.append(Job("sync", g, folder, cmd))
    for repeat in range(1 if opts.quick else opts.repeats) if "speed" in opts.suites else []:
        for g in (g for g in groups if g.name not in opts.untimed):
            folder = out / "bench" / g.name / f"r{repeat}"
            cmd = [*base, "bench", "--adapters", g.refs, "-o", str(folder), "--no-report",
                   *(["--dtypes", opts.dtypes] if opts.dtypes else []), "--repeats", "1", "--first-repeat", str(repeat),
                   "--allocator", opts.allocator.spec]
            cmd += ["--threads", str(opts.threads)] if opts.threads else []
            cmd += ["--no-sweeps"] if opts.quick else []  # a quick look: the default shapes, one pass
            out_jobs.append(Job("bench", g, folder, cmd, repeat))
    return out_jobs


def result_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.jsonl") if p.is_file()) if folder.is_dir() else []


class Tally:
    """Outcome counts of the records under a folder. The parent polls twice a second while a
    process (a benchmark, too) runs, so each look reads only the complete lines appended since
    the last one."""

    def __init__(self) -> None:
        self._seen: dict[Path, tuple[int, Counter]] = {}

    def __call__(self, folder: Path) -> Counter:
        total: Counter = Counter()
        for path in result_files(folder):
            offset, counts = self._seen.get(path, (0, Counter()))
            with open(path, "rb") as fh:
                fh.seek(offset)
                data = fh.read()
            end = data.rfind(b"\n") + 1  # a line still being written is counted next time
            for line in data[:end].splitlines():
                try:
                    row = json.loads(line)
                except ValueError:
                    continue
                if isinstance(row, dict) and row.get("type") == "check" and row.get("outcome") in OUTCOMES:
                    counts[row["outcome"]] += 1
            self._seen[path] = (offset + end, counts)
            total += counts
        return total


def run_all(job_list: list[Job], opts: Options, on_change: Callable[[Job], None],
            stop: threading.Event | None = None) -> None:
    """Verification processes (the synchronized suite's too) ``opts.jobs`` at a time (correctness
    does not mind sharing the cores), then the benchmark processes one by one. Setting ``stop`` (on SIGINT or SIGTERM)
    stops the running processes and starts no more; each is marked ``interrupted``."""
    stop = stop or threading.Event()

    def one(job: Job) -> None:
        if stop.is_set():
            job.status, job.detail = "interrupted", "not started"
            on_change(job)
        elif skip_missing(job):
            on_change(job)
        else:
            run_job(job, opts, on_change, stop)

    with ThreadPoolExecutor(opts.jobs) as pool:
        list(pool.map(one, [j for j in job_list if j.phase != "bench"]))
    for job in job_list:
        if job.phase == "bench":
            one(job)


def skip_missing(job: Job) -> bool:
    """A group whose frameworks are not installed starts no process: one ``skip`` record per
    adapter says what to install, so reports list it as absent and why."""
    missing = [a for a in job.group.adapters if a.missing()]
    if len(missing) < len(job.group.adapters):
        return False
    job.status, job.detail = "not installed", "; ".join(a.install_hint() for a in missing)
    if job.repeat:  # said once, by the first pass
        return True
    _write(job, "not-installed.jsonl", [
        _process_record(job, a, "skip", f"{a.name}: not installed ({', '.join(a.missing())}): {a.install_hint()}")
        for a in missing])
    job.counts = Tally()(job.folder)
    return True


def run_job(job: Job, opts: Options, on_change: Callable[[Job], None] = lambda job: None,
            stop: threading.Event | None = None) -> None:
    """Run one process to completion, timeout or ``stop``; failures become records in its folder."""
    stop = stop or threading.Event()

    def waiting() -> None:
        job.status = "waiting for the machine"
        on_change(job)

    try:
        with lock.machine(exclusive=job.phase == "bench", waiting=waiting, stop=stop) as held:
            _run(job, opts, on_change, stop, held)
    except lock.Interrupted:
        job.status, job.detail = "interrupted", "not started: stopped while waiting for the machine"
        on_change(job)


def _run(job: Job, opts: Options, on_change: Callable[[Job], None], stop: threading.Event, held: dict) -> None:
    logs = job.folder.parents[1 if job.repeat is None else 2] / "logs"  # the process owns its folder
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, **job.group.environment, lock.HELD: json.dumps(held), PARENT: str(os.getpid())}
    if job.phase == "bench":  # started under the allocator setting, so the child runs its cases at once
        env = allocator.process_env(opts.allocator, env)
    if job.phase == "sync":  # JAX takes its host device count from the environment it starts in
        from ..verify import synchronized

        env = synchronized.with_host_devices(env)
    tally = Tally()
    start = time.monotonic()
    stdout, stderr = (logs / f"{job.slug}.{stream}.log" for stream in ("stdout", "stderr"))
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        try:
            proc = subprocess.Popen(job.command, stdout=out, stderr=err, env=env, start_new_session=True)
        except OSError as exc:
            job.status, job.detail = "failed to start", str(exc)
            _error_records(job, f"could not start the process: {exc}", "")
            on_change(job)
            return
        job.status = "running"
        on_change(job)
        ended = None  # why we stopped it: "timeout" or "interrupted"
        while proc.poll() is None:
            time.sleep(0.5)
            job.elapsed_s = time.monotonic() - start
            job.counts = tally(job.folder)
            on_change(job)
            if ended is None and stop.is_set():
                ended = "interrupted"
                _stop(proc, signal.SIGINT)
            elif ended is None and job.elapsed_s > opts.timeout_s:
                ended = "timeout"
                _stop(proc, signal.SIGTERM, dump=True)
    job.elapsed_s = time.monotonic() - start
    job.returncode = proc.returncode
    dropped = _drop_partial_lines(job.folder)
    text = stderr.read_text(encoding="utf-8", errors="replace")
    job.counts = tally(job.folder)
    written = sum(job.counts.values())
    if ended == "interrupted":
        job.status, job.detail = "interrupted", f"stopped after {job.elapsed_s:.0f} s"
        _write(job, "interrupted.jsonl", [_process_record(
            job, a, "skip", f"the {job.label} process was interrupted after {job.elapsed_s:.0f} s, with {written} "
            "records written; the rest of its checks did not run") for a in job.group.adapters])
    elif ended == "timeout":
        job.status, job.detail = "timeout", f"killed after {opts.timeout_s:g} s (--timeout)"
    elif proc.returncode < 0:
        job.status, job.detail = "crashed", f"killed by {signal.Signals(-proc.returncode).name}"
    elif proc.returncode not in (0, 1, 5):  # pytest: 1 = checks failed, 5 = nothing collected
        job.status, job.detail = "crashed", f"exited with status {proc.returncode}"
    else:
        job.status = "done"
    if job.status in ("timeout", "crashed"):
        where = tracebacks.blame(tracebacks.of_faulthandler(text), _adapter_files(job))
        hung = job.status == "timeout"  # the detail says after how long; stderr holds the stack dump
        message = (f"the {job.label} process was {job.detail}" + ("" if hung else f" after {job.elapsed_s:.0f} s")
                   + f", with {written} records written" + (f" ({dropped})" if dropped else "")
                   + (f"; it {'hung' if hung else 'crashed'} at {where}" if where else "")
                   + ("" if hung else f"; stderr: {_gist(text)}"))
        _error_records(job, message, _tail(text), where)
    job.counts = tally(job.folder)  # with the records written here
    on_change(job)


def _adapter_files(job: Job) -> frozenset[str]:
    return frozenset().union(*(tracebacks.adapter_files(a) for a in job.group.adapters))


def _stop(proc: subprocess.Popen, first: signal.Signals, dump: bool = False) -> None:
    """Stop the process group: SIGUSR1 first if ``dump`` (the child's faulthandler writes every
    thread's stack to its stderr, so a hang says where it hung), then ``first``, then SIGKILL
    whatever is left after a grace period."""
    steps = ([(signal.SIGUSR1, DUMP_S)] if dump else []) + [(first, GRACE_S), (signal.SIGKILL, None)]
    for sig, wait in steps:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _drop_partial_lines(folder: Path) -> str:
    """A process killed mid-write can leave a last line without its newline. Move it to a
    ``.partial`` file beside the results (kept, not deleted) so the results stay readable."""
    notes = []
    for path in result_files(folder):
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            path.with_name(path.name + ".partial").write_bytes(data[cut:])
            with open(path, "r+b") as fh:
                fh.truncate(cut)
            notes.append(f"its unfinished last line in {path.name} was moved to {path.name}.partial")
    return "; ".join(notes)


DUMP = re.compile(r"^(Fatal Python error:|Current thread 0x|Thread 0x)", re.M)  # faulthandler's first line


def _tail(text: str) -> str:
    """The part of stderr a record keeps: from faulthandler's fatal error or stack dump on (its
    innermost frames come first), else the end."""
    found = DUMP.search(text)
    return text[found.start():found.start() + STDERR_TAIL] if found else text[-STDERR_TAIL:]


def _fatal(text: str) -> str | None:
    """faulthandler's "Fatal Python error: Segmentation fault" line, if the process printed one."""
    return next((line.strip() for line in text.splitlines() if line.startswith("Fatal Python error")), None)


def _gist(text: str) -> str:
    """The lines of stderr that say what happened: the fatal error and the innermost frame
    (faulthandler prints it first), else the last three lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = _fatal(text)
    if fatal:
        after = lines[lines.index(fatal) + 1:]
        frame = next((line for line in after if line.startswith("File ")), "")
        return " | ".join(x for x in (fatal, frame) if x)
    return " | ".join(lines[-3:]) if lines else "(empty)"


def _error_records(job: Job, message: str, stderr_tail: str, where: tracebacks.Frame | None = None) -> None:
    """One error record per adapter of the group, in a file of their own (nothing the process
    wrote is touched)."""
    facts = {"stderr_tail": stderr_tail, "where": str(where) if where else None}
    _write(job, "process-errors.jsonl",
           [_process_record(job, a, "error", message, facts) for a in job.group.adapters],
           extra_env={"process": {"command": job.command, "returncode": job.returncode}})


def _write(job: Job, name: str, rows: list[Record], extra_env: dict | None = None) -> None:
    file = ResultsFile(job.folder / name, extra_env=extra_env)
    for rec in rows:
        file.add(rec)
    file.close()


def _process_record(job: Job, adapter: Adapter, outcome: str, message: str, facts: dict | None = None) -> Record:
    """A record about a whole process (it crashed, or never started), not about one case."""
    about = {"op": "-", "dtype": "-", "shape": [], "layout": None, "input": "-", "seed": 0, "case": job.slug,
             "params": {"group": job.group.name}}
    return records.build(
        adapter, "speed" if job.phase == "bench" else "process", f"{job.phase}_process", about,
        framework_version=adapter.version() if not adapter.missing() else "not installed",
        outcome=outcome, message=message,
        rerun=shlex.join(_rerun(job.command)) if outcome == "error" else "",
        facts={"status": job.status, "returncode": job.returncode, "elapsed_s": round(job.elapsed_s, 1),
               **(facts or {})},
    )


def _rerun(command: list[str]) -> list[str]:
    """The process's command, writing to a new folder beside the one it left behind."""
    out = list(command)
    if "-o" in out:
        out[out.index("-o") + 1] += "-rerun"
    return out


def write_plan(out: Path, job_list: list[Job], opts: Options) -> None:
    """``run.json``: what this run folder holds and how each process ended, rewritten as each
    one finishes (so an interrupted run says which finished); its ``format`` marks the folder
    as a run normbench may replace (see ``records.is_run_plan``)."""
    data = {
        "format": RUN_FORMAT, "suites": list(opts.suites), "quick": opts.quick, "threads": opts.threads,
        "timeout_s": opts.timeout_s, "workers": opts.workers, "allocator": opts.allocator.spec,
        "jobs": [{"phase": j.phase, "group": j.group.name, "repeat": j.repeat, "adapters": j.group.refs,
                  "folder": str(j.folder.relative_to(out)), "command": j.command, "status": j.status,
                  "returncode": j.returncode, "elapsed_s": round(j.elapsed_s, 1), "counts": dict(j.counts),
                  "detail": j.detail}
                 for j in job_list],
    }
    fresh = out / "run.json.new"
    fresh.write_text(json.dumps(data, indent=2) + "\n")
    fresh.replace(out / "run.json")  # never a half-written run.json


RUN_ENTRIES = {"run.json", "run.json.new", "verify", "sync", "bench", "logs", "report"}  # what a run folder holds
