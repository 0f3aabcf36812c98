"""The ``normbench`` command: the main job (``run``: every suite, each framework group in its
own process, then the reports), the verification suites or the benchmarks alone in this
process (``verify``, ``bench``), property-based search, reports, comparisons, and the list of
adapters."""

# One module per command; main.py builds the parser from COMMANDS.

from .main import main

__all__ = ["main"]
