"""`normbench bench --head-to-head`: every adapter's process alive at once, timing the same case
in turns (``bench.conductor``), one results file and its report."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..adapters import registry
from ..bench import allocator, bandwidth, conductor, contest, harness, lock, threads
from ..bench.environment import environment
from ..results.kinds import Outcome
from ..results.records import ResultsFile
from .common import UNTIMED, reports_beside


def entrants(names: str | None) -> list[conductor.Entrant]:
    """The adapters named (``adapter`` or ``adapter@python``), or every installed one but the reference."""
    if names:
        listed = [n.strip() for n in names.split(",") if n.strip()]
        registry.select(list(dict.fromkeys(n.partition("@")[0] for n in listed)))  # an unknown name: one line
        return conductor.parse_entrants(listed, lambda ref: registry.get(ref).name)
    chosen = [a for a in registry.select(None) if a.name not in UNTIMED and not a.missing()]
    return conductor.parse_entrants([a.name for a in chosen], lambda ref: registry.get(ref).name)


def run(args: argparse.Namespace, chosen: list[conductor.Entrant], alloc: allocator.Allocator, out: Path) -> int:
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

    with lock.machine(exclusive=True, waiting=waiting) as held:
        measured = bandwidth.measure(n, megabytes=32 if args.quick else 256)
        settings = {"processes": args.processes, "rounds": args.rounds, "pause_s": conductor.PAUSE_S,
                    "warm_rounds": conductor.WARM_ROUNDS,
                    "entrants": [{"name": e.name, "adapter": e.ref, "python": e.python} for e in chosen]}
        file = ResultsFile(out / "results.jsonl", env=environment(),
                           extra_env={"memory_bandwidth": measured, "machine_lock": held,
                                      "allocator": allocator.describe(), "head_to_head": settings})
        conduct = conductor.Conductor(chosen, out / "logs", processes=args.processes, rounds=args.rounds,
                                      env=allocator.process_env(alloc), progress=say)
        worst = 0
        for case, timings in conduct.run(cases):
            said = next((h["allocator"] for h in conduct.hellos.values() if h.get("allocator")), None)
            file.extra_env["allocator"] = said or file.extra_env["allocator"]  # the contenders', not this process's
            for rec in contest.case_records(case, timings, measured["gbps"], conduct.hellos):
                file.add(rec)
                worst = max(worst, rec.outcome == Outcome.ERROR)
        for rec in contest.memory_records(conduct.processes_seen, chosen):
            file.add(rec)
            worst = max(worst, rec.outcome == Outcome.ERROR)
        file.close()
    peaks = [p["peak_rss_mb"] for p in conduct.processes_seen if p.get("peak_rss_mb")]
    if peaks:
        print(f"normbench: peak resident memory per process {min(peaks):.0f}–{max(peaks):.0f} MB; "
              f"{sum(p['peak_rss_mb'] or 0 for p in conduct.processes_seen if p['process'] == 0):.0f} MB "
              f"for the first pass's {len(chosen)} processes together (each at its own peak)")
    print(f"normbench: results in {out / 'results.jsonl'}")
    return reports_beside([out / "results.jsonl"], out, int(worst), args.no_report)
