"""The ``normbench`` command: the main job (``run``: every suite, each framework group in its
own process, then the reports), the verification suites or the benchmarks alone in this
process (``verify``, ``bench``), property-based search, reports, comparisons, and the list of
adapters. One module per command; :mod:`.main` builds the parser."""

from .main import main

__all__ = ["main"]
