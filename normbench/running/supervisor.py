"""Every child process normbench starts runs here: in a session of its own, holding the machine
lock, its output in log files, watched twice a second, stopped on a timeout (after dumping its
stacks) or on Ctrl-C/SIGTERM, and a crash, hang or abnormal exit turned into ``error`` records
naming the adapter's own line where it died.

A framework that segfaults, hangs or cannot be imported so takes down only its own process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..adapters import failures
from ..bench import lock
from ..results.kinds import JobStatus, Outcome
from . import process_records, progress
from .child import GRACE_S, PARENT
from .folder import result_files
from .job import Job

DUMP_S = 1.0  # for a hung process to write its stacks after SIGUSR1, before it is stopped
OK_EXITS = (0, 1, 5)  # pytest: 1 = checks failed, 5 = nothing collected

OnChange = Callable[[Job], None]


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
                if isinstance(row, dict) and row.get("type") == "check" and row.get("outcome") in tuple(Outcome):
                    counts[row["outcome"]] += 1
            self._seen[path] = (offset + end, counts)
            total += counts
        return total


class Stop(threading.Event):
    """Set to stop every running child and start no more; ``signal`` names what set it."""

    signal: str = ""


@contextlib.contextmanager
def stopped_by_signals() -> Iterator[Stop]:
    """SIGINT and SIGTERM set the event the supervisor watches (it stops every child and starts
    no more), instead of a KeyboardInterrupt traceback in the middle of a run."""
    stop = Stop()

    def handler(signum, _frame) -> None:
        stop.signal = stop.signal or signal.Signals(signum).name
        stop.set()

    before = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in before.items():
            signal.signal(sig, old)


def supervise(job_list: list[Job], at_once: int, timeout_s: float, title: str, show: bool = True,
              on_finish: OnChange | None = None) -> Stop:
    """Run ``job_list`` (see :func:`run_all`) under Ctrl-C/SIGTERM handling, showing progress
    (unless not ``show``) and calling ``on_finish`` as each job ends; the stop event, set if a
    signal cut the jobs short."""
    finishing = threading.Lock()  # jobs finish on the pool's threads

    with stopped_by_signals() as stop, progress.Display(job_list, title, live=None if show else False,
                                                        quiet=not show) as display:
        def on_change(job: Job) -> None:
            display.update(job)
            if job.finished and on_finish is not None:
                with finishing:
                    on_finish(job)

        run_all(job_list, at_once, timeout_s, on_change, stop)
    return stop


def run_all(job_list: list[Job], at_once: int, timeout_s: float, on_change: OnChange,
            stop: threading.Event | None = None) -> None:
    """The shared jobs ``at_once`` at a time (correctness does not mind sharing the cores), then
    the exclusive ones (benchmarks) one by one. Setting ``stop`` (on SIGINT or SIGTERM) stops the
    running processes and starts no more; each is marked interrupted."""
    stop = stop or threading.Event()

    def one(job: Job) -> None:
        if stop.is_set():
            job.status, job.detail = JobStatus.INTERRUPTED, "not started"
            on_change(job)
        elif skip_missing(job):
            on_change(job)
        else:
            run_job(job, timeout_s, on_change, stop)

    with ThreadPoolExecutor(at_once) as pool:
        list(pool.map(one, [j for j in job_list if not j.exclusive]))
    for job in job_list:
        if job.exclusive:
            one(job)


def skip_missing(job: Job) -> bool:
    """A group whose frameworks are not installed starts no process: one ``skip`` record per
    adapter says what to install, so reports list it as absent and why."""
    missing = [a for a in job.group.adapters if a.missing()]
    if len(missing) < len(job.group.adapters):
        return False
    job.status, job.detail = JobStatus.NOT_INSTALLED, "; ".join(a.install_hint() for a in missing)
    if job.repeat:  # said once, by the first pass
        return True
    process_records.write(job, "not-installed.jsonl", [process_records.process_record(
        job, a, Outcome.SKIP, f"{a.name}: not installed ({', '.join(a.missing())}): {a.install_hint()}")
        for a in missing])
    job.counts = Tally()(job.folder)
    return True


def run_job(job: Job, timeout_s: float, on_change: OnChange = lambda job: None,
            stop: threading.Event | None = None) -> None:
    """Run one process to completion, timeout (the job's own, else ``timeout_s``) or ``stop``;
    failures become records in its folder."""
    stop = stop or threading.Event()
    timeout_s = job.timeout_s or timeout_s

    def waiting() -> None:
        job.status = JobStatus.WAITING_FOR_MACHINE
        on_change(job)

    try:
        with lock.machine(exclusive=job.exclusive, waiting=waiting, stop=stop) as held:
            _run(job, timeout_s, on_change, stop, held)
    except lock.Interrupted:
        job.status, job.detail = JobStatus.INTERRUPTED, "not started: stopped while waiting for the machine"
        on_change(job)


def environment(job: Job, held: dict) -> dict[str, str]:
    """What the child starts under: this process's environment and the group's, the lock held
    for it, this process's id (it stops itself if we go), then the job's own steps."""
    env = {**os.environ, **job.group.environment, lock.HELD: json.dumps(held), PARENT: str(os.getpid())}
    for step in job.env_steps:
        env = step(env)
    return env


def _run(job: Job, timeout_s: float, on_change: OnChange, stop: threading.Event, held: dict) -> None:
    job.logs.mkdir(parents=True, exist_ok=True)
    env = environment(job, held)
    tally = Tally()
    start = time.monotonic()
    stdout, stderr = (job.logs / f"{job.slug}.{stream}.log" for stream in ("stdout", "stderr"))
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        try:
            proc = subprocess.Popen(job.command, stdout=out, stderr=err, env=env, start_new_session=True)
        except OSError as exc:
            job.status, job.detail = JobStatus.FAILED_TO_START, str(exc)
            process_records.error_records(job, f"could not start the process: {exc}", "")
            on_change(job)
            return
        job.status = JobStatus.RUNNING
        on_change(job)
        ended = None  # why we stopped it: timeout or interrupted
        while proc.poll() is None:
            time.sleep(0.5)
            job.elapsed_s = time.monotonic() - start
            job.counts = tally(job.folder)
            on_change(job)
            if ended is None and stop.is_set():
                ended = JobStatus.INTERRUPTED
                _stop(proc, signal.SIGINT)
            elif ended is None and job.elapsed_s > timeout_s:
                ended = JobStatus.TIMEOUT
                _stop(proc, signal.SIGTERM, dump=True)
    job.elapsed_s = time.monotonic() - start
    job.returncode = proc.returncode
    _judge(job, ended, timeout_s, stderr.read_text(encoding="utf-8", errors="replace"), tally)
    job.counts = tally(job.folder)  # with the records written here
    on_change(job)


def _judge(job: Job, ended: JobStatus | None, timeout_s: float, text: str, tally: Tally) -> None:
    """The job's status from how it ended, and the records that say so where it did not finish."""
    dropped = drop_partial_lines(job.folder)
    job.counts = tally(job.folder)
    written = sum(job.counts.values())
    if ended == JobStatus.INTERRUPTED:
        job.status, job.detail = JobStatus.INTERRUPTED, f"stopped after {job.elapsed_s:.0f} s"
        process_records.write(job, "interrupted.jsonl", [process_records.process_record(
            job, a, Outcome.SKIP, f"the {job.label} process was interrupted after {job.elapsed_s:.0f} s, with "
            f"{written} records written; the rest of its checks did not run") for a in job.group.adapters])
        return
    if ended == JobStatus.TIMEOUT:
        job.status, job.detail = JobStatus.TIMEOUT, f"killed after {timeout_s:g} s (--timeout)"
    elif job.returncode < 0:
        job.status, job.detail = JobStatus.CRASHED, f"killed by {signal.Signals(-job.returncode).name}"
    elif job.returncode not in OK_EXITS:
        job.status, job.detail = JobStatus.CRASHED, f"exited with status {job.returncode}"
    else:
        job.status = JobStatus.DONE
        return
    where = failures.blame(failures.of_faulthandler(text), _adapter_files(job))
    hung = job.status == JobStatus.TIMEOUT  # the detail says after how long; stderr holds the stack dump
    message = (f"the {job.label} process was {job.detail}" + ("" if hung else f" after {job.elapsed_s:.0f} s")
               + f", with {written} records written" + (f" ({dropped})" if dropped else "")
               + (f"; it {'hung' if hung else 'crashed'} at {where}" if where else "")
               + ("" if hung else f"; stderr: {failures.gist(text)}"))
    process_records.error_records(job, message, process_records.tail(text), where)


def _adapter_files(job: Job) -> frozenset[str]:
    return frozenset().union(*(failures.adapter_files(a) for a in job.group.adapters))


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


def drop_partial_lines(folder: Path) -> str:
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
