"""Results files in, one DataFrame of records and one of environments out: the reading every
report table starts from. Rows keep the file, run and machine they came from."""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..results.counts import count, install_hint, not_installed
from ..results.kinds import Suite
from ..results.records import read_records


@dataclass
class Results:
    checks: pd.DataFrame  # one row per record, plus source and machine
    environments: pd.DataFrame  # one row per results file
    # (adapter, case, check) -> a standalone reproducer's path beside the report, once one is written
    reproducers: dict = field(default_factory=dict)
    memo: dict = field(default_factory=dict, repr=False, compare=False)  # ``once_per_results``' tables

    @property
    def adapters(self) -> list[str]:
        """The adapters that ran (a not-installed record names an adapter that did not)."""
        c = self.checks
        if not len(c):
            return []
        return sorted({r["adapter"] for r in c[["adapter", "outcome", "framework_version"]].to_dict("records")
                       if not not_installed(r)})


def once_per_results(table: Callable[[Results], pd.DataFrame]) -> Callable[[Results], pd.DataFrame]:
    """A table that several sections read, made once per ``Results`` (the checks never change once
    loaded): a full run's report made the timed rows 12 times and the behaviour table 4, ~4 s of its ~17.
    Each caller gets its own copy to change."""
    @functools.wraps(table)
    def once(res: Results) -> pd.DataFrame:
        key = f"{table.__module__}.{table.__qualname__}"
        if key not in res.memo:
            res.memo[key] = table(res)
        return res.memo[key].copy()
    return once


def load(paths: list[str | os.PathLike] | str | os.PathLike, warn=None) -> Results:
    """Read and merge results files; a missing or corrupt one raises naming the path (and line).

    A file given twice (or once by name and once in a folder) is read once, with a warning
    through ``warn``. A file named that holds no check is an error; one found in a folder is
    skipped with a warning (a process killed as it started). No checks at all is an error.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    warn = warn or (lambda message: None)
    envs, rows, seen = [], [], {}
    for given in map(Path, paths):
        for path in _files(given):
            key = path.resolve()
            if key in seen:
                warn(f"{path} is given twice ({seen[key]} and {given}); reading it once")
                continue
            seen[key] = given
            env, found = read_records(path)  # each check line a Record: a bad one is refused by file and line
            checks = [record.to_row() for record in found]
            if not checks:
                problem = f"{path}: {'empty' if not env else 'an environment record but no checks'}"
                if given == path:
                    raise ValueError(problem + "; not a normbench results file (or from a run that wrote nothing)")
                warn(problem + "; skipped")
                continue
            machine = f"{env.get('machine', '?')} ({env.get('cpu', '?')}, {env.get('cores', '?')} cores)"
            source = str(path)
            by_allocator = _allocator_parent(path, env)
            envs.append({"source": source, "run": run_name(path, by_allocator), "machine": machine,
                         **_flat_env(env), **_adapters(env, checks)})
            run = str(run_folder(path) or by_allocator or path)
            named = _env_allocator(env).get("name")
            rows += [{**_with_allocator(row, named), "source": source, "run": run, "machine": machine}
                     for row in checks]
    if not rows:
        raise ValueError(f"no normbench results in {', '.join(map(str, paths))}")
    checks = pd.DataFrame(rows)
    for column in ("facts", "params", "timing"):
        if column not in checks:
            checks[column] = [{} for _ in range(len(checks))]
    checks["allocator"] = allocator_names(checks)
    if len(checks):
        checks["facts"] = checks["facts"].apply(lambda v: v if isinstance(v, dict) else {})
        checks["params"] = checks["params"].apply(lambda v: v if isinstance(v, dict) else {})
    return Results(checks, pd.DataFrame(envs))


def run_folder(path: Path) -> Path | None:
    """The `normbench run` folder (it holds run.json) a results file lies in, if any."""
    return next((up for up in list(path.resolve().parents)[1:5] if (up / "run.json").is_file()), None)


def run_name(path: Path, by_allocator: Path | None = None) -> str:
    """A short name for a results file: ``<run>/<phase>/<group>[/r<k>]`` inside a `normbench
    run` folder, ``<folder>/<allocator>`` in a folder of per-allocator results (see
    :func:`_allocator_parent`), else its folder's name (or the file's own)."""
    path = path.resolve()
    suffix = "" if path.name == "results.jsonl" else f" ({path.stem})"
    run = run_folder(path) or by_allocator
    if run is not None:
        return f"{run.name}/{path.parent.relative_to(run).as_posix()}{suffix}"
    return path.parent.name if not suffix and path.parent.name else path.name


def _allocator_parent(path: Path, env: dict) -> Path | None:
    """The folder above a results file kept under a subfolder named for its allocator
    (``<out>/<allocator>[/r<k>[/<group>]]/results.jsonl``, what `normbench bench --allocators` writes):
    every allocator's files belong to that one run, so its timings are pooled per allocator
    and compared with the others' (see :func:`allocators`)."""
    name = _env_allocator(env).get("name")
    if path.name != "results.jsonl" or not name:
        return None
    return next((folder.parent for folder in path.resolve().parents[:3] if folder.name == name), None)


def _with_allocator(row: dict, named: str | None) -> dict:
    """A timing without an allocator of its own ran under its file's (None where neither says)."""
    if row.get("suite") == Suite.SPEED and not row.get("allocator") and named:
        return {**row, "allocator": named}
    return row


