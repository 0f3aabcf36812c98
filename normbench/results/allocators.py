"""The allocator settings a timing record names, and what each means: the words reports read.

``bench.allocator`` turns these names into environments for a benchmark process; reports only
need the names, their order and their meaning, so those live here, below both.
"""

from __future__ import annotations

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
