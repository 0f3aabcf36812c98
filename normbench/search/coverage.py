"""What one search covered, so that a search that found nothing says how hard it looked.

A clean search is only as good as the cases it ran: eight examples of one dtype is not two minutes
of a thousand shapes. Each search counts the cases it ran (shrink candidates included), their
distinct shapes and dtypes, the largest error / tolerance it reached among compared records (the
quantity it climbs, on which case and check) and the time it took; every record it writes carries
this in ``facts["search"]``, and the report and the command's summary read it from there.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

ENDED = ("budget", "examples", "failure", "refused")  # why a search stopped: its clock, its count, a bug, no case


@dataclass
class Coverage:
    """The running tally of one search (``facts`` writes it out)."""

    examples: int = 0
    shapes: set[tuple[int, ...]] = field(default_factory=set)
    dtypes: set[str] = field(default_factory=set)
    reached: tuple[float, str, str] | None = None  # (error / tolerance, case id, check)
    seconds: float = 0.0
    ended: str = "examples"

    def ran(self, shape: tuple[int, ...], dtype: str) -> None:
        """One case run (not a cached one, not one the adapter refused)."""
        self.examples += 1
        self.shapes.add(tuple(shape))
        self.dtypes.add(dtype)

    def climbed(self, ratio: float, case: str, check: str) -> None:
        """A compared record's error / tolerance; kept if it is the largest yet."""
        if not math.isnan(ratio) and (self.reached is None or ratio > self.reached[0]):
            self.reached = (ratio, case, check)

    def facts(self) -> dict[str, Any]:
        ratio, case, check = self.reached or (None, None, None)
        return {"examples": self.examples, "shapes": len(self.shapes), "dtypes": sorted(self.dtypes),
                "reached_ratio": ratio, "reached_case": case, "reached_check": check,
                "seconds": round(self.seconds, 3), "ended": self.ended}
