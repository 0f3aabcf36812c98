"""The environment record a process writes first: the results layer's fields plus what only the
framework packages know (their distributions' versions, their thread and compile-cache variables)."""

from __future__ import annotations

from typing import Any

from ..adapters import compile_cache, framework
from ..results import records
from . import threads

FRAMEWORK_DISTS = (*framework.distributions(), "pytest")  # each framework package names its own
THREAD_VARS = (*threads.ENV_VARS, "XLA_FLAGS")


def environment() -> dict[str, Any]:
    """What a reader needs to reproduce or compare a run; imports no framework."""
    return records.environment(FRAMEWORK_DISTS, THREAD_VARS, compile_cache.variables())
