"""The allocator settings a timing record names, and what each means: the words reports read.

``bench.allocator`` turns these names into environments for a benchmark process; reports only
need the names, their order and their meaning, so those live here, below both.
"""

from __future__ import annotations

import resource

DEFAULT = "warm"
MEANINGS: dict[str, str] = {  # normbench's own settings, in the order they are listed
    "warm": "glibc with tunables that keep freed memory mapped (the default): a long-running loop's "
            "steady state, with no page faults per call",
    "system": "glibc untouched, what a Python process gets by default: large outputs may be page-faulted "
              "in afresh on every call, depending on the process's allocator state",
    "tcmalloc": "tcmalloc (gperftools, minimal) preloaded: keeps freed memory in its page heap",
    "jemalloc": "jemalloc preloaded, with decay off so freed pages stay mapped",
}
OVERLAP_CORES = 0.5  # other load (cores busy) from which a timing says it shared the machine
PAGE = resource.getpagesize()


def faulting(faults_per_call: float | None, bytes_per_call: int) -> bool:
    """Whether a call maps fresh pages for a tenth or more of the bytes it moves.

    glibc returns large freed blocks to the kernel (munmap, or deleting a thread arena's
    heap), so the next call's output is page-faulted in again: ~0.8 μs per 4 KiB page here,
    3 ms per call for a 16 MiB output. Whether that happens depends on the process's
    allocator state, not on the kernel being timed; the count says when a time includes it.
    """
    return faults_per_call is not None and faults_per_call * PAGE >= 0.1 * bytes_per_call
