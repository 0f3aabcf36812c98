"""A time budget per adapter, shared by the searches of its ops as they come.

``normbench search --budget S`` gives each adapter S seconds; each of its op searches gets an equal
share of what the searches before it left, so one that ends early (a failure found and shrunk, every
drawn case refused) leaves its time to the rest, and one that ran over (a long first compile, a
shrink) takes it from them. Imports nothing heavy: the command reads the option through it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

DEFAULT_BUDGET_S = 120.0  # `normbench search`'s default: seconds per adapter, shared by its ops


@dataclass
class Budget:
    """One adapter's seconds and the op searches still to run on them."""

    seconds: float
    ops: set[str] = field(default_factory=set)

    def share(self, op: str) -> float:
        """The seconds the search of ``op`` may take: an equal part of what is left (never negative)."""
        return max(0.0, self.seconds) / max(1, len(self.ops | {op}))

    def spend(self, op: str, seconds: float) -> None:
        self.seconds -= seconds
        self.ops.discard(op)


def seconds(text: str | None, option: str) -> float | None:
    """A positive, finite number of seconds (None if not given); ValueError naming the option otherwise."""
    if text is None:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{option} must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise ValueError(f"{option} must be a positive number of seconds, got {text!r}")
    return value
