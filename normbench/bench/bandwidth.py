"""Memory and cache bandwidth of this machine, measured in the same run as the benchmarks.

``measure``: a STREAM-style copy over buffers far larger than any last-level cache, split across
the benchmark's thread count (numpy releases the GIL while copying). STREAM counts a copy as one
read plus one write of the buffer and reports the best of several trials; so do we.

``measure_levels``: the same copy at a working set inside each cache level, so that a case whose
data fits in a cache is judged against that cache's rate, not main memory's (against which an
in-L3 case scored 107–151 % "roofline"). ``level_for`` names the level a working set belongs to.

``copy_gbps``: the same copy at a case's own working set, timed beside the case: what sysfs says of a
level need not hold (a VM's L3 of 480 MiB), and a cache's rate moves with the neighbours' load.
"""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

CACHE_ROOT = Path("/sys/devices/system/cpu/cpu0/cache")
MEMORY_MB = 256  # the main-memory measurement's buffer (each of src and dst)
LOOP_S = 2e-3  # one in-cache trial lasts at least this: a single copy takes well under a microsecond
PAGE = 4096
OWN_COPY_MAX_BYTES = 64 * 2**20  # larger working sets live in main memory: the run's memory copy judges them
PIECE = 2**20  # largest single in-cache copy: glibc's non-temporal threshold is a per-thread share of L3
_SUFFIX = {"K": 2**10, "M": 2**20, "G": 2**30}


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


def _size(text: str) -> int:
    """sysfs cache sizes: "32K", "32768K", "1M" (binary units), or plain bytes."""
    text = text.strip().upper()
    return int(text[:-1]) * _SUFFIX[text[-1]] if text[-1:] in _SUFFIX else int(text)


def _cpu_count(cpu_list: str) -> int:
    """Number of CPUs in a sysfs list such as "0", "0-1" or "0,2-3"."""
    count = 0
    for part in cpu_list.strip().split(","):
        lo, _, hi = part.partition("-")
        count += int(hi or lo) - int(lo) + 1
    return count


def cache_levels(root: Path | str = CACHE_ROOT) -> list[dict]:
    """The data and unified caches CPU 0 sees, smallest level first: [{name, level, bytes, shared_by}].

    Instruction caches are left out (copies never touch them). Where sysfs lacks the tree (not
    Linux, some containers) or an entry is unreadable, that entry, or everything, is left out:
    the caller then falls back to main memory alone rather than failing a run.
    """
    levels = []
    try:
        indexes = sorted(Path(root).glob("index*"))
    except OSError:
        return []
    for index in indexes:
        try:
            kind, level = (index / "type").read_text().strip(), int((index / "level").read_text())
            if kind == "Instruction":
                continue
            levels.append({"name": f"L{level}" + ("d" if kind == "Data" else ""), "level": level,
                           "bytes": _size((index / "size").read_text()),
                           "shared_by": _cpu_count((index / "shared_cpu_list").read_text())})
        except (OSError, ValueError, KeyError):
            continue
    return sorted(levels, key=lambda c: c["level"])


def capacity(cache: dict, threads: int) -> int:
    """Bytes of ``cache`` that ``threads`` threads have between them.

    A private cache (shared_by 1) counts once per thread; a shared one once for up to shared_by
    threads. Threads are assumed packed onto as few caches as that allows: the OS may spread them
    wider, but nothing here can tell, and crediting cache the threads may not have would judge a
    case against a rate it cannot reach.
    """
    return cache["bytes"] * math.ceil(threads / max(cache["shared_by"], 1))


