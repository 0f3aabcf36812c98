"""What `normbench run` shows while it works: a live table per process on a terminal, one
line per finished process elsewhere (CI logs, pipes), and a final one-screen summary."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .runner import Job

COLUMNS = ("pass", "fail", "known", "error", "skip")
STYLE = {"done": "green", "not installed": "yellow", "waiting for the machine": "yellow", "running": "cyan",
         "waiting": "dim", "crashed": "bold red", "timeout": "bold red", "failed to start": "bold red"}


def interactive() -> bool:
    """Live display only on a terminal and outside CI."""
    return sys.stdout.isatty() and not os.environ.get("CI")


def _table(jobs: list[Job], title: str):
    from rich.markup import escape  # names like keras[jax] and hints like normbench[torch] are not markup
    from rich.table import Table

    table = Table(title=title, title_justify="left", expand=False)
    for name in ("process", "status", *COLUMNS, "time"):
        table.add_column(name, justify="left" if name in ("process", "status") else "right")
    for job in jobs:
        status = job.status + (f" ({job.detail})" if job.detail and job.status not in ("done", "not installed")
                               else "")
        counts = [str(job.counts.get(c, 0)) if job.status != "waiting" else "" for c in COLUMNS]
        elapsed = f"{job.elapsed_s:.0f} s" if job.status != "waiting" else ""
        style = STYLE.get(job.status, "default")
        table.add_row(escape(job.label), f"[{style}]{escape(status)}[/]", *counts, elapsed)
    return table


class Display:
    """Context manager; ``update(job)`` after every change of any job."""

    def __init__(self, jobs: list[Job], live: bool | None = None) -> None:
        self.jobs = jobs
        self.live = interactive() if live is None else live
        self._live = None

    def __enter__(self) -> Display:
        if self.live:
            from rich.live import Live

            self._live = Live(_table(self.jobs, "normbench run"), refresh_per_second=4, transient=True)
            self._live.__enter__()
        return self

    def update(self, job: Job) -> None:
        if self._live is not None:
            self._live.update(_table(self.jobs, "normbench run"))
        elif job.finished:
            counts = ", ".join(f"{job.counts.get(c, 0)} {c}" for c in COLUMNS)
            extra = f" ({job.detail})" if job.detail else ""
            print(f"normbench: {job.label}: {job.status}{extra} in {job.elapsed_s:.0f} s: {counts}", flush=True)

    def __exit__(self, *exc) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)


def summary(jobs: list[Job], out: Path, report: Path | None, problem: str | None) -> None:
    """The final screen: every process with its counts, the totals and where the report is."""
    from rich.console import Console
    from rich.markup import escape

    console = Console(highlight=False, soft_wrap=True)
    console.print(_table(jobs, escape(f"normbench run: {out}")))
    total = sum((j.counts for j in jobs), start=type(jobs[0].counts)()) if jobs else {}
    bad = [j for j in jobs if j.status not in ("done", "not installed")]
    line = ", ".join(f"{total.get(c, 0)} {c}" for c in COLUMNS)
    console.print(escape(f"checks: {line}" + (f"; {len(bad)} process(es) did not finish: "
                                              + ", ".join(f"{j.label} ({j.detail})" for j in bad) if bad else "")))
    missing = {j.group.name: j.detail for j in jobs if j.status == "not installed"}
    if missing:
        console.print(escape("not installed: " + ", ".join(f"{g} ({hint})" for g, hint in missing.items())))
    if report is not None:
        console.print(escape(f"report: {report}"))
    if problem:
        console.print(f"[bold red]{escape(problem)}[/]")
