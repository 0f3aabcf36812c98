"""Result records and the JSON Lines file they are written to, one object per check.

The first line is the environment record; every later line is one check. Lines are
flushed as they are written, so a run that dies still leaves everything it finished.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import __version__, threads

OUTCOMES = ("pass", "fail", "known", "error", "skip")
FRAMEWORK_DISTS = ("numpy", "ml_dtypes", "torch", "jax", "jaxlib", "flax", "tensorflow",
                   "tensorflow-cpu", "keras", "onnx", "onnxruntime", "pytest")
THREAD_VARS = (*threads.ENV_VARS, "XLA_FLAGS")


@dataclass
class Record:
    """One check of one case on one adapter; the schema reports and notebooks read."""

    suite: str
    check: str
    op: str
    adapter: str
    framework_version: str
    dtype: str
    shape: list[int]
    layout: str | None
    input: str
    params: dict[str, Any]
    outcome: str
    seed: int
    case: str  # the case id the seed derives from
    max_abs_err: float | None = None
    err_eps: float | None = None
    tolerance: float | None = None
    message: str = ""
    device: str = "cpu"
    rerun: str = ""  # a command that reruns exactly this case
    facts: dict[str, Any] = field(default_factory=dict)  # measured behaviour, not pass/fail
    timing: dict[str, Any] | None = None  # benchmarks only: written as top-level fields

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}; expected one of {OUTCOMES}")


def _finite(obj: Any) -> Any:
    """Plain JSON: inf/nan become strings, numpy scalars and arrays become Python values."""
    if hasattr(obj, "tolist"):
        obj = obj.tolist()
    if isinstance(obj, float) and not math.isfinite(obj):
        return str(obj)
    if isinstance(obj, tuple):
        obj = list(obj)
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite(v) for v in obj]
    return obj


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True,
            text=True, timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def environment() -> dict[str, Any]:
    """What a reader needs to reproduce or compare a run; imports no framework."""
    versions = {}
    for dist in FRAMEWORK_DISTS:
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {
        "type": "environment",
        "normbench_version": __version__,
        "git_commit": _git_commit(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "os": platform.platform(),
        "machine": platform.node(),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "threads": {k: os.environ[k] for k in THREAD_VARS if k in os.environ},
        "versions": versions,
    }


class ResultsFile:
    """Appends records to a JSON Lines file, creating it (and its folder) on first write.

    It refuses to touch a file that already exists, so no earlier run is overwritten.
    """

    def __init__(self, path: str | os.PathLike, extra_env: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.extra_env = extra_env or {}
        self._fh = None

    def _open(self):
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "x", encoding="utf-8")  # noqa: SIM115 - kept open, flushed per line
            self._write(json.dumps(_finite({**environment(), **self.extra_env}), allow_nan=False))
        return self._fh

    def _write(self, line: str) -> None:
        self._fh.write(line + "\n")
        self._fh.flush()

    def add(self, record: Record) -> None:
        self._open()
        row = {"type": "check", **dataclasses.asdict(record)}
        row.update(row.pop("timing") or {})
        self._write(json.dumps(_finite(row), allow_nan=False, default=str))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def read(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(environment, checks) from a results file; a corrupt line names the file and line."""
    env: dict[str, Any] = {}
    checks = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not a JSON object ({exc.msg})") from None
            if not isinstance(obj, dict) or obj.get("type") not in ("environment", "check"):
                raise ValueError(f"{path}:{lineno}: not a normbench record")
            if obj["type"] == "environment":
                env = obj
            else:
                checks.append(obj)
    return env, checks
