"""How many checks and timings a run's records hold, counted as its report counts them.

A verification check is any record outside suite ``speed``. A timing is one benchmark case of a
run under one allocator (its repeats, one per pass, pooled), counted when every repeat was timed;
a case with a repeat that failed or errored is a broken benchmark. Speed-suite records that time
no case (``recompiles``, ``self_check``) are neither. Matches ``reports.model.headlines``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .kinds import Outcome, Suite

NOT_TIMINGS = ("recompiles", "self_check")  # speed-suite checks that time no case: never pooled as one
BROKEN = (Outcome.FAIL, Outcome.ERROR)


@dataclass
class Counts:
    checks: Counter = field(default_factory=Counter)  # verification records by outcome
    timings: int = 0  # benchmark cases timed in every repeat
    broken: int = 0  # benchmark cases with a repeat that failed or errored

    def line(self) -> str:
        """``checks: 10,357 pass, 0 fail, …; 233 timings``, as the closing line says it."""
        text = "checks: " + ", ".join(f"{self.checks.get(o, 0):,} {o}" for o in Outcome)
        text += f"; {self.timings:,} timing{'s' if self.timings != 1 else ''}"
        return text + (f" ({self.broken:,} benchmark{'s' if self.broken != 1 else ''} failed or errored)"
                       if self.broken else "")


def _get(record: Mapping[str, Any] | Any, key: str) -> Any:
    """A field of a results-file row, or of a Record (timing fields live in its ``timing``)."""
    if isinstance(record, Mapping):
        return record.get(key)
    if hasattr(record, key):
        return getattr(record, key)
    return (getattr(record, "timing", None) or {}).get(key)


def tally(records: Iterable[Mapping[str, Any] | Any]) -> Counts:
    """The counts of one run's check records (rows as read from its results files, or Records)."""
    counts = Counts()
    cases: dict[tuple, list[tuple[bool, str]]] = {}  # a case's repeats: (timed, outcome) in file order
    for r in records:
        outcome = str(_get(r, "outcome"))
        if _get(r, "suite") != Suite.SPEED:
            counts.checks[Outcome(outcome)] += 1
        elif _get(r, "check") not in NOT_TIMINGS:
            key = (_get(r, "adapter"), _get(r, "case"), _get(r, "check"), _get(r, "allocator") or None)
            cases.setdefault(key, []).append((outcome == Outcome.PASS and _get(r, "median_s") is not None, outcome))
    for repeats in cases.values():
        if all(timed for timed, _ in repeats):
            counts.timings += 1
        elif next(outcome for timed, outcome in repeats if not timed) in BROKEN:
            counts.broken += 1
    return counts
