"""Head-to-head timing: every adapter's process alive at once, taking turns on the same case.

For each case, the conductor asks every contender process (``bench.contender``) to prepare it
(building, compiling and warming up happen there, before any timing), then runs rounds: in each
round every contender times one short block, in an order shuffled per round, after a short
pause (a framework's worker threads spin for a while after a call and would slow the next
contender's block). The machine's speed moves by up to 4x over minutes here, but within one round
it is the same for all, so the ratios of the contenders' medians (``head_to_head``) hold where
medians taken minutes apart do not.

Process isolation stays: a contender that crashes or stops answering (``timeout_s`` per request)
costs only its own rows. Several processes per adapter run one after another, each over every
case (``processes``), and the intervals cover them.
"""

from __future__ import annotations

import functools
import json
import os
import random
import select
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..adapters.failures import gist
from ..ops.case import BenchCase
from . import head_to_head
from .contender import status_mb

ROUNDS = 8  # rounds per process and case
PROCESSES = 6  # passes, each with fresh processes: torch against itself here, 2 x 15 rounds gave 2 false
# verdicts in 21 default cases (a process's own bias, up to ~20 %, that two passes cannot sample); 6 x 8, none
WARM_ROUNDS = 2  # untimed rounds at the start of each block
PAUSE_S = 0.01  # before each block
PREPARE_TIMEOUT_S = 300.0  # building and compiling the largest case, on a busy machine
BLOCK_TIMEOUT_S = 60.0


class ContenderLost(RuntimeError):
    """A contender process died or stopped answering."""


@dataclass(frozen=True)
class Entrant:
    """An adapter as named (``torch``, ``module:Class``) and the interpreter its processes run under;
    ``label`` is its name in records and reports (``torch@venv-a`` where interpreters differ)."""

    ref: str
    python: str = sys.executable
    label: str = ""

    @property
    def name(self) -> str:
        return self.label or self.ref


def parse_entrants(names: list[str], adapter_name: Callable[[str], str]) -> list[Entrant]:
    """``adapter`` or ``adapter@/path/to/python`` for each name. Two entrants of one adapter from
    different interpreters are labelled by the folder of each interpreter's environment (the
    venv's name), or by the whole path where those folders are alike."""
    parsed = []
    for name in names:
        ref, _, python = name.partition("@")
        if python and not (os.path.isfile(python) and os.access(python, os.X_OK)):
            raise ValueError(f"{name}: {python} is not an executable Python interpreter")
        parsed.append((ref, python or sys.executable, adapter_name(ref)))
    out = []
    for ref, python, base in parsed:
        others = [p for r, p, b in parsed if b == base]
        if len(others) > 1:
            if len(set(others)) < len(others):
                raise ValueError(f"{base} is named twice with the same interpreter ({python})")
            envs = [_environment_name(p) for p in others]
            suffix = _environment_name(python) if len(set(envs)) == len(envs) else python
            out.append(Entrant(ref, python, f"{base}@{suffix}"))
        else:
            label = base if python == sys.executable else f"{base}@{_environment_name(python)}"
            out.append(Entrant(ref, python, label))
    return out


def _environment_name(python: str) -> str:
    path = Path(python).absolute()
    return path.parent.parent.name if path.parent.name == "bin" else str(path)


@dataclass
class Process:
    """One contender process and what it said."""

    entrant: Entrant
    proc: subprocess.Popen
    stderr_path: Path
    hello: dict = field(default_factory=dict)
    lost: str | None = None

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

    def close(self) -> float | None:
        """Its peak resident memory (MB), then it exits."""
        peak = None
        if not self.lost:
            try:
                peak = self.ask({"peak": True}, 30).get("peak_rss_mb")
            except ContenderLost:
                pass
        try:
            self.proc.stdin.close()
            self.proc.wait(30)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
        return peak


def launch(entrant: Entrant, logs: Path, index: int, env: dict[str, str]) -> Process:
    """A contender process of ``entrant`` under its interpreter, importing this normbench; its
    hello is read by ``greet``, so the processes of a pass import their frameworks at once."""
    logs.mkdir(parents=True, exist_ok=True)
    slug = entrant.name.replace("/", "_").replace("[", "-").replace("]", "").replace("@", "-at-")
    stderr_path = logs / f"contender-{slug}-p{index}.stderr.log"
    root = str(Path(__file__).resolve().parents[2])
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)}
    with open(stderr_path, "w") as err:
        proc = subprocess.Popen([entrant.python, "-X", "faulthandler", "-m", "normbench.bench.contender", entrant.ref],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, env=env,
                                cwd=os.getcwd())
    return Process(entrant, proc, stderr_path)


