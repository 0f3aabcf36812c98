"""Head-to-head timing: every adapter's process alive at once, taking turns on the same case.

For each case, the conductor asks every contender process (``bench.contender``) to prepare it
(building, compiling and warming up happen there, before any timing), then runs rounds: in each
round every contender times one short block, in an order shuffled per round, each once the
process before it has gone quiet (a framework's worker threads spin for a while after a call and
would slow the next contender's block: ``quiet``). The machine's speed moves by up to 4x over
minutes here, but within one round it is the same for all, so the ratios of the contenders'
medians (``head_to_head``) hold where medians taken minutes apart do not.

Process isolation stays: a contender that crashes or stops answering (``timeout_s`` per request)
costs only its own rows. Several processes per adapter run one after another, each over every
case (``processes``), and the intervals cover them.

Who races is ``entrants``; a contender process's pipe, ``processes``; which of them fit in memory
at once, ``heat_plan``.
"""

from __future__ import annotations

import functools
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..adapters import compile_cache
from ..ops.case import BenchCase
from . import bandwidth, harness, head_to_head, quiet
from .contender import status_mb
from .drawn import Drawn
from .entrants import Entrant, slug
from .heat_plan import HeatPlan, each, held, kept, together_mb
from .processes import PREPARE_TIMEOUT_S, ContenderLost, Process, ask_all, greet, launch

ROUNDS = 8  # rounds per process and case
PROCESSES = 6  # passes, each with fresh processes: torch against itself here, 2 x 15 rounds gave 2 false
# verdicts in 21 default cases (a process's own bias, up to ~20 %, that two passes cannot sample); 6 x 8, none
WARM_ROUNDS = 2  # untimed rounds at the start of each block
BLOCK_TIMEOUT_S = 60.0


@dataclass
class Timings:
    """One entrant on one case: its blocks ([process, round] of block medians) and what its
    processes said, or why it has none. Where the case ran in heats (``heats`` > 1 in some pass),
    ``relative`` holds its blocks over the anchor's of the same round and ``versus`` over the median
    of the rest of its heat, per pass: they are what its standing is read from."""

    entrant: Entrant
    blocks: list[list[float]] = field(default_factory=list)
    samples: list[list[float]] = field(default_factory=list)  # every timed round's per-call seconds, per process
    ready: list[dict] = field(default_factory=list)
    faults_per_call: list[float] = field(default_factory=list)
    busy_after_s: list[float] = field(default_factory=list)  # how long its threads ran on after each block
    relative: list[list[float]] = field(default_factory=list)
    versus: list[list[float]] = field(default_factory=list)
    anchor: str | None = None
    heats: int = 1  # the most heats a pass of this case ran in
    skip: str | None = None
    error: str | None = None
    traceback: str | None = None


def _fields(case: BenchCase) -> dict:
    return {"op": case.op, "mode": case.mode, "shape": list(case.shape), "dtype": case.dtype,
            "group": case.group, "options": [list(o) for o in case.options]}


def _current(started: list[Process], p: Process) -> Process:
    """``p``, or the process that replaced it in ``started`` (``Conductor._restart``)."""
    return next((q for q in started if q.entrant.name == p.entrant.name), p)


def _live(processes: list[Process], results: dict[str, Timings]) -> list[Process]:
    """The processes still in the race for this case."""
    live = []
    for p in processes:
        out = results.get(p.entrant.name)
        if out is None:  # not in this case's field
            continue
        if p.lost:  # died on an earlier case (or on starting): every later case is an error of its own
            out.error = out.error or f"not timed: its process was lost earlier ({p.lost})"
        if not (out.skip or out.error):
            live.append(p)
    return live


def _answered(p: Process, said: dict, results: dict[str, Timings]) -> bool:
    """Records what a contender said to ``prepare``; whether it is ready to race."""
    out = results[p.entrant.name]
    if "skip" in said:
        out.skip = said["skip"]
    elif "error" in said:
        out.error, out.traceback = said["error"], said.get("traceback")
    else:
        out.ready.append(said)
        return True
    return False


