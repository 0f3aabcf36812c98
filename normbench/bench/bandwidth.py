"""Memory bandwidth of this machine, measured in the same run as the benchmarks.

A STREAM-style copy over buffers far larger than any last-level cache, split across the
benchmark's thread count (numpy releases the GIL while copying). STREAM counts a copy as
one read plus one write of the buffer and reports the best of several trials; so do we.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np


def measure(threads: int = 1, megabytes: int = 256, trials: int = 5) -> dict:
    """Best copy bandwidth in GB/s (1e9 bytes/s) with ``threads`` threads."""
    n = megabytes * 2**20 // 8
    src = np.ones(n)  # written once, so every page is mapped before timing
    dst = np.zeros(n)
    bounds = np.linspace(0, n, threads + 1).astype(int)
    chunks = list(zip(bounds[:-1], bounds[1:], strict=True))

    def copy(chunk):
        lo, hi = chunk
        np.copyto(dst[lo:hi], src[lo:hi])

    best = np.inf
    with ThreadPoolExecutor(threads) as pool:
        for _ in range(trials):
            start = time.perf_counter()
            list(pool.map(copy, chunks))
            best = min(best, time.perf_counter() - start)
    return {"gbps": 2 * src.nbytes / best / 1e9, "threads": threads, "buffer_mb": megabytes,
            "method": "numpy copy, best of trials, bytes = read + write"}
