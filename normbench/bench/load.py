"""How busy the machine was with *other* work while something was timed.

A benchmark that shares the cores with another process measures both. The machine lock
keeps normbench's own processes apart; this measures everything else (a build, a browser,
another user), as the CPU time the whole machine spent busy minus this process's own, so
a record can say it overlapped other load instead of silently reporting a slow number.
"""

from __future__ import annotations

import os
import resource
import time
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_STAT = Path("/proc/stat")


def _machine_busy_s() -> float | None:
    """CPU seconds all cores have spent busy since boot (Linux), else None."""
    try:
        fields = _STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[1:9])
    return (user + nice + system + irq + softirq + steal) / _TICK


def _own_s(ours: list[int] = ()) -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + sum(_process_s(pid) for pid in ours)


def _process_s(pid: int) -> float:
    """CPU seconds another process of ours (a running child) has used, from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime (fields 14 and 15 of stat)


class OtherLoad:
    """``with OtherLoad() as load: ...`` then ``load.cores``: the average number of cores other
    processes kept busy meanwhile (None where the machine does not say). /proc/stat counts in
    clock ticks (10 ms), so over a tenth of a second the figure is good to about ±0.1 core."""

    cores: float | None = None

    def __init__(self, ours: list[int] = ()) -> None:
        self.ours = list(ours)  # child processes whose CPU time is ours, not other load

    def __enter__(self) -> OtherLoad:
        self._start = (time.monotonic(), _machine_busy_s(), _own_s(self.ours))
        return self

    def __exit__(self, *exc) -> None:
        wall0, busy0, own0 = self._start
        busy = _machine_busy_s()
        wall = time.monotonic() - wall0
        if busy is None or busy0 is None or wall <= 0:
            return
        self.cores = max(0.0, ((busy - busy0) - (_own_s(self.ours) - own0)) / wall)