def _prepare(processes: list[Process], case: BenchCase, results: dict[str, Timings], together: bool,
             inputs: dict[str, str], settle: bool = False) -> list[tuple[Process, dict]]:
    """Asks each to prepare ``case`` from the ``inputs`` drawn for it: one after another, so each first call
    (the compile, where a framework compiles) is timed alone; ``together``, all at once (a later pass, whose
    first calls are not reported); with ``settle``, each then runs untimed blocks until it stops growing
    (``Contender.settle``). The ones ready to race, with what each said."""
    asked, said_by = [], {}
    for p in processes:
        try:
            p.send({"prepare": _fields(case), "inputs": inputs, "settle": settle})
            if not together:  # and its first calls not slowed by the last one's spinning threads
                said_by[p.entrant.name] = p.read(PREPARE_TIMEOUT_S)
                quiet.wait(p.proc.pid)
            asked.append(p)
        except ContenderLost as exc:
            results[p.entrant.name].error = str(exc)
    racing = []
    for p in asked:
        try:
            said = said_by.get(p.entrant.name) or p.read(PREPARE_TIMEOUT_S)
        except ContenderLost as exc:
            results[p.entrant.name].error = str(exc)
            continue
        if _answered(p, said, results):
            racing.append((p, said))
    return racing


def _rounds(racing: list[tuple[Process, dict]], rounds: int, rng: random.Random, results: dict[str, Timings],
            watch: Callable[[], None], quietly: Callable[[], None] = lambda: None,
            ) -> list[dict[str, tuple[float, list[float], float]]]:
    """``rounds`` shuffled rounds of blocks: per round, each contender's block median, its per-call
    samples and page faults per call. Each block starts once the process before it is quiet
    (``quiet.wait``); the first, once every contender is (they may have prepared side by side), and
    after ``quietly`` (the case's copy, ``Conductor._copy``), which wants the machine as quiet."""
    for p, _ in racing:
        quiet.wait(p.proc.pid)
    quietly()
    out = []
    for _ in range(rounds):
        order = list(racing)
        rng.shuffle(order)
        got_round = {}
        for p, said in order:
            if p.lost:
                continue
            try:
                got = p.ask({"block": said["rounds"], "warm": WARM_ROUNDS}, BLOCK_TIMEOUT_S)
            except ContenderLost as exc:
                results[p.entrant.name].error = str(exc)
                continue
            busy = quiet.wait(p.proc.pid)
            if busy is not None:
                results[p.entrant.name].busy_after_s.append(busy)
            got_round[p.entrant.name] = (float(np.median(got["samples_s"])), got["samples_s"], got["faults_per_call"])
        out.append(got_round)
    watch()  # each process grows over its rounds: the most a heat holds is at its end
    return out


