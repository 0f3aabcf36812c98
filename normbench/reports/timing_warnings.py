"""What makes timings less trustworthy, read from the records: bandwidth that moved, a busy
machine lock, other load during a timing."""

from __future__ import annotations

import pandas as pd

from ..results.allocators import OVERLAP_CORES
from ..results.kinds import Suite
from .formatting import (
    fmt_gbps,
    fmt_seconds,
    plural,
    sig3,
)
from .loading import Results, run_of
from .timing import speed

BANDWIDTH_SPREAD = 1.5  # max / min memory bandwidth across one run's processes worth a warning
WAIT_WARNING_S = 1.0  # a benchmark process that waited longer than this for the machine lock


def report_warnings(res: Results) -> list[str]:
    """What makes these timings less trustworthy, read from the records: a run whose memory bandwidth
    moved between processes, benchmarks that waited for or overlapped other load."""
    return [*_bandwidth_warnings(res), *_lock_warnings(res), *_load_warnings(res)]


def _bandwidth_warnings(res: Results) -> list[str]:
    envs = res.environments
    if not len(envs) or "bandwidth_gbps" not in envs:
        return []
    out = []
    gbps = pd.to_numeric(envs["bandwidth_gbps"], errors="coerce")
    for run, g in gbps.groupby(run_of(envs["run"]), sort=False):
        g = g.dropna()
        if len(g) > 1 and g.min() > 0 and g.max() / g.min() > BANDWIDTH_SPREAD:
            out.append(f"{run}: memory bandwidth varied {fmt_gbps(g.min())}–{fmt_gbps(g.max())} GB/s across this "
                       "run's processes: timings from different processes may not be comparable.")
    return out


def _lock_warnings(res: Results) -> list[str]:
    envs, c = res.environments, res.checks
    if not len(envs) or "lock_waited_s" not in envs or not len(c):
        return []
    benchmarked = set(c.loc[c["suite"] == Suite.SPEED, "source"])
    waited = pd.to_numeric(envs["lock_waited_s"], errors="coerce")
    waited = waited[envs["source"].isin(benchmarked) & (waited > WAIT_WARNING_S)]
    if not len(waited):
        return []
    return [f"{plural(len(waited), 'benchmark process', 'benchmark processes')} waited for the machine lock "
            f"(up to {fmt_seconds(waited.max())}) while other work held it: the machine was busy around "
            "these timings."]


def _load_warnings(res: Results) -> list[str]:
    s = speed(res)
    loaded = pd.to_numeric(s["other_load"], errors="coerce") if len(s) else pd.Series(dtype=float)
    loaded = loaded[loaded >= OVERLAP_CORES]
    if not len(loaded):
        return []
    return [f"{len(loaded)} of {plural(len(s), 'timing')} overlapped other load (up to {sig3(loaded.max())} "
            f"{'core' if loaded.max() == 1 else 'cores'} busy with other processes): the machine was not quiet."]
