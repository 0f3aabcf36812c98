"""What the supervisor shows while it works: a live table per process on a terminal, one line per
finished process elsewhere (CI logs, pipes), and `normbench run`'s final one-screen summary."""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

from ..results.counts import Counts
from ..results.kinds import JobStatus, Outcome
from .job import Job

COLUMNS = tuple(Outcome)  # records each process wrote, by outcome
STYLE = {JobStatus.DONE: "green", JobStatus.NOT_INSTALLED: "yellow", JobStatus.WAITING_FOR_MACHINE: "yellow",
         JobStatus.RUNNING: "cyan", JobStatus.WAITING: "dim", JobStatus.CRASHED: "bold red",
         JobStatus.TIMEOUT: "bold red", JobStatus.FAILED_TO_START: "bold red", JobStatus.INTERRUPTED: "yellow"}


def interactive() -> bool:
    """Live display only on a terminal and outside CI."""
    return sys.stdout.isatty() and not os.environ.get("CI")


ORDER = (JobStatus.CRASHED, JobStatus.TIMEOUT, JobStatus.FAILED_TO_START, JobStatus.INTERRUPTED, JobStatus.RUNNING,
         JobStatus.WAITING_FOR_MACHINE, JobStatus.WAITING, JobStatus.NOT_INSTALLED,
         JobStatus.DONE)  # a row of several passes shows the first of these that any pass has


def _rows(jobs: list[Job]) -> list[tuple[str, str, str, Counter, float, bool]]:
    """One row per phase and group: a group's benchmark passes are summed into one."""
    rows: dict[tuple[str, str], list[Job]] = {}
    for job in jobs:
        rows.setdefault((job.phase, job.group.name, job.variant), []).append(job)
    out = []
    for (phase, group, variant), parts in rows.items():
        worst = min(parts, key=lambda j: ORDER.index(j.status) if j.status in ORDER else 0)
        status = worst.status + (f" ({worst.detail})" if worst.detail and worst.failed else "")
        if len(parts) > 1:
            finished = sum(j.finished for j in parts)
            status += f", {finished}/{len(parts)} passes" if finished < len(parts) else f", {len(parts)} passes"
        started = any(j.status != JobStatus.WAITING for j in parts)
        counts = sum((j.counts for j in parts), Counter())
        label = " ".join(x for x in (phase, group, variant) if x)
        out.append((label, worst.status, status, counts, sum(j.elapsed_s for j in parts), started))
    return out


def _table(jobs: list[Job], title: str):
    from rich.markup import escape  # names like keras[jax] and hints like normbench[torch] are not markup
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False)
    for name in ("process", "status", *COLUMNS, "time"):
        table.add_column(name, justify="left" if name in ("process", "status") else "right")
    for label, state, status, counts, elapsed, started in _rows(jobs):
        cells = [str(counts.get(c, 0)) if started else "" for c in COLUMNS]
        style = STYLE.get(state, "default")
        table.add_row(escape(label), f"[{style}]{escape(status)}[/]", *cells, f"{elapsed:.0f} s" if started else "")
    return table


class Display:
    """Context manager; ``update(job)`` after every change of any job."""

    def __init__(self, jobs: list[Job], title: str = "normbench run", live: bool | None = None,
                 quiet: bool = False) -> None:
        self.jobs = jobs
        self.title = title
        self.live = interactive() if live is None else live
        self.quiet = quiet
        self._live = None

    def __enter__(self) -> Display:
        if self.live and not self.quiet:
            from rich.live import Live

            self._live = Live(_table(self.jobs, self.title), refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def update(self, job: Job) -> None:
        if self._live is not None:
            self._live.update(_table(self.jobs, self.title))
        elif job.finished and not self.quiet:
            counts = ", ".join(f"{job.counts.get(c, 0)} {c}" for c in COLUMNS)
            extra = f" ({job.detail})" if job.detail else ""
            print(f"normbench: {job.label}: {job.status}{extra} in {job.elapsed_s:.0f} s: {counts}", flush=True)

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)


def summary(jobs: list[Job], out: Path, counts: Counts, report: Path | None, problem: str | None) -> None:
    """The final screen: every process with its counts, the run's checks and timings (counted as
    its report counts them), and where the report is."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True, width=None if interactive() else 120)
    console.print(_table(jobs, escape(f"normbench run: {out}")))
    bad = [j for j in jobs if j.failed]
    unfinished = f"{len(bad)} process{'es' if len(bad) > 1 else ''} did not finish"
    console.print(escape(counts.line() + (f"; {unfinished}: " + ", ".join(f"{j.label} ({j.detail})" for j in bad)
                                          if bad else "")))
    missing = {j.group.name: j.detail for j in jobs if j.status == JobStatus.NOT_INSTALLED}
    if missing:
        console.print(escape("not installed: " + ", ".join(f"{g} ({hint})" for g, hint in missing.items())))
    for j in jobs:  # coverage lost aloud: a verification that skipped more than it ran
        skipped, total = j.counts.get(Outcome.SKIP, 0), sum(j.counts.values())
        if j.phase == "verify" and skipped > total - skipped:
            console.print(escape(f"{j.label}: {skipped} of {total} records are skips, more than ran (`normbench "
                                 f"check-adapter {j.group.refs}` says why; the report's Coverage table groups them)"))
    if report is not None:
        console.print(escape(f"report: {report}"))
    if problem:
        console.print(f"[bold red]{escape(problem)}[/]")
