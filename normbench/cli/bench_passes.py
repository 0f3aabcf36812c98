"""`normbench bench --allocators` and `--self-check`: benchmark processes started and watched by
the supervisor (timeouts, crash and hang records, logs under the output folder's logs/)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from functools import partial
from pathlib import Path

from ..adapters import registry
from ..bench import allocator
from ..bench import self_check as checking
from ..results import records
from ..results.kinds import Outcome
from ..running import commands, folder, runner, supervisor
from ..running.job import Group, Job, plan
from .common import fail, reports_beside, supervised_status

STATUS = "jobs.json"  # how each process of the command ended, rewritten as each one finishes


def _supervise(args: argparse.Namespace, job_list: list[Job], out: Path, show: bool):
    def status(_job: Job) -> None:
        folder.write_json(out / STATUS, {"command": "bench", "jobs": runner.describe(job_list, out)})

    return supervisor.supervise(job_list, 1, args.timeout, "normbench bench", show=show, on_finish=status)


def allocators(args: argparse.Namespace, timed: commands.Bench, chosen: list[allocator.Allocator], out: Path) -> int:
    """The same cases under each allocator: one process per allocator, pass and framework group
    (as `normbench run` times them: in one process, one framework's worker threads, still
    spinning after its call, slow the next framework's), passes outermost, so a slow spell of
    the machine spoils one repeat of every allocator rather than all repeats of one."""
    groups = plan(registry.select(args.adapters))
    job_list = []
    for repeat in range(timed.first_repeat, timed.first_repeat + timed.repeats):
        for alloc in chosen:
            for group in groups:
                where = out / alloc.name / f"r{repeat}" / group.name
                job_list.append(Job("bench", group, where, commands.bench(where, timed.one_pass(repeat, group.refs),
                                                                          alloc),
                                    out / "logs", repeat, variant=alloc.name, exclusive=True,
                                    env_steps=(partial(allocator.process_env, alloc),)))
    stop = _supervise(args, job_list, out, show=True)
    files = [f for job in job_list for f in folder.result_files(job.folder)]
    code = supervised_status(job_list, stop, out)
    return reports_beside(files, out, code, args.no_report)


def _fresh_process(env: dict[str, str]) -> dict[str, str]:
    return {**env, checking.FRESH: "1"}


def self_check(args: argparse.Namespace, timed: commands.Bench, alloc: allocator.Allocator, out: Path) -> int:
    """For one adapter per framework family (those installed, or named by --adapters): a benchmark
    process under ``alloc`` that times the self-check case, then interleaves harness blocks with
    bare blocks of the same call in that process and in a fresh one (bench.self_check)."""
    families = list(checking.FAMILIES.values())
    wanted = [a.name for a in registry.select(args.adapters)] if args.adapters else families
    present = [name for name in families if name in wanted and not registry.get(name).missing()]
    if not present:
        return fail("the self-check times " + ", ".join(families) + "; none of them is installed"
                    + (" and named by --adapters" if args.adapters else ""))
    one = replace(timed, quick=True, repeats=1, first_repeat=0, pytest_args=("-k", "test_self_check"))
    job_list = []
    for name in present:
        where = out / name.replace("[", "-").replace("]", "")
        job_list.append(Job("bench", Group(name, [registry.get(name)]), where,
                            commands.bench(where, replace(one, adapters=name), alloc), out / "logs",
                            variant="self-check", exclusive=True,
                            env_steps=(partial(allocator.process_env, alloc), _fresh_process)))
    stop = _supervise(args, job_list, out, show=False)
    code = supervised_status(job_list, stop, out)
    for job in job_list:
        results = job.folder / "results.jsonl"
        rows = [r for r in records.read(results)[1] if r["check"] == "self_check"] if results.exists() else []
        if not rows:
            log = job.logs / f"{job.slug}.stderr.log"
            print(f"normbench: {job.group.name}: the self-check did not run ({job.status}"
                  + (f": {job.detail}" if job.detail else "") + f"); see {log}", file=sys.stderr)
            code = max(code, 1)
            continue
        print(f"normbench: {job.group.name} ({alloc.name}): {rows[0]['outcome']}: {rows[0]['message']}", flush=True)
        code = max(code, 0 if rows[0]["outcome"] == Outcome.PASS else 1)
    return code
