"""`normbench bench` (head to head, the default): every adapter's process alive at once, timing the same case
in turns (``bench.conductor``), one results file and its report."""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from ..adapters import registry
from ..bench import allocator, bandwidth, conductor, contest, harness, heat_plan, lock, quiet, threads
from ..bench.entrants import Entrant, parse_entrants
from ..bench.environment import environment
from ..ops.case import BenchCase
from ..results.kinds import Outcome
from ..results.records import ResultsFile
from .common import reports_beside, timed_by_default


def entrants(names: str | None, default_shapes_for: str | None = None) -> list[Entrant]:
    """The adapters named (``adapter`` or ``adapter@python``), or every installed one but the reference;
    those named in ``default_shapes_for`` are timed at the default shapes alone."""
    listed = ([n.strip() for n in names.split(",") if n.strip()] if names
              else [a.name for a in timed_by_default()])
    if names:
        registry.select(list(dict.fromkeys(n.partition("@")[0] for n in listed)))  # an unknown name: one line
    parsed = parse_entrants(listed, lambda ref: registry.get(ref).name)
    only = [n.strip() for n in (default_shapes_for or "").split(",") if n.strip()]
    stray = [n for n in only if n not in {e.ref for e in parsed}]
    if stray:
        raise ValueError(f"--default-shapes-for names {stray[0]!r}, which is not among the adapters timed "
                         f"({', '.join(e.ref for e in parsed)})")
    return [dataclasses.replace(e, sweeps=False) if e.ref in only else e for e in parsed]


def same_call(cases: list[BenchCase]) -> dict[BenchCase, list[BenchCase]]:
    """Each distinct call (op, mode, shape, dtype, options) once, with every case that makes it: a
    sweep that passes through a default shape is timed once and recorded in both tables."""
    out: dict[tuple, list[BenchCase]] = {}
    for case in cases:
        out.setdefault((case.op, case.mode, case.shape, case.dtype, case.options), []).append(case)
    return {same[0]: same for same in out.values()}


def run(args: argparse.Namespace, chosen: list[Entrant], alloc: allocator.Allocator, out: Path) -> int:
    cases = harness.cases(tuple(args.dtypes.split(",")) if args.dtypes else None, quick=args.quick)
    if args.no_sweeps:
        cases = [c for c in cases if c.group != "sweep"]
    n = threads.requested() or threads.available()

    def waiting() -> None:
        print(f"normbench: waiting for the machine: another normbench process holds it (lock {lock.LOCK})",
              file=sys.stderr, flush=True)

    def say(line: str) -> None:
        if args.verbose:
            print(f"normbench: {line}", file=sys.stderr, flush=True)

    with lock.machine_unless_held(exclusive=True, waiting=waiting) as held:
        levels = bandwidth.measure_levels(n)  # each case is judged against the level its data fits in
        memory = levels["levels"][-1]
        measured = {"gbps": memory["gbps"], "threads": n, "buffer_mb": bandwidth.MEMORY_MB,
                    "method": "numpy copy, best of trials, bytes = read + write"}
        budget = heat_plan.budget_mb() if args.memory_budget is None else args.memory_budget or None
        settings = {"processes": args.processes, "rounds": args.rounds, "quiet": quiet.describe(),
                    "memory_budget_mb": budget,
                    "warm_rounds": conductor.WARM_ROUNDS, "field": args.field,
                    "compile_caches": "each entrant's own, empty at its first process: compile-caches/<entrant>/ "
                                      "in the results folder, removed at the end",
                    "entrants": [{"name": e.name, "adapter": e.ref, "python": e.python} for e in chosen]}
        file = ResultsFile(out / "results.jsonl", env=environment(),
                           extra_env={"memory_bandwidth": measured, "cache_bandwidth": levels, "machine_lock": held,
                                      "allocator": allocator.describe(), "head_to_head": settings})
        conduct = conductor.Conductor(chosen, out / "logs", processes=args.processes, rounds=args.rounds,
                                      env=allocator.process_env(alloc), progress=say, budget_mb=budget, copy_threads=n)
        worst = 0
        alike = same_call(cases)
        for case, timings in conduct.run(list(alike)):
            said = next((h["allocator"] for h in conduct.hellos.values() if h.get("allocator")), None)
            file.extra_env["allocator"] = said or file.extra_env["allocator"]  # the contenders', not this process's
            held = conduct.case_mb.get(case.id)
            made = [rec for same in alike[case]
                    for rec in contest.case_records(same, timings, levels["levels"], conduct.hellos, held, args.field,
                                                    conduct.copies.get(case.id))]
            for rec in made:
                file.add(rec)
                worst = max(worst, rec.outcome == Outcome.ERROR)
        for rec in [*contest.recompile_records(conduct.recompiles, chosen, conduct.hellos),
                    *contest.memory_records(conduct.processes_seen, chosen, args.field)]:
            file.add(rec)
            worst = max(worst, rec.outcome == Outcome.ERROR)
        file.close()
    spent = conduct.seconds
    print(f"normbench: {spent['start']:.0f} s starting processes, {spent['prepare']:.0f} s preparing cases (building, "
          f"compiling, first calls, settling), {spent['rounds']:.0f} s in timed rounds, "
          f"{spent['release']:.0f} s releasing cases, {spent['end']:.0f} s ending processes")
    peaks = [p["peak_rss_mb"] for p in conduct.processes_seen if p.get("peak_rss_mb")]
    if peaks:
        print(f"normbench: peak resident memory per process {min(peaks):.0f}–{max(peaks):.0f} MB"
              + (f"; {conduct.peak_together_mb:,.0f} MB at most for the {len(chosen)} processes of a pass together"
                 if conduct.peak_together_mb else "")
              + (f" (budget {budget:,.0f} MB)" if budget else ""))
    print(f"normbench: results in {out / 'results.jsonl'}")
    return reports_beside([out / "results.jsonl"], out, int(worst), args.no_report)
