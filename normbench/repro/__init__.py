"""Findings that travel upstream: a record written as a standalone script that imports only numpy and the
framework, never normbench.

The script holds the case's exact arrays, builds the layer as the record's adapter builds it (each framework
package's ``repro`` module writes that part: ``adapters.repro``), runs the record's check, recomputes the float64
expectation inline with plain numpy, and exits 1 while the divergence exists, 0 once it agrees. ``script_for``
is what a report calls to write reproducers beside itself; ``normbench repro`` is the command.
"""

from __future__ import annotations

from .checks import Refused
from .script import build, default_name, refusal

__all__ = ["Refused", "build", "default_name", "refusal", "script_for"]


def script_for(row: dict) -> str | None:
    """The standalone reproducer of ``row`` (a check line of a results file, as read), or None where there is
    none (``refusal`` says why)."""
    try:
        return build(row)
    except Refused:
        return None
