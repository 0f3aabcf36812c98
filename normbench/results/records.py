"""Result records and the JSON Lines file they are written to, one object per check.

The first line is the environment record, which names the file's format (``format``:
``normbench-results/1``; a file without one is read as version 1, a newer one is refused);
every later line is one check. Lines are
flushed as they are written, so a run that dies still leaves everything it finished.
Under pytest-xdist each worker writes such a file of its own, a part beside the results
file (``results.gw0.jsonl``), and the controller merges the parts when the session ends.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import importlib.metadata
import json
import math
import os
import platform
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

from .. import __version__
from .kinds import Check, Outcome, Suite

OUTCOMES = tuple(Outcome)
RUN_FORMAT = "normbench-run/1"  # run.json's "format": marks a folder as a run normbench may replace
RESULTS_FORMAT = "normbench-results/1"  # results.jsonl's first line says it; files from before it are version 1
READS = (RESULTS_FORMAT,)  # the results formats this normbench reads
E = TypeVar("E", bound=StrEnum)


@dataclass
class Record:
    """One check of one case on one adapter; the schema reports and notebooks read."""

    suite: Suite
    check: Check
    op: str
    adapter: str
    framework_version: str
    dtype: str
    shape: list[int]
    layout: str | None
    input: str
    params: dict[str, Any]
    outcome: Outcome
    seed: int
    case: str  # the case id the seed derives from
    max_abs_err: float | None = None
    err_eps: float | None = None
    tolerance: float | None = None
    # the largest error beyond its own element's tolerance (absolute; <= 0 passes): what a known divergence's
    # envelope must explain (``numerics.envelopes.within_tolerances``)
    excess: float | None = None
    message: str = ""
    device: str = "cpu"
    rerun: str = ""  # a command that reruns exactly this case
    facts: dict[str, Any] = field(default_factory=dict)  # measured behaviour, not pass/fail
    timing: dict[str, Any] | None = None  # benchmarks only: written as top-level fields
    # The adapter's execution mode where it is not the default (``adapter`` is then ``<name>+<mode>``);
    # the case id stays the same in every mode, so a case lines up across adapters and modes.
    mode: str | None = None
    # The specifications the adapter declares it implements (``Adapter.semantics``), where it declares any:
    # the known divergences of a spec match on them.
    semantics: list[str] | None = None

    def __post_init__(self) -> None:
        self.outcome = _member(Outcome, "outcome", self.outcome)
        self.suite = _member(Suite, "suite", self.suite)
        self.check = _member(Check, "check", self.check)

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Record:
        """The record a check line was written from (timing fields were written top-level)."""
        names = {f.name for f in dataclasses.fields(cls)} - {"timing"}
        timing = {k: v for k, v in row.items() if k not in names and k != "type"}
        return cls(**{k: v for k, v in row.items() if k in names}, timing=timing or None)

    def to_row(self) -> dict[str, Any]:
        """The check line this record is written as: timing fields top-level."""
        row = {"type": "check", **dataclasses.asdict(self)}
        row.update(row.pop("timing") or {})
        for optional in ("mode", "semantics"):  # absent where they do not apply, as before they existed
            if row[optional] is None:
                del row[optional]
        return row


def _member(kind: type[E], name: str, value: Any) -> E:
    """``value`` as a member of ``kind``; an unknown one is refused naming the field and the known values
    (a new suite or check is a member of ``results.kinds`` first)."""
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"unknown {name} {value!r}; expected one of {', '.join(kind)}") from None


def about_process(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """What a record about a whole process (not one case) says it ran on, for ``build``."""
    return {"op": "-", "dtype": "-", "shape": [], "layout": None, "input": "-", "seed": 0, "case": name,
            "params": params}


def build(adapter: Any, suite: Suite | str, check: Check | str, about: dict[str, Any], **fields: Any) -> Record:
    """The one place a record is made: which adapter ran (its name and version), what it ran on
    (``about``: ``Case.describe()``, ``BenchCase.describe()``, or a process's own description),
    and how it went (``fields``: outcome, errors, facts, timing)."""
    fields.setdefault("framework_version", adapter.version())
    mode = getattr(adapter, "mode", None)
    if mode is not None:
        fields["facts"] = {**fields.get("facts", {}), "mode_settings": mode.how}
    semantics = list(getattr(adapter, "semantics", ())) or None
    return Record(suite=suite, check=check, adapter=adapter.name, mode=mode and mode.name, semantics=semantics,
                  **about, **fields)


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


def environment(dists: Iterable[str] = (), thread_vars: Iterable[str] = (),
                cache_vars: Iterable[str] = ()) -> dict[str, Any]:
    """What a reader needs to reproduce or compare a run: the versions of ``dists`` and the values of
    ``thread_vars`` and ``cache_vars`` (which only the framework packages know: ``bench.environment``
    names them; the compile caches say whether a compile could be a read of an earlier run's)."""
    versions = {}
    for dist in dists:
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
        "threads": {k: os.environ[k] for k in thread_vars if k in os.environ},
        "compile_caches": {k: os.environ[k] for k in cache_vars if k in os.environ},
        "versions": versions,
    }


class ResultsFile:
    """Appends records to a JSON Lines file, creating it (and its folder) on first write.

    It refuses to touch a file that already exists, so no earlier run is overwritten. The
    environment record is ``env`` (a process passes ``bench.environment.environment()``, a merge a
    worker's), or without one this layer's fields alone (no framework versions).
    """

    def __init__(self, path: str | os.PathLike, extra_env: dict[str, Any] | None = None,
                 env: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.extra_env = extra_env or {}
        self._env = env
        self._fh = None

    def open(self):
        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = open(self.path, "x", encoding="utf-8")  # noqa: SIM115 - kept open, flushed per line
            env = {**(self._env or environment()), **self.extra_env}
            env = {"type": "environment", "format": RESULTS_FORMAT,
                   **{k: v for k, v in env.items() if k not in ("type", "format")}}
            self._write(json.dumps(_finite(env), allow_nan=False))
        return self._fh

    def _write(self, line: str) -> None:
        self._fh.write(line + "\n")
        self._fh.flush()

    def add(self, record: Record) -> None:
        self.add_row(record.to_row())

    def add_row(self, row: dict[str, Any]) -> None:
        """A check as written (or read back from a part): copied as it is."""
        self.open()
        self._write(json.dumps(_finite(row), allow_nan=False, default=str))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


def _lines(path: str | os.PathLike, errors: str = "strict"):
    """(line number, line, record) for each line; the record is a ValueError naming file and line
    if bad. A results format this normbench does not read is refused at its line, naming the file."""
    with open(path, encoding="utf-8", errors=errors) as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                obj = ValueError(_not_results(path) if lineno == 1 else None
                                 or f"{path}:{lineno}: not a JSON object ({exc.msg})")
            else:
                if not isinstance(obj, dict) or obj.get("type") not in ("environment", "check", "format"):
                    obj = ValueError(f"{path}:{lineno}: not a normbench record")
                elif obj["type"] != "check" and obj.get("format", RESULTS_FORMAT) not in READS:
                    raise ValueError(f"{path}: results format {obj['format']!r}, which this normbench "
                                     f"({__version__}) does not read ({', '.join(READS)}): upgrade normbench")
            yield lineno, line, obj


def _not_results(path: str | os.PathLike) -> str | None:
    """What a file whose first line is not JSON is, when it is a whole JSON document: the
    pytest-benchmark JSON and run.json that lie beside normbench's results are the likely
    mix-ups, so they are named."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc = json.load(fh)
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    if isinstance(doc, dict) and "benchmarks" in doc and "machine_info" in doc:
        return (f"{path}: a pytest-benchmark JSON file, not normbench results; "
                "read the results.jsonl beside it (or its folder)")
    if is_run_plan(doc):
        return f"{path}: the plan of a `normbench run` (run.json), not results; give its folder instead"
    return f"{path}: a JSON document, not normbench results (JSON Lines: one record per line)"


def is_run_plan(data: object) -> bool:
    """Whether parsed JSON is a run.json that ``normbench run`` wrote (this format or the one
    before it, which had no ``format``)."""
    if not isinstance(data, dict) or data.get("format", RUN_FORMAT) != RUN_FORMAT:
        return False
    jobs = data.get("jobs")
    return (isinstance(data.get("suites"), list) and isinstance(jobs, list)
            and all(isinstance(j, dict) and {"phase", "group", "folder", "command"} <= set(j) for j in jobs))


def read(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(environment, check rows) from a results file, each row as its :class:`Record` writes it (so
    parsed and checked the same way as :func:`read_records`; a bad line names the file and line)."""
    env, found = read_records(path)
    return env, [r.to_row() for r in found]


def read_records(path: str | os.PathLike) -> tuple[dict[str, Any], list[Record]]:
    """(environment, records) from a results file: each check line parsed as a :class:`Record`, so a
    line that is not one (a missing field, an unknown outcome) is refused naming the file and line."""
    env: dict[str, Any] = {}
    found = []
    for lineno, _, obj in _lines(path):
        if isinstance(obj, ValueError):
            raise obj
        if obj["type"] == "environment":
            env = obj
        elif obj["type"] == "check":
            try:
                found.append(Record.from_row(obj))
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{path}:{lineno}: not a check record ({exc})") from None
    return env, found


# ---- xdist: one part per worker, merged by the controller ----

def part_path(path: str | os.PathLike, worker: str) -> Path:
    """Where worker ``gw0`` writes its records of the run whose results file is ``path``."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{worker}{path.suffix}")


def parts_of(path: str | os.PathLike) -> list[Path]:
    """The worker parts of ``path`` that exist, in worker order (gw0, gw1, …, gw10)."""
    path = Path(path)
    pattern = re.compile(rf"{re.escape(path.stem)}\.gw(\d+){re.escape(path.suffix)}")
    found = []
    if path.parent.is_dir():
        for p in path.parent.iterdir():
            m = pattern.fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def read_part(path: str | os.PathLike) -> tuple[dict[str, Any], list[dict[str, Any]], list[tuple[str, str]]]:
    """(environment, checks, bad lines as (why, line)) from a part. A worker that died may have
    left a line cut off: that is returned, not raised, so everything else it wrote is merged."""
    env: dict[str, Any] = {}
    checks, bad = [], []
    for _, line, obj in _lines(path, errors="surrogateescape"):  # bytes of a cut-off line kept as they are
        if isinstance(obj, ValueError):
            bad.append((str(obj), line))
        elif obj["type"] == "environment":
            env = env or obj
        elif obj["type"] == "check":
            checks.append(obj)
    return env, checks, bad
