"""The command lines of the child processes the supervisor starts. A benchmark process's is
assembled here only, for `normbench run`'s passes and `normbench bench`'s allocators, self-check
and restart under an allocator alike."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from pathlib import Path

from ..bench.allocator import Allocator

CLI = (sys.executable, "-X", "faulthandler", "-m", "normbench")  # faulthandler: a crash's traceback in stderr
DEFAULT_REPEATS = 3  # timed passes over the benchmark cases: each in a fresh process under `normbench run`


@dataclass(frozen=True)
class Bench:
    """What a `normbench bench` process is asked to time (its options, less where it writes)."""

    adapters: str | None = None
    threads: int | None = None
    dtypes: str | None = None
    repeats: int = DEFAULT_REPEATS
    first_repeat: int = 0
    quick: bool = False
    no_sweeps: bool = False
    verbose: bool = False
    pytest_args: tuple[str, ...] = ()

    def one_pass(self, repeat: int, adapters: str | None = None) -> Bench:
        """The same, timing pass ``repeat`` only (of ``adapters`` if given)."""
        return replace(self, repeats=1, first_repeat=repeat, adapters=adapters or self.adapters)


def bench(out: Path, settings: Bench, alloc: Allocator, report: bool = False) -> list[str]:
    """``normbench bench`` writing to ``out`` under ``alloc``; without its report unless ``report``."""
    s = settings
    cmd = [*CLI, "bench", "--in-process", "-o", str(out), "--repeats", str(s.repeats),
           "--first-repeat", str(s.first_repeat),
           "--allocator", alloc.spec]
    cmd += ["--adapters", s.adapters] if s.adapters else []
    cmd += ["--threads", str(s.threads)] if s.threads else []
    cmd += ["--dtypes", s.dtypes] if s.dtypes else []
    cmd += [flag for flag, on in (("--quick", s.quick), ("--no-sweeps", s.no_sweeps), ("--no-report", not report),
                                  ("-v", s.verbose)) if on]
    return cmd + (["--", *s.pytest_args] if s.pytest_args else [])