def _paired(heat: list[dict], anchor: str) -> dict[str, tuple[list[float], list[float]]]:
    """Each contender's blocks of one heat over the anchor's of the same round, and over the median of
    the rest of the heat in that round."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for got in heat:
        for name, (block, _, _) in got.items():
            rel, versus = out.setdefault(name, ([], []))
            if anchor in got:
                rel.append(block / got[anchor][0])
            others = [b for n, (b, _, _) in got.items() if n != name]
            if others:
                versus.append(block / float(np.median(others)))
    return out


class Conductor:
    """Times cases head to head: ``processes`` passes, each with a fresh process per entrant, all
    alive at once. The passes run in turn over every case, so a slow spell of the machine spoils
    one pass, not one entrant. ``processes_seen`` says, per process, its peak resident memory
    and what it said on starting; ``peak_together_mb``, the most the processes of one pass held
    at once (the sum of their proportional set sizes, read once the field has prepared a case and at
    the end of each heat's rounds);
    ``recompiles``, each entrant's recompile count over sequence lengths (its first process's).

    With a memory budget (``budget_mb``), a case that the whole field cannot hold at once runs in
    heats (``HeatPlan``): the anchor and as many others as fit, then the anchor and the next ones;
    the anchor keeps the case prepared throughout, and every heat's ratios are read against it
    (``head_to_head.chained_standings``)."""

    def __init__(self, entrants: list[Entrant], logs: Path, processes: int = PROCESSES, rounds: int = ROUNDS,
                 env: dict[str, str] | None = None, seed: int = 0,
                 progress: Callable[[str], None] = lambda line: None, recompiles: bool = True,
                 budget_mb: float | None = None, copy_threads: int | None = None) -> None:
        self.entrants, self.logs, self.processes, self.rounds = entrants, logs, processes, rounds
        self.copy_threads = copy_threads
        self.copies: dict[str, list[float]] = {}  # case -> its copy rates (GB/s), one before each pass's rounds
        self.env = dict(os.environ if env is None else env)
        self.rng = random.Random(seed)
        self.progress = progress
        self.count_recompiles = recompiles
        self.plan = HeatPlan(budget_mb) if budget_mb else None
        self.anchors: dict[str, str] = {}  # case -> its anchor, the same in every pass
        self.processes_seen: list[dict] = []
        self.hellos: dict[str, dict] = {}  # what each entrant's first process said: its framework version, allocator
        self.together_mb: dict[int, float] = {}  # pass -> the most its processes held at once
        self.case_mb: dict[str, float] = {}  # case -> the most a pass's processes held at once on it
        self.recompiles: dict[str, dict] = {}  # entrant -> a record row, or {"error": why}
        self.drawn = Drawn()  # where each case's inputs wait for the contenders
        self.environs: dict[str, dict[str, str]] = {}  # entrant -> its processes' environment
        # wall time over every pass and case, by phase: starting the processes (importing their frameworks),
        # preparing cases, timed rounds, releasing cases, and the processes' ends
        self.seconds = {"start": 0.0, "prepare": 0.0, "rounds": 0.0, "release": 0.0, "end": 0.0}

    @property
    def peak_together_mb(self) -> float | None:
        return max(self.together_mb.values(), default=None)

    def _watch(self, index: int, case: str, started: list[Process]) -> float | None:
        """What the pass holds together now (``together_mb``), kept as its most and its case's most."""
        now = together_mb([p.proc.pid for p in started if p.proc.poll() is None])
        if now is not None:
            self.together_mb[index] = max(self.together_mb.get(index, 0.0), now)
            self.case_mb[case] = max(self.case_mb.get(case, 0.0), now)
        return now

    def run(self, cases: list[BenchCase]) -> Iterator[tuple[BenchCase, dict[str, Timings]]]:
        """Each case with every entrant's timings, once its last pass is done."""
        results = {case.id: {e.name: Timings(e) for e in self.entrants if e.takes(case)} for case in cases}
        begun = time.monotonic()
        # Each entrant's compile caches (``adapters.compile_cache``: JAX's, XLA's, Inductor's) start empty, beside
        # the logs in the results folder, and are gone at the end: the first pass's first calls are real compiles, not
        # reads of what an earlier run left (Inductor's default cache in /tmp made a LayerNorm's "first call" 0.1 s
        # where compiling takes seconds); later passes of the same entrant reuse them.
        caches = self.logs.parent / "compile-caches"
        try:
            yield from self._passes(cases, results, begun, caches)
        finally:
            shutil.rmtree(caches, ignore_errors=True)
            self.drawn.close()

    def _passes(self, cases: list[BenchCase], results: dict[str, dict[str, Timings]], begun: float,
                caches: Path) -> Iterator[tuple[BenchCase, dict[str, Timings]]]:
        for index in range(self.processes):
            began = time.monotonic()
            self.environs = {e.name: {**self.env, **compile_cache.environ(self.env, caches / slug(e), keep=False)}
                             for e in self.entrants}
            started = [greet(p) for p in [launch(e, self.logs, index, self.environs[e.name]) for e in self.entrants]]
            self.seconds["start"] += time.monotonic() - began
            for p in started:
                if not p.lost:
                    self.hellos.setdefault(p.entrant.name, p.hello)
            for k, case in enumerate(cases):
                self.progress(f"{time.monotonic() - begun:6.0f} s  pass {index + 1}/{self.processes}, "
                              f"case {k + 1}/{len(cases)}: {case.id}")
                self._race(index, case, started, results[case.id])
                if index == self.processes - 1:
                    yield case, results[case.id]
            if index == 0 and self.count_recompiles:
                self._recompiles(started)
            ended = time.monotonic()
            peaks = ask_all([p for p in started if not p.lost], {"peak": True}, 30)
            for p in started:
                p.close()  # they exit side by side
            for p in started:
                p.wait()
                self._seen(p, index, peaks.get(p.entrant.name, {}).get("peak_rss_mb"))
            self.seconds["end"] += time.monotonic() - ended

    def _seen(self, p: Process, index: int, peak: float | None, **more) -> None:
        self.processes_seen.append({"adapter": p.entrant.name, "process": index, "peak_rss_mb": peak,
                                    "pass_together_mb": self.together_mb.get(index),
                                    **{k: v for k, v in p.hello.items() if k in ("version", "python", "executable")},
                                    **({"instance": p.instance} if p.instance else {}),
                                    **({"lost": p.lost} if p.lost else {}), **more})

    def _race(self, index: int, case: BenchCase, started: list[Process], results: dict[str, Timings]) -> None:
        """One pass of ``case``: prepare, ``rounds`` shuffled rounds, release; in heats where the
        field cannot hold the case at once. The first pass's contenders prepare one at a time, so each
        first call (the compile, where a framework compiles) is timed alone."""
        live = _live(started, results)
        names = [p.entrant.name for p in live]
        order = (self.plan.order(case.id, names, self.anchors.get(case.id), f"{case.dtype} {case.mode}", each(live))
                 if self.plan else names)
        by_name = {p.entrant.name: p for p in live}
        before = {n: status_mb(by_name[n].proc.pid, "VmRSS") for n in names}  # what each needs: what it holds more
        watch = functools.partial(self._watch, index, case.id, started)
        begun = time.monotonic()
        if self.plan is None or (index > 0 and self.plan.fits(case.id, each(started), before, names)):
            racing = _prepare([by_name[n] for n in order], case, results, index > 0, self.drawn.write(case))
            self.drawn.drop()
            watch()  # every contender holds the case now
            prepared = time.monotonic()
            heats = [_rounds(racing, self.rounds, self.rng, results, watch, lambda: self._copy(case))] if racing else []
            self.seconds["prepare"] += prepared - begun
            self.seconds["rounds"] += time.monotonic() - prepared
            self._learn(case, [p for p, _ in racing], before)
            self._release([p for p, _ in racing], results)
            anchor = racing[0][0].entrant.name if racing else None
        else:
            heats, anchor = self._heats(index, case, [by_name[n] for n in order], results, watch, started, before)
            self.drawn.drop()
        if anchor:
            self.anchors.setdefault(case.id, anchor)
        # a pass whose anchor is not the case's (it skipped or was lost) cannot be chained with the others
        self._keep(heats, anchor if anchor == self.anchors.get(case.id) else None, results)

    def _copy(self, case: BenchCase) -> None:
        """A plain copy of the case's working set, timed in this process just before a pass's rounds of it
        (``bandwidth.copy_gbps``): the roofline the case is judged against, taken in the same minutes as its
        blocks. A rate measured once at the start of the run, at the capacity sysfs claims for the cache level
        (this VM's L3: 480 MiB, so it was main memory's), put cases of 8-32 MB at 100-152 % of it."""
        moved = harness.bytes_moved(case)
        if self.copy_threads and moved <= bandwidth.OWN_COPY_MAX_BYTES:
            self.copies.setdefault(case.id, []).append(bandwidth.copy_gbps(moved, self.copy_threads))

    def _heats(self, index: int, case: BenchCase, queue: list[Process], results: dict[str, Timings],
               watch: Callable[[], float | None], started: list[Process],
               before: dict[str, float | None]) -> tuple[list[list[dict]], str | None]:
        """The contenders prepare one at a time; one joins the heat while the pass, with what it is
        predicted to take on, stays within the budget. Each settles as it prepares (``_prepare``), so what it
        holds then is what it will hold over its rounds. The first to prepare is the anchor and stays in
        every heat. A prediction that fell short sends the last one to the next heat, once. A heat has
        at least two, whatever they take on: where two would go over, idle processes that keep memory
        from earlier cases are restarted to make room (``_make_room``)."""
        heats: list[list[dict]] = []
        heat: list[tuple[Process, dict]] = []
        moved: set[str] = set()

        def race() -> None:
            if heats or queue:  # not a field that fit at once
                self.progress(f"  heat {len(heats) + 1} of {case.id}: {', '.join(p.entrant.name for p, _ in heat)};"
                              f" the pass holds {held(started) or 0:,.0f} MB")
            # the drawn inputs stay for the next heat's contenders (``_race`` drops them after the last):
            # drawing RMSNorm 4096 × 16384's again took 1.9 s, and its 12 heats a run ~19 s of redrawing
            began = time.monotonic()
            heats.append(_rounds(heat, self.rounds, self.rng, results, watch, lambda: self._copy(case)))
            self.seconds["rounds"] += time.monotonic() - began
            self._learn(case, [p for p, _ in heat], before)
            self._release([p for p, _ in heat[1:]], results)
            del heat[1:]

        queue = list(queue)
        while queue:
            p, name = queue[0], queue[0].entrant.name
            budget = self.plan.budget_mb
            members = [q.entrant.name for q, _ in heat]
            if len(heat) >= 2 and (self.plan.projected(case.id, each(started), before, [*members, name])
                                   or 0.0) > budget:
                race()
                continue
            if len(heat) < 2:
                self._make_room(index, case, started, [*members, name], set(members), before)
                queue = [_current(started, q) for q in queue]
                p = queue[0]
            queue.pop(0)
            began = time.monotonic()
            ready = _prepare([p], case, results, False, self.drawn.write(case), settle=True)
            self.seconds["prepare"] += time.monotonic() - began
            if not ready:
                continue
            self._learn(case, [p], before)
            now = held(started)
            if len(heat) >= 2 and now is not None and now > budget and name not in moved:
                moved.add(name)
                self._release([p], results)
                queue.insert(0, p)
                race()
                continue
            if len(heat) < 2 and now is not None and now > budget:  # it took on more than predicted
                self._make_room(index, case, started, [*members, name], {*members, name}, before)
                queue = [_current(started, q) for q in queue]
            heat.extend(ready)
        anchor = heat[0][0].entrant.name if heat else None
        if len(heat) >= 2 or (heat and not heats):
            race()
        self._release([p for p, _ in heat], results)
        return heats, anchor

    def _make_room(self, index: int, case: BenchCase, started: list[Process], members: list[str],
                   holding: set[str], before: dict[str, float | None]) -> None:
        """While ``members`` would take the pass over the budget on ``case``, restart the process (not one
        ``holding`` the case) that keeps the most memory from earlier cases (``heat_plan.kept``)."""
        while (self.plan.projected(case.id, each(started), before, members) or 0.0) > self.plan.budget_mb:
            keeping = kept(started, holding)
            if not keeping:
                return
            name = max(keeping, key=keeping.get)
            i = next(i for i, p in enumerate(started) if p.entrant.name == name)
            self.progress(f"  restarting {name}: it keeps {keeping[name]:,.0f} MB from earlier cases, and "
                          f"{', '.join(members)} on {case.id} would take the pass over its budget")
            started[i] = self._restart(index, started[i], case)
            before[name] = status_mb(started[i].proc.pid, "VmRSS")

    def _restart(self, index: int, p: Process, case: BenchCase) -> Process:
        """A fresh process of ``p``'s entrant in its place; ``p``'s peak is recorded as a process of this pass."""
        began = time.monotonic()
        peak = ask_all([p], {"peak": True}, 30).get(p.entrant.name, {}).get("peak_rss_mb")
        p.close()
        p.wait()
        self._seen(p, index, peak, retired_on=case.id)
        fresh = greet(launch(p.entrant, self.logs, index, self.environs[p.entrant.name], p.instance + 1))
        self.seconds["start"] += time.monotonic() - began
        return fresh

    def _release(self, processes: list[Process], results: dict[str, Timings]) -> None:
        """Each drops its case, side by side (a collection and ``malloc_trim`` in a TensorFlow process take
        a while)."""
        began = time.monotonic()
        for name, said in ask_all([p for p in processes if not p.lost], {"release": True}, BLOCK_TIMEOUT_S).items():
            if "error" in said:
                results[name].error = said["error"]
        self.seconds["release"] += time.monotonic() - began

    def _learn(self, case: BenchCase, processes: list[Process], before: dict[str, float | None]) -> None:
        """What each of these processes holds now, over what it held before the case: its need, so far."""
        if self.plan:
            for p in processes:
                self.plan.learn(case.id, p.entrant.name, before.get(p.entrant.name), status_mb(p.proc.pid, "VmRSS"))

    def _keep(self, heats: list[list[dict]], anchor: str | None, results: dict[str, Timings]) -> None:
        """Each entrant's blocks of this pass, and its blocks against the anchor and against its heat."""
        paired: dict[str, tuple[list[float], list[float]]] = {}
        for heat in heats:
            for name, (rel, versus) in _paired(heat, anchor).items():
                paired.setdefault(name, ([], []))[0].extend(rel)
                # the anchor meets other contenders in each heat: each heat's own level is not its spread
                paired[name][1].extend((np.array(versus) / np.median(versus)).tolist() if versus else [])
        for name, out in results.items():
            got = [g[name] for heat in heats for g in heat if name in g]
            if out.error or not got:
                continue
            out.blocks.append([b for b, _, _ in got])
            out.samples.append([s for _, samples, _ in got for s in samples])
            out.faults_per_call.append(float(np.median([f for _, _, f in got])))
            out.relative.append(paired.get(name, ([], []))[0])
            out.versus.append(paired.get(name, ([], []))[1])
            out.anchor, out.heats = anchor, max(out.heats, len(heats))
            if self.plan and len(out.versus[-1]) > 3:
                self.plan.spreads.setdefault(name, []).append(head_to_head.spread(np.array(out.versus[-1])))

    def _recompiles(self, started: list[Process]) -> None:
        """Asked of the first pass's processes once their cases are timed (it builds layers of its own),
        all at once: it counts traces, not time."""
        said = ask_all([p for p in started if not p.lost], {"recompiles": True}, PREPARE_TIMEOUT_S)
        for p in started:
            self.recompiles[p.entrant.name] = said.get(p.entrant.name) or {"error": p.lost or "no answer"}


def standings(outcomes: dict[str, Timings]) -> dict[str, dict]:
    """``head_to_head.standings`` over the entrants that have blocks; ``chained_standings`` where
    the case ran in heats."""
    timed = {name: head_to_head.blocks_array(o.blocks) for name, o in outcomes.items() if o.blocks and o.blocks[0]}
    if not timed:
        return {}
    heats = max(o.heats for o in outcomes.values())
    anchor = next((o.anchor for o in outcomes.values() if o.anchor), None)
    if heats < 2 or anchor not in timed:
        return head_to_head.standings(timed)
    table = head_to_head.chained_standings(timed, {n: outcomes[n].relative for n in timed}, anchor,
                                           {n: outcomes[n].versus for n in timed})
    return {name: {**row, "heats": heats} for name, row in table.items()}
