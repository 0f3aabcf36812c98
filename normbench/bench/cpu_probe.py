"""A small, fixed CPU-bound probe: how fast this machine runs Python and small numpy calls now.

Norm benchmarks at small shapes are bound by interpreter and dispatch overhead, at large ones by
memory bandwidth (``bandwidth``). Each benchmark process measures both, so ``compare`` can tell a
slower machine (a busy neighbour, a throttled CPU) from slower code.
"""

from __future__ import annotations

import time

import numpy as np


def measure(trials: int = 7) -> dict:
    """Best of ``trials`` seconds for a fixed mix of Python arithmetic and small numpy reductions,
    on one thread and in cache (about 5 ms a trial)."""
    x = np.linspace(0.0, 1.0, 1024)
    best = float("inf")
    for _ in range(trials):
        start = time.perf_counter()
        total = 0.0
        for i in range(2000):
            total += float(x.sum()) * (i & 7)
        best = min(best, time.perf_counter() - start)
    return {"seconds": best, "method": "best of trials: 2000 × (numpy sum of 1024 float64 + Python arithmetic)"}
