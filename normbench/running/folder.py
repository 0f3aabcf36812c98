"""Output folders: a fresh one for every command, and the rules of a `normbench run` folder (what
it holds, when --overwrite may empty it, its run.json)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from pathlib import Path

from ..results import records

RUN_PLAN = "run.json"  # a run folder's plan and how each process ended; its format marks it replaceable
MODES_FIELD = "modes"  # the side field that times the compiled modes a run adds, in bench-modes/
# what a run folder holds
RUN_ENTRIES = {RUN_PLAN, f"{RUN_PLAN}.new", "verify", "sync", "bench", f"bench-{MODES_FIELD}", "logs", "report"}


class FolderError(ValueError):
    """The output folder cannot be used; the message is one line saying why."""


def chosen(output: str | None) -> Path:
    """-o, or a new folder named for the time under normbench-results/."""
    return Path(output or Path("normbench-results") / dt.datetime.now().strftime("%Y%m%d-%H%M%S"))


def _taken(out: Path) -> bool:
    return out.exists() and (not out.is_dir() or any(out.iterdir()))


def fresh(output: str | None) -> Path:
    """A new, writable results folder; FolderError if it already holds something."""
    out = chosen(output)
    if _taken(out):
        raise FolderError(f"{out} exists and is not an empty folder; choose another -o")
    return writable(out)


def writable(out: Path) -> Path:
    """Create ``out`` and prove it writable by writing in it (permission bits do not tell for
    root or a read-only file system)."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise FolderError(f"cannot write the output folder {out}: {exc.strerror or exc}") from None
    return out


def run_folder(output: str | None, overwrite: bool) -> Path:
    """A new, writable run folder. An existing one is replaced only with ``overwrite``, and only
    if it is a normbench run: its run.json parses as one, it holds nothing a run does not write,
    and it is not the working directory, a folder above it, the home folder or the root."""
    out = chosen(output)
    if _taken(out):
        if not overwrite:
            raise FolderError(f"{out} already exists; choose another -o, or pass --overwrite to replace an earlier run")
        problem = not_replaceable(out)
        if problem:
            raise FolderError(f"not deleting {out}: {problem}")
        for entry in out.iterdir():  # only what a run writes (not_replaceable checked)
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    return writable(out)


def not_replaceable(out: Path) -> str | None:
    """Why --overwrite must not empty ``out`` (None if it may)."""
    where = out.resolve()
    cwd = Path.cwd().resolve()
    if where == cwd or where in cwd.parents or where in (Path.home().resolve(), Path(where.anchor)):
        return "it is the working directory, a folder above it, the home folder or the root"
    plan = out / RUN_PLAN
    if not plan.is_file():
        return f"it is not a normbench run folder (no {RUN_PLAN})"
    try:
        data = json.loads(plan.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        return f"its {RUN_PLAN} is not a normbench run record ({exc})"
    if not records.is_run_plan(data):
        return f"its {RUN_PLAN} is not a normbench run record"
    foreign = sorted(e.name for e in out.iterdir() if e.name not in RUN_ENTRIES)
    if foreign:
        return f"it holds files a run does not write ({', '.join(foreign[:5])}{', …' if len(foreign) > 5 else ''})"
    return None


def write_json(path: Path, data: dict) -> None:
    """Replace ``path`` with ``data`` in one step: never a half-written file."""
    fresh_copy = path.with_name(path.name + ".new")
    fresh_copy.write_text(json.dumps(data, indent=2) + "\n")
    fresh_copy.replace(path)


def result_files(folder: Path) -> list[Path]:
    """Every results file under ``folder`` (a process's own, and the supervisor's records about it)."""
    return sorted(p for p in folder.rglob("*.jsonl") if p.is_file()) if folder.is_dir() else []