def _pair(n: int) -> tuple[np.ndarray, np.ndarray]:
    """src and dst of ``n`` float64 in one block, dst half a page off src's page offset.

    Separately allocated arrays of 64–256 KiB get their own mmap, so dst often lands 16 bytes past
    src modulo 4 KiB; the copy then runs ~15× slower on this AMD EPYC (4–6 GB/s instead of 70–80,
    likely glibc's ``rep movsb`` path; offsets of 8–16 bytes are slow, 32 and up are not).
    A roofline is the rate that is reachable, so we place dst at 2 KiB.
    """
    span = -(-n * 8 // PAGE) * PAGE
    raw = np.ones(2 * span + 2 * PAGE, dtype=np.uint8)  # ones: every page mapped before timing
    start = -raw.ctypes.data % PAGE
    src = raw[start:start + n * 8].view(np.float64)
    dst = raw[start + span + PAGE // 2:][:n * 8].view(np.float64)
    return src, dst


def _loop(pieces: list[tuple[np.ndarray, np.ndarray]], reps: int, barrier: threading.Barrier) -> tuple[float, float]:
    barrier.wait()
    start = time.perf_counter()
    for _ in range(reps):
        for src, dst in pieces:
            dst[...] = src  # the cheapest numpy copy to call: ~0.45 µs against np.copyto's ~0.65 here
    return start, time.perf_counter()


def _in_cache_gbps(threads: int, working_set_bytes: int, trials: int) -> float:
    """Best copy rate with each thread copying its own share of ``working_set_bytes``, repeated.

    One copy of an in-cache buffer lasts microseconds, below the clock's and the thread pool's
    noise, so a trial repeats it for at least LOOP_S and divides. The threads start together at a
    barrier and the trial spans first start to last end, so the pool's dispatch is not timed. The
    calibration runs also warm each buffer into cache. Copies go in pieces of at most PIECE bytes:
    glibc switches larger ones to non-temporal stores, which bypass the cache being measured.
    """
    n = max(1, working_set_bytes // threads // 16)  # src + dst per thread, 8 bytes each
    step = PIECE // 8
    shares = []
    for src, dst in (_pair(n) for _ in range(threads)):
        shares.append([(src[i:i + step], dst[i:i + step]) for i in range(0, n, step)])
    with ThreadPoolExecutor(threads) as pool:

        def trial(reps: int) -> float:
            barrier = threading.Barrier(threads, timeout=60)
            spans = list(pool.map(lambda pieces: _loop(pieces, reps, barrier), shares))
            return max(end for _, end in spans) - min(start for start, _ in spans)

        reps, elapsed = 1, trial(1)
        while elapsed < LOOP_S:
            reps = max(2 * reps, math.ceil(reps * 1.2 * LOOP_S / max(elapsed, 1e-7)))
            elapsed = trial(reps)
        best = min([elapsed] + [trial(reps) for _ in range(trials - 1)])
    return 2 * 8 * n * threads * reps / best / 1e9


def copy_gbps(working_set_bytes: int, threads: int, trials: int = 3) -> float:
    """The copy rate of one working set (src + dst = ``working_set_bytes``), the way ``measure_levels``
    times a level's: the ceiling of an op that moves these bytes, wherever the machine keeps them.
    Timed next to the case it judges (``Conductor._copy``): on this VM a copy of 12 MB reached 43-52
    GB/s beside a LayerNorm moving the same bytes, and 23 GB/s minutes earlier."""
    return _in_cache_gbps(threads, working_set_bytes, trials)


def measure_levels(threads: int, trials: int = 5) -> dict:
    """Copy bandwidth inside each cache level and in main memory, with ``threads`` threads.

    Each level is measured with a total working set (src + dst) of half its capacity: both buffers
    must stay resident, next to the interpreter's own data, under a replacement policy that is not
    a perfect LRU; a working set equal to the capacity would partly miss. Main memory is
    ``measure``'s 256 MB copy. "bytes" is each level's capacity for these threads (``capacity``).

    "measured_gbps" is what the copy reached; "gbps", the ceiling to judge against, is at least
    every larger level's: data that fits in L1 fits in L2 too, so a lower L1 figure is the
    interpreter's (per-call cost, the GIL between threads) or the machine's noise, not a limit.
    """
    levels = []
    for cache in cache_levels():
        size = capacity(cache, threads)
        levels.append({"name": cache["name"], "bytes": size, "working_set_bytes": size // 2,
                       "measured_gbps": _in_cache_gbps(threads, size // 2, trials)})
    memory = measure(threads, MEMORY_MB, trials)
    levels.append({"name": "memory", "bytes": None, "working_set_bytes": 2 * MEMORY_MB * 2**20,
                   "measured_gbps": memory["gbps"]})
    ceiling = 0.0
    for level in reversed(levels):
        ceiling = level["gbps"] = max(ceiling, level["measured_gbps"])
    return {"levels": levels, "threads": threads,
            "method": f"numpy copy, each thread its own buffers, looped for >= {LOOP_S * 1e3:g} ms per trial "
                      "in cache; best of trials, bytes = read + write; gbps at least every larger level's"}


def level_for(working_set_bytes: int, levels: list[dict]) -> dict:
    """The smallest level (of ``measure_levels``' "levels") whose capacity holds the working set,
    else main memory: a case can go no faster than the level its data lives in."""
    caches = sorted((lv for lv in levels if lv["bytes"] is not None), key=lambda lv: lv["bytes"])
    fits = next((lv for lv in caches if working_set_bytes <= lv["bytes"]), None)
    if fits is not None:
        return fits
    memory = next((lv for lv in levels if lv["bytes"] is None), None)
    if memory is None:
        raise ValueError("levels has no main-memory entry (bytes None)")
    return memory
