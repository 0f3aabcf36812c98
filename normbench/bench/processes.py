"""A contender process as the conductor holds it: its pipe, its answers, and why it was lost."""

from __future__ import annotations

import json
import os
import select
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from ..adapters.failures import gist
from .contender import proportional_mb, status_mb
from .entrants import Entrant, slug

PREPARE_TIMEOUT_S = 300.0  # building and compiling the largest case, on a busy machine


class ContenderLost(RuntimeError):
    """A contender process died or stopped answering."""


@dataclass
class Process:
    """One contender process and what it said."""

    entrant: Entrant
    proc: subprocess.Popen
    stderr_path: Path
    hello: dict = field(default_factory=dict)
    lost: str | None = None
    shared_mb: float = 0.0  # resident, less proportional, on starting: its share of libraries other processes map
    started_mb: float | None = None  # resident on starting (its hello)
    instance: int = 0  # how many processes of its entrant this pass restarted before it

    def ask(self, request: dict, timeout_s: float) -> dict:
        self.send(request)
        return self.read(timeout_s)

    def send(self, request: dict) -> None:
        if self.lost:
            raise ContenderLost(self.lost)
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            self.fail(f"its process exited ({exc})")

    def read(self, timeout_s: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout_s)
        if not ready:
            self.proc.kill()
            self.fail(f"no answer within {timeout_s:.0f} s: killed")
        line = self.proc.stdout.readline()
        if not line:
            self.fail(f"its process exited with status {self.proc.wait()}")
        return json.loads(line)

    def fail(self, why: str) -> None:
        try:
            said = gist(self.stderr_path.read_text(errors="replace"))
        except OSError:
            said = ""
        self.lost = why + (f"; stderr: {said} (all of it in {self.stderr_path})" if said else "")
        raise ContenderLost(self.lost)

    def close(self) -> None:
        """Its stdin closed, it exits (``wait``)."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass

    def wait(self) -> None:
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def ask_all(processes: list[Process], request: dict, timeout_s: float) -> dict[str, dict]:
    """One request to each of these processes at once (they answer side by side), then each answer, or
    ``{"error": why}`` for a process lost on the way."""
    asked, said = [], {}
    for p in processes:
        try:
            p.send(request)
            asked.append(p)
        except ContenderLost as exc:
            said[p.entrant.name] = {"error": str(exc)}
    for p in asked:
        try:
            said[p.entrant.name] = p.read(timeout_s)
        except ContenderLost as exc:
            said[p.entrant.name] = {"error": str(exc)}
    return said


def launch(entrant: Entrant, logs: Path, index: int, env: dict[str, str], instance: int = 0) -> Process:
    """A contender process of ``entrant`` under its interpreter, importing this normbench; its
    hello is read by ``greet``, so the processes of a pass import their frameworks at once.
    ``instance`` counts the processes of this entrant the pass restarted before this one."""
    logs.mkdir(parents=True, exist_ok=True)
    stderr_path = logs / f"contender-{slug(entrant)}-p{index}{f'-{instance}' if instance else ''}.stderr.log"
    root = str(Path(__file__).resolve().parents[2])
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)}
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([entrant.python, "-X", "faulthandler", "-m", "normbench.bench.contender", entrant.ref],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                cwd=os.getcwd())
    return Process(entrant, proc, stderr_path, instance=instance)


def greet(process: Process) -> Process:
    """Its hello (framework version, allocator), or why it has none (``process.lost``)."""
    try:
        process.hello = process.read(PREPARE_TIMEOUT_S)
        if "error" in process.hello:
            process.fail(process.hello["error"])
        rss, pss = status_mb(process.proc.pid, "VmRSS"), proportional_mb(process.proc.pid)
        process.shared_mb = max(rss - pss, 0.0) if rss is not None and pss is not None else 0.0
        process.started_mb = rss
    except ContenderLost:
        pass
    return process