def greet(process: Process) -> Process:
    """Its hello (framework version, allocator), or why it has none (``process.lost``)."""
    try:
        process.hello = process.read(PREPARE_TIMEOUT_S)
        if "error" in process.hello:
            process.fail(process.hello["error"])
    except ContenderLost:
        pass
    return process


def resident_mb(pids: list[int]) -> float | None:
    """The resident memory of these processes together now (Linux), or None where it cannot be read."""
    held = [status_mb(pid, "VmRSS") for pid in pids]
    return None if None in held else sum(held)


@dataclass
class Timings:
    """One entrant on one case: its blocks ([process, round] of block medians) and what its
    processes said, or why it has none."""

    entrant: Entrant
    blocks: list[list[float]] = field(default_factory=list)
    samples: list[list[float]] = field(default_factory=list)  # every timed round's per-call seconds, per process
    ready: list[dict] = field(default_factory=list)
    faults_per_call: list[float] = field(default_factory=list)
    skip: str | None = None
    error: str | None = None
    traceback: str | None = None


def _race(processes: list[Process], case: BenchCase, rounds: int, rng: random.Random,
          results: dict[str, Timings], together: bool = False,
          watch: Callable[[], None] = lambda: None) -> tuple[float, float]:
    """One process of each entrant on ``case``: prepare, ``rounds`` shuffled rounds, release. The
    contenders prepare one after another, so each first call (the compile, where a framework
    compiles) is timed alone; ``together``, they prepare at once (a later pass, whose first calls
    are not reported). The seconds it took preparing, then in rounds."""
    begun = time.monotonic()
    fields = {"op": case.op, "mode": case.mode, "shape": list(case.shape), "dtype": case.dtype,
              "group": case.group, "options": [list(o) for o in case.options]}
    asked, said_by = [], {}
    for p in processes:
        out = results[p.entrant.name]
        if p.lost:  # died on an earlier case (or on starting): every later case is an error of its own
            out.error = out.error or f"not timed: its process was lost earlier ({p.lost})"
        if out.skip or out.error:
            continue
        try:
            p.send({"prepare": fields})
            if not together:
                said_by[p.entrant.name] = p.read(PREPARE_TIMEOUT_S)
            asked.append(p)
        except ContenderLost as exc:
            out.error = str(exc)
    racing = []
    for p in asked:
        out = results[p.entrant.name]
        try:
            said = said_by.get(p.entrant.name) or p.read(PREPARE_TIMEOUT_S)
        except ContenderLost as exc:
            out.error = str(exc)
            continue
        if "skip" in said:
            out.skip = said["skip"]
        elif "error" in said:
            out.error, out.traceback = said["error"], said.get("traceback")
        else:
            out.ready.append(said)
            racing.append((p, said))
    watch()  # every contender holds the case now
    prepared = time.monotonic()
    blocks = {p.entrant.name: [] for p, _ in racing}
    samples = {p.entrant.name: [] for p, _ in racing}
    faults = {p.entrant.name: [] for p, _ in racing}
    for _ in range(rounds):
        order = list(racing)
        rng.shuffle(order)
        for p, said in order:
            if p.lost:
                continue
            time.sleep(PAUSE_S)
            try:
                got = p.ask({"block": said["rounds"], "warm": WARM_ROUNDS}, BLOCK_TIMEOUT_S)
            except ContenderLost as exc:
                results[p.entrant.name].error = str(exc)
                continue
            blocks[p.entrant.name].append(float(np.median(got["samples_s"])))
            samples[p.entrant.name].extend(got["samples_s"])
            faults[p.entrant.name].append(got["faults_per_call"])
        watch()
    for p, _ in racing:
        out = results[p.entrant.name]
        if not p.lost:
            try:
                p.ask({"release": True}, BLOCK_TIMEOUT_S)
            except ContenderLost as exc:
                out.error = str(exc)
        if not out.error:
            out.blocks.append(blocks[p.entrant.name])
            out.samples.append(samples[p.entrant.name])
            out.faults_per_call.append(float(np.median(faults[p.entrant.name])))
    return prepared - begun, time.monotonic() - prepared


