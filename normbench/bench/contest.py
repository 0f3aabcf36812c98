"""The records of a head-to-head pass (``bench.conductor``): one timing per case and entrant, with
its ratio to the fastest and that ratio's interval, and one peak-memory record per process."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ..adapters import registry
from ..adapters.base import Adapter, Unsupported
from ..adapters.failures import raised
from ..ops.case import BenchCase
from ..results import records
from ..results.kinds import Check, Outcome, Suite
from ..results.records import Record
from . import bandwidth, harness, threads
from .conductor import Timings, standings
from .entrants import Entrant


@functools.cache
def _adapter(ref: str) -> Adapter:
    """The adapter an entrant names, loaded once (not per case): for its layout and its skips."""
    return registry.get(ref)


class _Named:
    """An entrant as ``records.build`` reads an adapter: its label, and the version its own
    interpreter reported (another venv's torch is not this one's)."""

    def __init__(self, entrant: Entrant, version: str | None) -> None:
        self.name = entrant.name
        self._version = version
        self.mode = _adapter(entrant.ref).mode  # its execution mode, resolved here without its framework

    def version(self) -> str:
        return self._version or "?"


def case_records(case: BenchCase, timings: dict[str, Timings], levels: list[dict],
                 hellos: dict[str, dict], field_mb: float | None = None, field: str | None = None,
                 copies: list[float] | None = None) -> list[Record]:
    """Every entrant's record of one case (``levels``: ``bandwidth.measure_levels``' copy rates per cache
    level and main memory; ``hellos``: what each entrant's process said on starting; ``field_mb``: the
    most the processes of a pass held at once on this case; ``field``: the name of a side field, see
    ``bench --field``; ``copies``: the rates of a copy of its working set timed before its rounds,
    ``Conductor._copy``, which judge it where there are any)."""
    table = standings(timings)
    out = []
    for name, t in timings.items():
        entrant = t.entrant
        adapter = _adapter(entrant.ref)
        spec, shape = harness.layout_shape(adapter, case)
        about = case.describe(spec, shape)
        hello = hellos.get(name, {})
        who = _Named(entrant, hello.get("version") or (adapter.version() if entrant.label == entrant.ref else None))
        check = case.mode
        if t.skip:
            out.append(records.build(who, Suite.SPEED, check, about, **raised(adapter, Unsupported(t.skip))))
            continue
        if t.error and not t.blocks:  # said by its process (or of it): no exception object here
            out.append(records.build(who, Suite.SPEED, check, about, outcome=Outcome.ERROR, message=t.error,
                                     facts={"traceback": t.traceback} if t.traceback else {}))
            continue
        standing = table.get(name)
        if standing is None:  # run in heats, and never in one with the anchor (it was lost)
            out.append(records.build(who, Suite.SPEED, check, about, outcome=Outcome.ERROR,
                                     message=t.error or "not paired with the anchor of its heats"))
            continue
        out.append(records.build(who, Suite.SPEED, check, about, outcome=Outcome.PASS,
                                 message=_message(name, standing),
                                 timing={**_timing(case, t, standing, levels, hello, field, copies),
                                         "field_resident_mb": field_mb}))
    return out


def _timing(case: BenchCase, t: Timings, standing: dict, levels: list[dict], hello: dict,
            field: str | None = None, copies: list[float] | None = None) -> dict[str, Any]:
    blocks = np.array([b for p in t.blocks for b in p])
    median = standing["median_s"]
    first = t.ready[0]["first_call_s"]  # the first pass's: its contenders prepared one at a time
    moved = harness.bytes_moved(case)
    memory = next((lv for lv in levels if lv["bytes"] is None), None)
    level = bandwidth.level_for(moved, levels) if memory else None  # its data touched once: moved is its working set
    # the best copy of its own working set beside it, never below main memory's (a copy slowed by a busy moment)
    ceiling = max(max(copies), memory["gbps"]) if copies and memory else level["gbps"] if level else None
    q1, q3 = np.percentile(blocks, [25, 75])
    return {
        "median_s": median, "iqr_s": float(q3 - q1), "min_s": float(min(min(s) for s in t.samples)),
        "rounds": int(sum(len(s) for s in t.samples)), "iterations": int(t.ready[0]["iterations"]),
        "first_call_s": first, "compile_s": max(first - median, 0.0), "bytes": moved, "gbps": moved / median / 1e9,
        "roofline_frac": moved / median / 1e9 / ceiling if ceiling else None,
        "roofline_level": level["name"] if level else None, "roofline_gbps": ceiling,
        **({"roofline_copies_gbps": [float(c) for c in copies]} if copies and memory else {}),
        "bandwidth_gbps": memory["gbps"] if memory else None, "threads": {"requested": threads.requested()},
        "sync": t.ready[0].get("sync"), "faults_per_call": float(np.median(t.faults_per_call)),
        "samples_s": [float(b) for b in blocks],  # block medians: what the intervals resample
        "allocator": hello.get("allocator", {}).get("name"), "repeat": 0,
        "head_to_head": {**{k: standing[k] for k in ("fastest", "ratio", "ratio_ci", "verdict", "block_spread",
                                                     "processes", "rounds")},
                         **{k: standing[k] for k in ("heats", "anchor", "versus_default") if k in standing},
                         "busy_after_block_s": float(np.median(t.busy_after_s)) if t.busy_after_s else None,
                         **({"field": field} if field else {})},
    }


def _message(name: str, s: dict) -> str:
    lo, hi = s["ratio_ci"]
    if s["verdict"] == "fastest":
        where = "fastest"
    else:
        where = f"{s['ratio']:.3f}× {s['fastest']} [95 % {lo:.3f}–{hi:.3f}]: {s['verdict']}"
    heats = (f" in {s['heats']} heats (too large for the field to hold at once), each ratio read through "
             f"{s['anchor']}, which ran in every heat" if s.get("heats", 1) > 1 else "")
    return (f"median {s['median_s'] * 1e3:.3f} ms over {s['processes']} process(es) × {s['rounds']} interleaved "
            f"blocks{heats}; {where}; its own blocks spread {s['block_spread']:.0%} (IQR/median)")


def memory_records(processes: list[dict], entrants: list[Entrant], field: str | None = None) -> list[Record]:
    """One record per contender process: its peak resident memory (facts.peak_rss_mb), and the most
    the processes of its pass held at once (facts.pass_together_mb); a side field's processes are named
    for it (``torch-modes-p0``), apart from the main field's."""
    by_name = {e.name: e for e in entrants}
    out = []
    for p in processes:
        entrant = by_name[p["adapter"]]
        instance = f".{p['instance']}" if p.get("instance") else ""  # a restarted process's successor
        name = "-".join(filter(None, (entrant.name, field, f"p{p['process']}{instance}")))
        side = {"field": field} if field else {}
        about = records.about_process(name, {"process": p["process"], **side})
        peak = p.get("peak_rss_mb")
        lost = p.get("lost")
        out.append(records.build(_Named(entrant, p.get("version")), Suite.SPEED, Check.PEAK_MEMORY, about,
                                 outcome=Outcome.ERROR if lost else Outcome.PASS,
                                 message=f"process {p['process']}{instance}: " + (lost or _peak(peak)) + (
                                     f"; restarted before {p['retired_on']} to give back memory its framework kept"
                                     if p.get("retired_on") else ""),
                                 facts={**{k: v for k, v in p.items() if k != "adapter"}, **side}))
    return out


def _peak(mb: float | None) -> str:
    return f"peak {mb:.0f} MB resident" if mb is not None else "peak unknown"


def recompile_records(said: dict[str, dict], entrants: list[Entrant], hellos: dict[str, dict]) -> list[Record]:
    """Each entrant's recompile record, as its first process made it (``harness.recompiles``), named
    as the entrant; an error where that process could not answer."""
    by_name = {e.name: e for e in entrants}
    out = []
    for name, answer in said.items():
        entrant = by_name[name]
        version = hellos.get(name, {}).get("version")
        if "record" in answer:
            rec = Record.from_row({**answer["record"], "adapter": name,
                                   "framework_version": version or answer["record"]["framework_version"]})
            out.append(rec)
        else:
            about = records.about_process(f"{name}-recompiles", {})
            out.append(records.build(_Named(entrant, version), Suite.SPEED, Check.RECOMPILES, about,
                                     outcome=Outcome.ERROR, message=answer.get("error", "no answer")))
    return out