def _env_allocator(env: dict) -> dict:
    found = env.get("allocator")
    return found if isinstance(found, dict) else {}


def allocator_names(checks: pd.DataFrame) -> pd.Series:
    """Each record's allocator, None where not recorded (older files, verification records)."""
    if "allocator" not in checks:
        return pd.Series(None, index=checks.index, dtype=object)
    names = checks["allocator"]
    return names.where(names.apply(lambda v: isinstance(v, str) and v != ""), None).astype(object)


def _files(path: Path) -> list[Path]:
    """A results file, or every results file under a folder (a `normbench run` folder holds
    one per process; a tox results folder one run per environment)."""
    if not path.is_dir():
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such results file")
        return [path]
    if (path / "results.jsonl").is_file():
        return [path / "results.jsonl"]
    found = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    if not found:
        raise FileNotFoundError(f"{path}: no results files (*.jsonl) in this folder")
    return found


def _flat_env(env: dict) -> dict:
    out = {k: env.get(k) for k in ("date", "python", "os", "cpu", "cores", "normbench_version", "git_commit")}
    out["versions"] = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())
    out["threads"] = ", ".join(f"{k}={v}" for k, v in (env.get("threads") or {}).items()) or "defaults"
    pinned = env.get("pinned_cpus")
    if pinned:  # the benchmark process kept fewer CPUs than it had (threads.pin)
        out["threads"] += f"; pinned to CPU {', '.join(map(str, pinned))} (XLA sizes its pool by the affinity mask)"
    bw = env.get("memory_bandwidth") or {}
    out["bandwidth_gbps"] = bw.get("gbps")
    levels = (env.get("cache_bandwidth") or {}).get("levels") or []
    out["cache_bandwidth"] = ", ".join(f"{lv['name']} {lv['gbps']:.0f}" for lv in levels
                                       if lv.get("bytes") and isinstance(lv.get("gbps"), (int, float))) or None
    probe = env.get("cpu_probe") or {}
    out["cpu_probe_s"] = probe.get("seconds")
    allocator = _env_allocator(env)
    out["allocator"] = allocator.get("name")
    settings = allocator.get("settings") if isinstance(allocator.get("settings"), dict) else {}
    out["allocator_settings"] = " ".join(f"{k}={v}" for k, v in settings.items())
    out["allocator_meaning"] = allocator.get("meaning")
    out["allocator_probe_faults_per_mb"] = allocator.get("probe_faults_per_mb")
    out["allocator_preload_mapped"] = allocator.get("preload_mapped")
    out["memory_budget_mb"] = (env.get("head_to_head") or {}).get("memory_budget_mb")
    out["compile_caches"] = _compile_caches(env)
    lock = env.get("machine_lock") if isinstance(env.get("machine_lock"), dict) else {}
    out["lock_mode"] = lock.get("mode")
    out["lock_waited_s"] = lock.get("waited_s")
    return out


def _compile_caches(env: dict) -> str | None:
    """Where a process's compilers kept what they compiled: the folder a verification process shared with
    other runs (a compile there may be a read of an earlier run's), or a benchmark's own empty ones; None
    for a file from before normbench recorded it."""
    if "compile_caches" not in env:
        return None
    said = (env.get("head_to_head") or {}).get("compile_caches")
    if said:
        return f"benchmark: {said}"
    paths = [v.split("=", 1)[-1] for v in " ".join((env.get("compile_caches") or {}).values()).split() if "/" in v]
    folders = sorted({str(Path(p).parent) for p in paths})
    return ", ".join(f"{f}/ ({', '.join(sorted(Path(p).name for p in paths if str(Path(p).parent) == f))})"
                     for f in folders) or "none: each compiler's default"


def _adapters(env: dict, checks: list[dict]) -> dict:
    """Which adapters this file's process had installed, which ran (have a record that is not a
    not-installed skip), and which were missing, with what installs them: from the environment's
    adapter list, and from the records a run writes for a framework it could not start."""
    declared = env.get("adapters") or {}
    missing = {name: info.get("install") for name, info in declared.items() if not info.get("installed")}
    missing |= {row["adapter"]: install_hint(row) for row in checks if not_installed(row)}
    return {"adapters_installed": ", ".join(_installed(name, info) for name, info in declared.items()
                                           if info.get("installed")),
            "adapters_run": ", ".join(sorted(count(checks).adapters)),
            "adapters_missing": ", ".join(f"{name} ({hint})" for name, hint in missing.items())}


def _installed(name: str, info: dict) -> str:
    """``name version``, and the class of a third party's adapter: what produced its records."""
    cls = info.get("class") or ""
    third = f" ({cls})" if cls and not cls.startswith("normbench.") else ""
    return f"{name} {info['version']}{third}" if info.get("version") else f"{name}{third}"


def run_of(labels: pd.Series) -> pd.Series:
    """The run a results file belongs to: its label up to the first "/" (``<run>/<phase>/<group>``
    inside a `normbench run` folder, the file's folder name outside one)."""
    return labels.astype(str).str.split("/").str[0]


def tidy(res: Results) -> pd.DataFrame:
    """Every record as one flat row (dict fields as JSON), for results.csv."""

    c = res.checks.copy()
    for column in c.columns:
        if c[column].apply(lambda v: isinstance(v, (dict, list))).any():
            c[column] = c[column].apply(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
    return c
