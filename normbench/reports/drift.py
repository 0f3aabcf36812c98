"""How far the machine moved between two runs (memory bandwidth and CPU probes), and the notes a
comparison ends with: what each probe measured, what was applied, and why timings may not compare."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .loading import Results

# A shift of every case together is judged on the median ratio over all cases, whose noise is far
# smaller than one case's: two back-to-back same-code full runs here had a median ratio of 1.028
# (while single cases moved up to 1.52x). Below MIN_SHIFT_CASES the median says little.
SHIFT_FACTOR = 1.1
MIN_SHIFT_CASES = 10


@dataclass(frozen=True)
class Drift:
    """How much slower the new run's machine measured than the old one's by one probe."""

    probe: str  # what it measured, as a note says it
    unit: str
    old: tuple[float, ...]  # one value per results file that recorded it
    new: tuple[float, ...]
    ratio: float | None  # in the sense of time: above 1, the new machine is slower; None: a run lacks it
    real: bool  # ranges apart (or, with a single file, beyond the factor): applied

    @property
    def applied(self) -> float:
        return self.ratio if self.real and self.ratio is not None else 1.0


PROBES = {"memory": ("bandwidth_gbps", "memory bandwidth", "GB/s"), "cpu": ("cpu_probe_s", "CPU probe", "s")}


def _probe(res: Results, column: str) -> tuple[float, ...]:
    values = pd.to_numeric(res.environments.get(column, pd.Series(dtype=float)), errors="coerce")
    return tuple(float(v) for v in values if np.isfinite(v) and v > 0)


def machine_drift(old: Results, new: Results, kind: str, factor: float) -> Drift:
    """The ``kind`` probe's drift from old to new, real only beyond the runs' own spread of it."""
    column, probe, unit = PROBES[kind]
    a, b = _probe(old, column), _probe(new, column)
    if not a or not b:
        return Drift(probe, unit, a, b, None, False)
    ratio = float(np.median(a) / np.median(b) if kind == "memory" else np.median(b) / np.median(a))
    if len(a) >= 2 and len(b) >= 2:
        real = max(a) < min(b) or max(b) < min(a)
    else:
        real = not 1 / factor <= ratio <= factor
    return Drift(probe, unit, a, b, ratio, real)


def machine_notes(old: Results, new: Results, speed: pd.DataFrame, factor: float,
                  machine: dict[str, Drift]) -> list[str]:
    """What the machine probes measured and what was applied, and warnings that timings may not compare."""
    timed = pd.to_numeric(speed["ratio"], errors="coerce").notna().any()  # else the probes judge nothing
    notes = [_probe_note(kind, d, speed, factor) for kind, d in machine.items()] if timed else []
    machines = [set(r.environments["machine"]) if len(r.environments) else set() for r in (old, new)]
    if machines[0] and machines[1] and machines[0] != machines[1]:
        notes.append("The runs are from different machines: ratios compare hardware as well as code.")
    bandwidth = machine["memory"]
    if bandwidth.ratio is not None and not 1 / factor <= bandwidth.ratio <= factor:
        a, b = np.median(bandwidth.old), np.median(bandwidth.new)
        notes.append(f"Measured memory bandwidth differs: {a:.1f} → {b:.1f} GB/s (medians). " + (
            "The machine was busier or different during one run; memory-bound cases are judged relative to it."
            if bandwidth.real else "The runs' ranges overlap (noise between processes), so it is not applied; "
            "memory-bound timings may not be comparable."))
    ratios = pd.to_numeric(speed["ratio"], errors="coerce").dropna()
    if len(ratios) >= MIN_SHIFT_CASES and not 1 / SHIFT_FACTOR <= ratios.median() <= SHIFT_FACTOR:
        notes.append(_broad_shift_note(ratios, pd.to_numeric(speed["judged"], errors="coerce").dropna(),
                                       machine, factor))
    slower, faster = int((speed["change"] == "slower").sum()), int((speed["change"] == "faster").sum())
    if min(slower, faster) >= max(3, len(ratios) // 10):
        notes.append(f"Cases moved both ways ({slower} slower, {faster} faster): typical of a noisy or shared "
                     "machine. Rerun both sides back to back on a quiet machine before trusting single cases.")
    if (speed["change"] == "allocator").any():
        notes.append(f"{int((speed['change'] == 'allocator').sum())} cases changed together with the page faults per "
                     "call: in one run the allocator returned the output's memory to the kernel after every call and "
                     "the next call faulted it in again. That follows the process's allocator state (glibc arenas), "
                     "not the code, so these cases are listed but not counted as regressions.")
    if (speed["method"] == "iqr").any():
        notes.append(f"{int((speed['method'] == 'iqr').sum())} cases lack per-round samples in a file; "
                     "their significance is judged by non-overlapping IQR intervals.")
    return notes


def _measured(values: tuple[float, ...], unit: str) -> str:
    if len(values) == 1:
        return f"{values[0]:.3g} {unit} (one file)"
    return f"{np.median(values):.3g} {unit} (median of {len(values)} files, {min(values):.3g}–{max(values):.3g})"


def _probe_note(kind: str, d: Drift, speed: pd.DataFrame, factor: float) -> str:
    """What both runs measured with one probe, and whether (and to which cases) its drift applies."""
    cases = "memory-bound cases" if kind == "memory" else "CPU-bound cases (the rest)"
    if d.ratio is None:
        lacking = "both" if not d.old and not d.new else "the old run" if not d.old else "the new run"
        return f"The runs did not record the {d.probe} (missing from {lacking}): {cases} are judged by their raw ratio."
    if len(d.old) >= 2 and len(d.new) >= 2:
        how = "the ranges do not overlap" if d.real else "the ranges overlap"
    else:
        how = f"{d.ratio:.2f}× in time, {'beyond' if d.real else 'within'} the factor {factor:g}"
    n = int((speed["bound"] == kind).sum())
    applied = (f"so the {n} {cases} are judged by their ratio divided by {d.ratio:.2f}" if d.real
               else "so it is taken for noise: no drift applied")
    measured = f"{_measured(d.old, d.unit)} before and {_measured(d.new, d.unit)} after"
    return f"The {d.probe} measured {measured}: {how}, {applied}."


def _broad_shift_note(ratios: pd.Series, judged: pd.Series, machine: dict[str, Drift], factor: float) -> str:
    """Every case moved: say whether the machine did too, since a shift at the same machine speed is the code."""
    head = f"The median ratio over all {len(ratios)} cases is {ratios.median():.2f}"
    recorded = [d for d in machine.values() if d.ratio is not None]
    applied = [d for d in recorded if d.real]
    if not recorded:
        return (f"{head}, and the runs recorded no machine probe to tell a slower machine from slower code: a "
                "change of the code or its settings, or a busier or different machine.")
    if not applied:
        return (f"{head} — every case moved together while the machine measured the same: a change of the code "
                "or its settings (framework version, threads, allocator).")
    moved = ", ".join(f"{d.probe} {d.ratio:.2f}×" for d in applied)
    beyond = not 1 / factor <= judged.median() <= factor
    return (f"{head}, and the machine measured a change too (in time: {moved}); relative to the machine the median "
            f"is {judged.median():.2f}" + (": the code or its settings changed as well." if beyond else "."))
