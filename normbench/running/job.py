"""What the supervisor runs: a group of adapters sharing one process, and one supervised
process (a job) with how it stands."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.base import Adapter
from ..results.kinds import JobStatus


@dataclass
class Group:
    """Adapters that share one process (see ``Adapter.group``)."""

    name: str
    adapters: list[Adapter]

    @property
    def refs(self) -> str:
        return ",".join(a.ref or a.name for a in self.adapters)

    @property
    def environment(self) -> dict[str, str]:
        return {k: v for a in self.adapters for k, v in a.environment.items()}


def plan(adapters: list[Adapter]) -> list[Group]:
    """Groups in the order their first adapter was given."""
    groups: dict[str, Group] = {}
    for a in adapters:
        key = a.group or a.name
        groups.setdefault(key, Group(key, [])).adapters.append(a)
    return list(groups.values())


EnvStep = Callable[[dict[str, str]], dict[str, str]]


@dataclass
class Job:
    """One supervised child process: a group's verification, benchmark pass, search or self-check.

    ``folder`` is the process's own (its ``-o``); the supervisor adds error records there and
    writes its stdout and stderr to ``logs``. ``env_steps`` turn the child's environment (this
    process's, the group's) into what it starts under, e.g. an allocator setting.
    """

    phase: str  # "verify", "sync" (the synchronized suite), "bench" or "search"
    group: Group
    folder: Path
    command: list[str]
    logs: Path
    repeat: int | None = None  # benchmarks: which pass over the cases
    variant: str = ""  # what tells apart jobs of one phase and group, e.g. the allocator of a pass
    exclusive: bool = False  # needs the machine alone (benchmarks): run one at a time, after the rest
    env_steps: tuple[EnvStep, ...] = ()
    timeout_s: float | None = None  # its own limit, where the supervisor's per-process one is too short
    status: JobStatus = JobStatus.WAITING
    returncode: int | None = None
    elapsed_s: float = 0.0
    counts: Counter = field(default_factory=Counter)  # records written, by outcome
    detail: str = ""

    @property
    def label(self) -> str:
        return (f"{self.phase} {self.group.name}" + (f" {self.variant}" if self.variant else "")
                + (f" r{self.repeat}" if self.repeat is not None else ""))

    @property
    def slug(self) -> str:
        return self.label.replace(" ", "-")

    @property
    def finished(self) -> bool:
        return self.status.finished

    @property
    def failed(self) -> bool:
        """Finished without running to its end (crashed, timed out, never started)."""
        return self.status.failed
