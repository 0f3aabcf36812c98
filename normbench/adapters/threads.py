"""The thread count asked for, applied through the API of every framework now imported.

``bench.threads`` asks before any framework starts (environment variables); this is the part an
adapter calls once its framework is imported (``Adapter.ensure_available``). Each framework's
own set-up is its package's ``threads`` module: ``MODULES`` (imported, they have started their
pools), ``ENV_VARS`` (read at import), ``configure(n)`` (before import), ``apply(n)`` (after) and
``report()`` (what it uses, for the record); a framework with nothing to set omits the module.
"""

from __future__ import annotations

import os
from types import ModuleType

from .framework import modules


def setups() -> list[ModuleType]:
    """Every framework's thread set-up module."""
    return modules("threads")


def requested() -> int | None:
    n = os.environ.get("NORMBENCH_THREADS")
    return int(n) if n else None


def available() -> int:
    """CPUs this process may run on: its affinity mask, which a container or taskset narrows
    and os.cpu_count() does not see."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def apply() -> None:
    """Apply the requested count through the APIs of frameworks that are now imported."""
    n = requested()
    if n is None:
        return
    for setup in setups():
        if hasattr(setup, "apply"):
            setup.apply(n)
