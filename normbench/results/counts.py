"""The one rule for counting a run's records, so the terminal's closing line and the report agree.

Checks are verification records, counted by outcome. Timings are counted apart: one per timed case
(a case's repeats under one allocator in one run are one timing), and a timing is not a passing
check. Records that say an adapter was not installed count as neither: the adapter did not run.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .kinds import NOT_TIMINGS, Outcome, Suite

NOT_INSTALLED = "not installed"  # the framework_version of a record saying an adapter's framework is missing
TIMED_CASE = ("run", "adapter", "case", "check", "allocator")  # the repeats of one timing


def _given(value: Any) -> Any:
    """A value, or None where it is missing (None, NaN from a DataFrame, or empty)."""
    return None if value is None or value != value or value == "" else value


def not_installed(row: Mapping[str, Any]) -> bool:
    """Whether a record only says that its adapter's framework is not installed (a run skipped it)."""
    return row.get("outcome") == Outcome.SKIP and row.get("framework_version") == NOT_INSTALLED


@dataclass(frozen=True)
class Counts:
    checks: Counter = field(default_factory=Counter)  # verification records by Outcome
    timings: int = 0  # timed cases whose every repeat passed
    broken_timings: int = 0  # timed cases a repeat of which failed or errored
    adapters: frozenset[str] = frozenset()  # adapters with a check or timing record (that ran)
    missing: frozenset[str] = frozenset()  # adapters a record says are not installed

    @property
    def total(self) -> int:
        """Verification records, every outcome."""
        return sum(self.checks.values())

    @property
    def unexpected(self) -> int:
        return self.checks[Outcome.FAIL] + self.checks[Outcome.ERROR]

    def line(self) -> str:
        """``checks: 10,357 pass, 0 fail, …; 233 timings``: the closing line of a run in a terminal."""
        text = "checks: " + ", ".join(f"{self.checks[o]:,} {o}" for o in Outcome)
        text += f"; {self.timings:,} timing{'s' if self.timings != 1 else ''}"
        broken = self.broken_timings
        return text + (f" ({broken:,} benchmark{'s' if broken != 1 else ''} failed or errored)" if broken else "")


def install_hint(row: Mapping[str, Any]) -> str:
    """What a not-installed record says to install (its message ends with the hint)."""
    return str(row.get("message") or "").rpartition("): ")[2] or "?"


def count(rows: Iterable[Mapping[str, Any]]) -> Counts:
    """Count check rows (dicts as written, or ``Record.to_row()``) by the rule above."""
    checks: Counter = Counter()
    timed: dict[tuple, list[Mapping[str, Any]]] = {}
    adapters, missing = set(), set()
    for row in rows:
        if not_installed(row):
            missing.add(row.get("adapter"))
            continue
        adapters.add(row.get("adapter"))
        if row.get("suite") != Suite.SPEED:
            checks[Outcome(row["outcome"])] += 1
        elif row.get("check") not in NOT_TIMINGS:
            timed.setdefault(tuple(_given(row.get(k)) for k in TIMED_CASE), []).append(row)
    ok = [all(r.get("outcome") == Outcome.PASS and _given(r.get("median_s")) is not None for r in g)
          for g in timed.values()]
    broken = [any(r.get("outcome") in (Outcome.FAIL, Outcome.ERROR) for r in g) for g in timed.values()]
    return Counts(checks, sum(ok), sum(broken), frozenset(adapters), frozenset(missing - adapters))
