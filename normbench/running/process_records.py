"""Records about a whole supervised process (it crashed, hung, was interrupted or has nothing
installed), written into the process's own folder beside what it wrote itself."""

from __future__ import annotations

import re
import shlex

from ..adapters import failures
from ..adapters.base import Adapter
from ..bench.environment import environment
from ..results import counts, records
from ..results.kinds import Outcome, Suite
from ..results.records import Record, ResultsFile
from .job import Job

STDERR_TAIL = 3000  # characters of a failed process's stderr kept in its error records
DUMP = re.compile(r"^(Fatal Python error:|Current thread 0x|Thread 0x)", re.M)  # faulthandler's first line


def write(job: Job, name: str, rows: list[Record], extra_env: dict | None = None) -> None:
    file = ResultsFile(job.folder / name, extra_env=extra_env, env=environment())
    for rec in rows:
        file.add(rec)
    file.close()


def process_record(job: Job, adapter: Adapter, outcome: Outcome, message: str, facts: dict | None = None) -> Record:
    """A record about a whole process (it crashed, or never started), not about one case."""
    # "process_group", not "group": that is a benchmark's shape group (default, sweep)
    about = records.about_process(job.slug, {"process_group": job.group.name})
    return records.build(
        adapter, Suite.SPEED if job.phase == "bench" else Suite.PROCESS, f"{job.phase}_process", about,
        framework_version=adapter.version() if not adapter.missing() else counts.NOT_INSTALLED,
        outcome=outcome, message=message,
        rerun=shlex.join(rerun(job.command)) if outcome == Outcome.ERROR else "",
        facts={"status": job.status, "returncode": job.returncode, "elapsed_s": round(job.elapsed_s, 1),
               **(facts or {})},
    )


def error_records(job: Job, message: str, stderr_tail: str, where: failures.Frame | None = None) -> None:
    """One error record per adapter of the group, in a file of their own (nothing the process
    wrote is touched)."""
    facts = {"stderr_tail": stderr_tail, "where": str(where) if where else None}
    write(job, "process-errors.jsonl",
          [process_record(job, a, Outcome.ERROR, message, facts) for a in job.group.adapters],
          extra_env={"process": {"command": job.command, "returncode": job.returncode}})


def rerun(command: list[str]) -> list[str]:
    """The process's command, writing to a new folder beside the one it left behind."""
    out = list(command)
    if "-o" in out:
        out[out.index("-o") + 1] += "-rerun"
    return out


def tail(text: str) -> str:
    """The part of stderr a record keeps: from faulthandler's fatal error or stack dump on (its
    innermost frames come first), else the end."""
    found = DUMP.search(text)
    return text[found.start():found.start() + STDERR_TAIL] if found else text[-STDERR_TAIL:]
