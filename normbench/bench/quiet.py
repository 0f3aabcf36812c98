"""Waiting for a contender's worker threads to go to sleep before the next contender's block.

A framework's worker threads keep running after its call has returned: they spin, waiting for
more work. Measured here after a block of LayerNorm 2048x768 forward: ONNX Runtime's for 38-47 ms,
torch's OpenMP pool for ~7.5 ms, JAX's and TensorFlow's for 0-4 ms. A block timed while another
process spins runs on what that process leaves of the machine: with a fixed 10 ms pause, torch
and flax.linen timed right after ONNX Runtime were 1.43-1.50x slower than after a long pause.
So the conductor watches the process that just ran and starts the next block once none of its
threads has been running for ``SETTLE_S`` (Linux: each thread's state in ``/proc``); where that
cannot be read it sleeps ``FALLBACK_S``.
"""

from __future__ import annotations

import os
import time

SETTLE_S = 0.002  # no thread of the process running for this long: it is asleep
CAP_S = 0.5  # the longest wait: a process that never sleeps (a busy background thread) costs this per block
POLL_S = 0.0005
FALLBACK_S = 0.1  # where /proc cannot be read: longer than any spin measured here


def running_threads(pid: int) -> int | None:
    """How many threads of ``pid`` are running or runnable now (state R), or None where it cannot be read."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return None
    running = 0
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as fh:
                state = fh.read().rpartition(")")[2].split(maxsplit=1)[0]
        except (OSError, IndexError):  # the thread ended meanwhile
            continue
        running += state == "R"
    return running


def wait(pid: int, settle_s: float = SETTLE_S, cap_s: float = CAP_S) -> float | None:
    """Returns once no thread of ``pid`` has run for ``settle_s``: how long its threads kept running
    (seconds), or None where that cannot be read (it slept ``FALLBACK_S`` instead). At most ``cap_s``."""
    began = time.perf_counter()
    last = began
    while (now := time.perf_counter()) - began < cap_s:
        running = running_threads(pid)
        if running is None:
            time.sleep(FALLBACK_S)
            return None
        if running:
            last = now
        elif now - last >= settle_s:
            break
        time.sleep(POLL_S)
    return last - began


def describe() -> str:
    """The rule, as the results file's environment records it."""
    return (f"each block starts once no thread of the process that ran before it has run for {SETTLE_S * 1e3:g} ms "
            f"(at most {CAP_S:g} s; {FALLBACK_S:g} s where /proc cannot be read)")
