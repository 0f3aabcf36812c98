"""The machine lock: a readers-writer lock over every normbench process on this machine.

Verification shares the machine; a benchmark has it alone, so its timings are not another
normbench process's load (``tox -p`` starts several runs at once, and a user may start
``pytest --pyargs normbench.suites`` beside a running benchmark). ``normbench run`` takes it
for each process it starts and tells the process so (``HELD``); every other entry point
(``normbench verify``/``bench``, plain pytest) takes it in the pytest plugin. The wait is
recorded, so a report can say a benchmark queued behind other work.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK = Path(tempfile.gettempdir()) / f"normbench-{os.getuid()}.lock"
HELD = "NORMBENCH_MACHINE_LOCK"  # set in a child's environment: the lock its parent holds for it, as JSON
POLL_S = 0.2


class Interrupted(Exception):
    """Stopped while waiting for the machine."""


@contextmanager
def machine(exclusive: bool, waiting: Callable[[], None] = lambda: None,
            stop: threading.Event | None = None) -> Iterator[dict]:
    """Hold the lock (exclusive for a benchmark, shared otherwise) and yield what to record:
    its mode and how long it took to get. ``waiting`` is called once if it must wait; a
    ``stop`` event set meanwhile raises Interrupted."""
    start = time.monotonic()
    with open(LOCK, "a") as fh:
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        told = False
        while True:
            try:
                fcntl.flock(fh, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    waiting()
                    told = True
                if stop is not None and stop.is_set():
                    raise Interrupted from None
                time.sleep(POLL_S)
        yield {"mode": "exclusive" if exclusive else "shared", "waited_s": round(time.monotonic() - start, 1)}
    # closing the file released the lock


def held_for_me() -> dict | None:
    """The lock a parent process (``normbench run``) holds for this one, if any."""
    value = os.environ.get(HELD)
    try:
        return json.loads(value) if value else None
    except ValueError:
        return None


@contextmanager
def machine_unless_held(exclusive: bool, waiting: Callable[[], None] = lambda: None) -> Iterator[dict]:
    """``machine``, unless a parent (``normbench run``) holds the lock for this process: waiting for
    it then would wait for ourselves, for ever."""
    held = held_for_me()
    if held is not None:
        yield {**held, "held_by": "normbench run"}
        return
    with machine(exclusive, waiting) as got:
        yield got