class Conductor:
    """Times cases head to head: ``processes`` passes, each with a fresh process per entrant, all
    alive at once. The passes run in turn over every case, so a slow spell of the machine spoils
    one pass, not one entrant. ``processes_seen`` says, per process, its peak resident memory
    and what it said on starting; ``peak_together_mb``, the most the processes of one pass held
    at once (sampled once every contender has prepared a case, and after every round);
    ``recompiles``, each entrant's recompile count over sequence lengths (its first process's)."""

    def __init__(self, entrants: list[Entrant], logs: Path, processes: int = PROCESSES, rounds: int = ROUNDS,
                 env: dict[str, str] | None = None, seed: int = 0,
                 progress: Callable[[str], None] = lambda line: None, recompiles: bool = True) -> None:
        self.entrants, self.logs, self.processes, self.rounds = entrants, logs, processes, rounds
        self.env = dict(os.environ if env is None else env)
        self.rng = random.Random(seed)
        self.progress = progress
        self.count_recompiles = recompiles
        self.processes_seen: list[dict] = []
        self.hellos: dict[str, dict] = {}  # what each entrant's first process said: its framework version, allocator
        self.together_mb: dict[int, float] = {}  # pass -> the most its processes held at once
        self.case_mb: dict[str, float] = {}  # case -> the most a pass's processes held at once on it
        self.recompiles: dict[str, dict] = {}  # entrant -> a record row, or {"error": why}
        self.seconds = {"prepare": 0.0, "rounds": 0.0}  # wall time over every pass and case, by phase

    @property
    def peak_together_mb(self) -> float | None:
        return max(self.together_mb.values(), default=None)

    def _watch(self, index: int, case: str, started: list[Process]) -> None:
        now = resident_mb([p.proc.pid for p in started if p.proc.poll() is None])
        if now is not None:
            self.together_mb[index] = max(self.together_mb.get(index, 0.0), now)
            self.case_mb[case] = max(self.case_mb.get(case, 0.0), now)

    def run(self, cases: list[BenchCase]) -> Iterator[tuple[BenchCase, dict[str, Timings]]]:
        """Each case with every entrant's timings, once its last pass is done."""
        results = {case.id: {e.name: Timings(e) for e in self.entrants} for case in cases}
        begun = time.monotonic()
        for index in range(self.processes):
            started = [greet(p) for p in [launch(e, self.logs, index, self.env) for e in self.entrants]]
            for p in started:
                if not p.lost:
                    self.hellos.setdefault(p.entrant.name, p.hello)
            for k, case in enumerate(cases):
                self.progress(f"{time.monotonic() - begun:6.0f} s  pass {index + 1}/{self.processes}, "
                              f"case {k + 1}/{len(cases)}: {case.id}")
                spent = _race(started, case, self.rounds, self.rng, results[case.id], together=index > 0,
                              watch=functools.partial(self._watch, index, case.id, started))
                for phase, s in zip(self.seconds, spent, strict=True):
                    self.seconds[phase] += s
                if index == self.processes - 1:
                    yield case, results[case.id]
            if index == 0 and self.count_recompiles:
                self._recompiles(started)
            for p in started:
                peak = p.close()
                self.processes_seen.append({"adapter": p.entrant.name, "process": index, "peak_rss_mb": peak,
                                            "pass_together_mb": self.together_mb.get(index),
                                            **{k: v for k, v in p.hello.items()
                                               if k in ("version", "python", "executable")},
                                            **({"lost": p.lost} if p.lost else {})})

    def _recompiles(self, started: list[Process]) -> None:
        """Asked of the first pass's processes once their cases are timed (it builds layers of its own)."""
        for p in started:
            try:
                said = p.ask({"recompiles": True}, PREPARE_TIMEOUT_S)
            except ContenderLost as exc:
                said = {"error": str(exc)}
            self.recompiles[p.entrant.name] = said


def standings(outcomes: dict[str, Timings]) -> dict[str, dict]:
    """``head_to_head.standings`` over the entrants that have blocks."""
    timed = {name: head_to_head.blocks_array(o.blocks) for name, o in outcomes.items() if o.blocks and o.blocks[0]}
    return head_to_head.standings(timed) if timed else {}
