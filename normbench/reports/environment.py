"""The environment table: one column per run, each field summarised over the run's results files."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .formatting import (
    MISSING,
    fmt_date,
    fmt_gbps,
    fmt_seconds,
    missing,
    sig3,
    span,
)
from .loading import Results, run_of


def _distinct(values: pd.Series) -> str:
    shown = [str(v) for v in dict.fromkeys(values) if not missing(v) and str(v) != ""]
    return "; ".join(shown) or MISSING


def _union(values: pd.Series) -> str:
    """Comma-separated lists (adapters per process) merged, first seen first."""
    items = [item.strip() for v in values if isinstance(v, str) for item in v.split(", ") if item.strip()]
    return ", ".join(dict.fromkeys(items)) or MISSING


def _dates(values: pd.Series) -> str:
    stamps = pd.to_datetime(values, errors="coerce", utc=True).dropna()
    if not len(stamps):
        return MISSING
    first, last = fmt_date(stamps.min()), fmt_date(stamps.max())
    if first[:10] == last[:10] and first != last:  # same day: 2024-05-01 10:02–10:40 UTC
        return f"{first[:16]}–{last[11:]}"
    return span(first, last)


def _bandwidth(values: pd.Series) -> str:
    gbps = pd.to_numeric(values, errors="coerce").dropna()
    return MISSING if not len(gbps) else span(fmt_gbps(gbps.min()), fmt_gbps(gbps.max())) + " GB/s"


def _lock(g: pd.DataFrame) -> str:
    """The lock modes a run's processes held the machine in, and the longest wait for it."""
    modes = _distinct(g["lock_mode"]) if "lock_mode" in g else MISSING
    waited = pd.to_numeric(g["lock_waited_s"], errors="coerce").max() if "lock_waited_s" in g else np.nan
    if modes == MISSING and missing(waited):
        return MISSING
    return modes if missing(waited) or waited < 0.05 else f"{modes}, waited up to {fmt_seconds(waited)}"


def _allocator_label(env: pd.Series) -> str | None:
    """"warm (GLIBC_TUNABLES=…)": a process's allocator and the settings it ran under, flagged where
    the library it preloads was not mapped into it (the setting did not take effect)."""
    name = env.get("allocator")
    if missing(name) or not name:
        return None
    settings = env.get("allocator_settings")
    text = f"{name} ({settings})" if isinstance(settings, str) and settings else str(name)
    mapped = env.get("allocator_preload_mapped")
    return text + (" — ⚠ preloaded library not mapped" if not missing(mapped) and not mapped else "")


def _probe(g: pd.DataFrame) -> str:
    """Page faults per MiB of a freed and reallocated 16 MiB block, per allocator (lowest–highest):
    near zero where freed memory stays mapped."""
    faults = pd.to_numeric(g["allocator_probe_faults_per_mb"], errors="coerce")
    found = g.assign(_faults=faults).dropna(subset=["_faults"])
    if not len(found):
        return MISSING
    parts = [(name, span(sig3(f.min()), sig3(f.max()))) for name, f in
             found.groupby(found["allocator"].fillna("?"), sort=False)["_faults"]]
    text = parts[0][1] if len(parts) == 1 else "; ".join(f"{name} {value}" for name, value in parts)
    return f"{text} page faults/MiB"


def _normbench(g: pd.DataFrame) -> str:
    pairs = [" ".join(str(x)[:10] for x in (v, c) if not missing(x) and x)
             for v, c in zip(g.get("normbench_version", [None] * len(g)), g.get("git_commit", [None] * len(g)),
                             strict=True)]
    return _distinct(pd.Series(pairs, dtype=object))


RUN_FIELDS = {  # label: how a run's files are summarised into one value
    "results files": lambda g: str(len(g)),
    "machine": lambda g: _distinct(g["machine"]),
    "date": lambda g: _dates(g["date"]),
    "python": lambda g: _distinct(g["python"]),
    "normbench": _normbench,
    "os": lambda g: _distinct(g["os"]),
    "versions": lambda g: _distinct(g["versions"]),
    "threads": lambda g: _distinct(g["threads"]),
    "memory bandwidth": lambda g: _bandwidth(g["bandwidth_gbps"]),
    "cache bandwidth (GB/s)": lambda g: _distinct(g["cache_bandwidth"]),
    "allocator": lambda g: _distinct(pd.Series([_allocator_label(r) for _, r in g.iterrows()], dtype=object)),
    "allocator probe": _probe,
    "machine lock": _lock,
    "compile caches": lambda g: _distinct(g["compile_caches"]),
    "adapters run": lambda g: _union(g["adapters_run"]),
    "adapters installed": lambda g: _union(g["adapters_installed"]),
    "adapters missing (install with)": lambda g: _union(g["adapters_missing"]).replace(MISSING, "none"),
}


def runs(res: Results) -> pd.DataFrame:
    """One row per run (a `normbench run` folder holds a results file per process), each environment
    field summarised over the run's files: dates first–last, bandwidth min–max, else distinct values."""
    envs = res.environments
    if not len(envs):
        return pd.DataFrame(columns=["run", *RUN_FIELDS])
    envs = envs.assign(**{k: None for k in ("machine", "date", "python", "os", "versions", "threads",
                                            "bandwidth_gbps", "cache_bandwidth", "adapters_installed", "adapters_run",
                                            "adapters_missing",
                                            "allocator",
                                            "allocator_settings", "allocator_probe_faults_per_mb",
                                            "allocator_preload_mapped", "compile_caches")
                          if k not in envs})
    rows = [{"run": run, **{label: summarise(g) for label, summarise in RUN_FIELDS.items()}}
            for run, g in envs.groupby(run_of(envs["run"]), sort=False)]
    return pd.DataFrame(rows)


def split_runs(table: pd.DataFrame) -> tuple[dict[str, str], pd.DataFrame]:
    """(fields every run shares, with their value; the fields that differ, one column per run).

    A field no run measured is left out. With one run every field is 'shared'."""
    shared, differ = {}, {}
    for field in RUN_FIELDS:
        values = list(table[field]) if field in table else []
        if not values or all(v == MISSING for v in values):
            continue
        if len(set(values)) == 1:
            shared[field] = values[0]
        else:
            differ[field] = values
    return shared, pd.DataFrame(differ, index=list(table["run"])).T
