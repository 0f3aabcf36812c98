"""How much a head-to-head pass may hold at once, and which contenders race a case together.

A case that the whole field cannot hold within the budget runs in heats (``bench.conductor``):
the plan learns what each entrant's process takes on for each case, and predicts it for the next.
"""

from __future__ import annotations

import os

import numpy as np

from .contender import proportional_mb, status_mb
from .processes import Process

MEMORY_BUDGET_MB = 5600.0  # the most a pass's processes may hold at once (MiB, just under 6 GB), at most ...
MEMORY_SHARE = 0.6  # ... this share of the machine's memory
MARGIN = 1.2  # on a prediction of what an entrant will take on from what others took on
RESTART_MIN_MB = 256.0  # a process keeping less than this over what it held on starting is not worth restarting


def together_mb(pids: list[int]) -> float | None:
    """What these processes hold together now (the sum of their proportional set sizes, MB; Linux), or
    None where it cannot be read. Reading it walks their page tables (~10 ms for a TensorFlow process):
    the conductor reads it once a heat has timed its rounds, not on every step."""
    held = [proportional_mb(pid) for pid in pids]
    return None if None in held else sum(held)


def held(started: list[Process]) -> float | None:
    """What the live processes of a pass hold together now, cheaply: each one's resident memory less
    its share of the libraries it shared on starting (``Process.shared_mb``). For planning heats."""
    held = each(started)
    return sum(held.values()) if held else None


def each(started: list[Process]) -> dict[str, float]:
    """What each live process of a pass holds now (MB), by entrant."""
    held = {p.entrant.name: (status_mb(p.proc.pid, "VmRSS"), p.shared_mb) for p in started if p.proc.poll() is None}
    return {name: mb - shared for name, (mb, shared) in held.items() if mb is not None}


def kept(started: list[Process], holding: set[str]) -> dict[str, float]:
    """What each live process not holding the case keeps over what it held on starting (MB), where that is at
    least ``RESTART_MIN_MB``: memory its framework's allocator kept from finished cases (TensorFlow's keeps
    its largest working set), which only a fresh process gives back."""
    out = {}
    for p in started:
        if p.entrant.name in holding or p.lost or p.started_mb is None or p.proc.poll() is not None:
            continue
        now = status_mb(p.proc.pid, "VmRSS")
        if now is not None and now - p.started_mb >= RESTART_MIN_MB:
            out[p.entrant.name] = now - p.started_mb
    return out


def budget_mb() -> float:
    """The default memory budget of a pass: ``MEMORY_BUDGET_MB``, or less on a small machine."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        return MEMORY_BUDGET_MB
    return min(MEMORY_BUDGET_MB, MEMORY_SHARE * total)


class HeatPlan:
    """How much the processes of a pass may hold at once (``budget_mb``), what each entrant's
    process took on for each case (``need``: the most it held while timing the case, less what it
    held before preparing it; learned in the first pass, where the contenders prepare one at a
    time) and how steady each entrant's blocks have been (``spreads``): who anchors a case's heats,
    and who joins which heat."""

    def __init__(self, budget_mb: float) -> None:
        self.budget_mb = budget_mb
        self.need: dict[tuple[str, str], float] = {}  # (case, entrant) -> MB
        self.spreads: dict[str, list[float]] = {}  # entrant -> its block spread on each case timed so far
        self.kinds: dict[str, str] = {}  # case -> its dtype and mode

    def learn(self, case: str, name: str, before: float | None, now: float | None) -> None:
        if before is not None and now is not None:
            self.need[case, name] = max(now - before, self.need.get((case, name), 0.0))

    def hunger(self, name: str, kind: str = "") -> float:
        """An entrant's usual share of the most any entrant took on, over the cases of this ``kind``
        (dtype and mode: torch's processes take on more in bfloat16) it has prepared, else over all
        (0.5 before any: the middle of the field)."""
        most: dict[str, float] = {}
        for (case, _), mb in self.need.items():
            most[case] = max(most.get(case, 0.0), mb)
        for alike in (True, False):
            shares = [self.need[case, name] / top for case, top in most.items()
                      if (case, name) in self.need and top > 1 and (not alike or self.kinds.get(case) == kind)]
            if shares:
                return float(np.mean(shares))
        return 0.5

    def order(self, case: str, names: list[str], anchor: str | None = None, kind: str = "",
              held: dict[str, float] | None = None) -> list[str]:
        """The anchor first, then the hungriest first, so that a heat's prediction from the entrants
        prepared so far errs on the high side. The anchor is in every heat and its noise is in every
        ratio read through it: the steadiest of the entrants that will hold no more than the middle
        of the field, what they take on and what they ``held`` before (a TensorFlow process keeps its
        largest working set: it takes on little and holds much) (``anchor``: the case's own, chosen
        in an earlier pass)."""
        self.kinds[case] = kind
        need = {n: self.need[case, n] if (case, n) in self.need else self.hunger(n, kind) * 1e6 for n in names}
        if anchor not in names:
            holds = {n: need[n] + (held or {}).get(n, 0.0) for n in names}
            modest = [n for n in names if holds[n] <= float(np.median(list(holds.values())))]
            steady = {n: float(np.median(self.spreads[n])) if self.spreads.get(n) else 1.0 for n in modest}
            anchor = min(modest, key=lambda n: (steady[n], need[n], names.index(n)))
        return [anchor, *sorted((n for n in names if n != anchor), key=lambda n: -need[n])]

    def predict(self, case: str, name: str) -> float:
        """What ``name`` will take on for ``case``: as it did in an earlier pass, else as much as any
        entrant prepared so far did, with a margin."""
        if (case, name) in self.need:
            return self.need[case, name]
        return MARGIN * max((mb for (c, _), mb in self.need.items() if c == case), default=0.0)

    def projected(self, case: str, held: dict[str, float], before: dict[str, float | None],
                  members: list[str]) -> float | None:
        """What the pass will hold once ``members`` have timed ``case``: each of them what it held before
        the case and what it takes on (it grows over its rounds), every other process what it holds now."""
        total = 0.0
        for name, now in held.items():
            if name in members:
                if before.get(name) is None:
                    return None
                total += max(now, before[name] + self.predict(case, name))
            else:
                total += now
        return total

    def fits(self, case: str, held: dict[str, float], before: dict[str, float | None], members: list[str]) -> bool:
        """Whether ``members`` can all time ``case`` at once within the budget."""
        if any((case, n) not in self.need for n in members):
            return False
        total = self.projected(case, held, before, members)
        return total is not None and total <= self.budget_mb
