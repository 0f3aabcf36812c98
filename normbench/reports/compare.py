"""Compare two runs: which benchmarks got slower or faster, which checks broke or were fixed.

In the spirit of ``asv compare``: a speed change counts only when the ratio of medians passes
``factor`` *and* the difference is significant. The unit of replication is the repeat (a
`normbench run` times every case in three passes, minutes apart, each in a fresh process):
with two or more repeats on each side the change is significant when the ranges of the
repeats' medians do not overlap (for 3 against 3 that is an exact one-sided Mann-Whitney
p = 0.05). Rounds within one repeat are correlated, so a Mann-Whitney U test on per-round
samples (``samples_s``) is the fallback for single-repeat files, and non-overlapping
interquartile intervals (median ± IQR/2) for files without samples.

Ratios are judged against the machine, not against the other cases: when every case got 2×
slower on an unchanged machine (a framework upgrade, a thread misconfiguration), every case
regressed. Each benchmark process records two probes of its machine, the memory copy bandwidth
and the time of a small fixed CPU-bound loop (``bench.cpu_probe``). A probe's drift (new machine
over old, in the sense of time) is applied only when it is real: when the runs' ranges of it do
not overlap (two or more files a side), or, with a single file, when it is beyond ``factor``;
the bandwidth varies a lot from process to process on a shared VM, and that is noise. A case
memory-bound in the old run (``roofline_frac`` at least ``MEMORY_BOUND``) is judged by its ratio
over the memory drift, any other by its ratio over the CPU drift; the table shows raw ratios and
notes say what each run measured and what was applied.

Cases match by (adapter, case, allocator). Two runs under one allocator each, different ones,
match by (adapter, case), and a note says that their ratios include the allocator change.
Marks: ``+`` slower, ``-`` faster, ``x`` broke, ``~`` past the factor but not significant, ``?``
changed with the allocator's page faults: one run page-faulted its output in on every call and
the other did not (``bench.faulting``), which follows the process's allocator state rather
than the code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..results.allocators import faulting
from ..results.kinds import Check, Outcome, Suite
from . import model
from .drift import MIN_SHIFT_CASES, PROBES, SHIFT_FACTOR, Drift, machine_drift, machine_notes
from .markdown_elements import cell, code, table
from .model import Results

KEY = ["adapter", "case"]
# Measured under the default allocator (warm) on our shared 2-core VM: two back-to-back full
# `normbench run`s of the same code (233 timed cases) had single cases whose three repeats did
# not overlap at up to 1.52x (and 1/0.66 the other way), with no page faults on either side: this
# VM's processes differ in speed (its CPU probe is bimodal, 2.5 or 4 ms). A per-case factor must
# sit above that to compare clean; whole-run shifts are caught by SHIFT_FACTOR instead. asv's 1.1
# suits dedicated hardware (--factor 1.1).
DEFAULT_FACTOR = 1.6
# SHIFT_FACTOR and MIN_SHIFT_CASES (the whole run's move): see drift.py.
# One adapter's cases share its three processes, so their median is noisier: 0.92-1.18 per adapter
# in the same pair of runs (a thin margin: measured on one pair).
ADAPTER_SHIFT_FACTOR = 1.2
MEMORY_BOUND = 0.5  # a case at half the measured copy bandwidth or more moves with the memory
UNRECORDED = "unrecorded"  # the allocator of a file from before records carried one
OK, BAD = {Outcome.PASS, Outcome.KNOWN}, {Outcome.FAIL, Outcome.ERROR}
MAX_ROWS = 50
MARKS = {"slower": "+", "faster": "-", "broke": "x", "regressed": "x", "noise": "~", "allocator": "?"}


def mann_whitney(x, y) -> tuple[float, float]:
    """U statistic of ``x`` and the two-sided p-value of the Mann-Whitney U test.

    Normal approximation with tie correction and continuity correction (as scipy's
    ``mannwhitneyu(method="asymptotic")``). Identical samples give p = 1.
    """
    x, y = np.asarray(x, dtype=float).ravel(), np.asarray(y, dtype=float).ravel()
    n1, n2 = len(x), len(y)
    if not n1 or not n2:
        raise ValueError("both samples must be non-empty")
    _, inverse, counts = np.unique(np.concatenate([x, y]), return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - (counts - 1) / 2  # tied values share the mean of their ranks
    u = float(average_rank[inverse][:n1].sum() - n1 * (n1 + 1) / 2)
    n = n1 + n2
    ties = float((counts.astype(float) ** 3 - counts).sum())
    variance = n1 * n2 / 12 * ((n + 1) - ties / (n * (n - 1)))
    if variance <= 0:
        return u, 1.0
    z = max(abs(u - n1 * n2 / 2) - 0.5, 0.0) / math.sqrt(variance)
    return u, min(1.0, math.erfc(z / math.sqrt(2)))


def _samples(value) -> list[float] | None:
    return value if isinstance(value, list) and len(value) >= 2 else None


def significance(old: pd.Series, new: pd.Series, alpha: float) -> tuple[float | None, bool, str]:
    """(p-value or None, whether old and new differ significantly, method) for a case timed in both runs."""
    ra, rb = _samples(old.get("repeat_medians_s")), _samples(new.get("repeat_medians_s"))
    if ra and rb:
        separated = min(rb) > max(ra) or max(rb) < min(ra)
        return None, separated, "repeats"
    a, b = _samples(old.get("samples_s")), _samples(new.get("samples_s"))
    if a and b:
        _, p = mann_whitney(a, b)
        return p, p < alpha, "mann-whitney"
    lo_old, hi_old = old["median_s"] - old["iqr_s"] / 2, old["median_s"] + old["iqr_s"] / 2
    lo_new, hi_new = new["median_s"] - new["iqr_s"] / 2, new["median_s"] + new["iqr_s"] / 2
    return None, bool(hi_new < lo_old or hi_old < lo_new), "iqr"


def allocators(res: Results) -> pd.Series:
    """Each check's allocator, else ``UNRECORDED``: ``model.load`` already gives a timing without
    one of its own its file's (the environment record's)."""
    c = res.checks
    named = c["allocator"] if "allocator" in c else pd.Series(None, index=c.index, dtype=object)
    return named.astype(object).where(named.notna(), UNRECORDED).astype(str)


def _timings(res: Results) -> pd.DataFrame:
    """One row per (adapter, case, allocator): repeats pooled (model.timed_rows) under each allocator."""
    cols = [*KEY, "allocator", "outcome", "median_s", "iqr_s", "samples_s", "repeat_medians_s",
            "faults_per_call", "bytes", "roofline_frac"]
    checks = res.checks.assign(allocator=allocators(res)) if len(res.checks) else res.checks
    # A self-check shares its case's name but judges the harness, not a timing of the code.
    speed = checks[(checks["suite"] == Suite.SPEED) & (checks["check"] != Check.SELF_CHECK)] if len(checks) else checks
    parts = [model.timed_rows(Results(group, res.environments)) for _, group in speed.groupby("allocator")]
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(columns=cols)
    rows = pd.concat(parts, ignore_index=True)
    rows = rows.assign(**{col: None for col in cols if col not in rows})
    return rows[cols].drop_duplicates([*KEY, "allocator"], keep="last")


def _match_key(old: pd.DataFrame, new: pd.DataFrame) -> list[str]:
    """KEY plus the allocator, unless each run ran under one allocator and they differ."""
    a, b = set(old["allocator"]), set(new["allocator"])
    return KEY if len(a) == len(b) == 1 and a != b else [*KEY, "allocator"]



def _bound(old_timing: pd.Series) -> str:
    """Which probe a case moves with: ``memory`` when the old run timed it at the bandwidth."""
    frac = pd.to_numeric(pd.Series([old_timing.get("roofline_frac")]), errors="coerce").iloc[0]
    return "memory" if pd.notna(frac) and frac >= MEMORY_BOUND else "cpu"


def _side(r: pd.Series, suffix: str) -> pd.Series:
    return pd.Series({k[:-len(suffix)]: r[k] for k in r.index if k.endswith(suffix)})


def _speed_changes(both: pd.DataFrame, factor: float, alpha: float, drifts: dict[str, float]) -> pd.DataFrame:
    """``both``: each run's pooled timings merged (outer), suffixed _old and _new; ``drifts``: applied
    machine drift per probe kind."""
    out = []
    for _, r in both.iterrows():
        o, n = _side(r, "_old"), _side(r, "_new")
        timed_old = o["outcome"] == Outcome.PASS and pd.notna(o["median_s"])
        timed_new = n["outcome"] == Outcome.PASS and pd.notna(n["median_s"])
        row = {"adapter": r["adapter"], "case": r["case"], "allocator": _allocator(r, o, n),
               "old_s": o["median_s"] if timed_old else None,
               "new_s": n["median_s"] if timed_new else None, "old_iqr_s": o["iqr_s"] if timed_old else None,
               "new_iqr_s": n["iqr_s"] if timed_new else None, "old_outcome": o["outcome"],
               "new_outcome": n["outcome"], "ratio": None, "judged": None, "bound": None, "p": None,
               "method": None, "old_faults": o["faults_per_call"], "new_faults": n["faults_per_call"]}
        if timed_old and timed_new:
            p, significant, method = significance(o, n, alpha)
            ratio = n["median_s"] / o["median_s"]
            bound = _bound(o)
            judged = ratio / drifts[bound]
            change = ("slower" if judged > factor else "faster" if judged < 1 / factor else "same")
            if change != "same" and not significant:
                change = "noise"
            elif change != "same" and _faulting(o) != _faulting(n):
                change = "allocator"
            row.update(ratio=ratio, judged=judged, bound=bound, p=p, method=method, change=change)
        elif timed_old:
            row["change"] = "broke" if n["outcome"] in BAD else "removed"
        elif timed_new:
            row["change"] = "fixed" if o["outcome"] in BAD else "added"
        else:
            continue  # timed in neither run (skipped both times, or failing both times: see outcomes)
        row["mark"] = MARKS.get(row["change"], "")
        out.append(row)
    cols = ["mark", "change", *KEY, "allocator", "old_s", "new_s", "ratio", "judged", "bound", "p", "method",
            "old_iqr_s", "new_iqr_s", "old_outcome", "new_outcome", "old_faults", "new_faults"]
    return pd.DataFrame(out, columns=cols)


def _allocator(r: pd.Series, old: pd.Series, new: pd.Series) -> str:
    """The case's allocator; ``old -> new`` where runs under different ones were matched across."""
    if "allocator" in r.index:
        return r["allocator"]
    names = [a for a in (old["allocator"], new["allocator"]) if pd.notna(a)]
    return " -> ".join(names)


def _faulting(timing: pd.Series) -> bool | None:
    faults, moved = timing.get("faults_per_call"), timing.get("bytes")
    if faults is None or pd.isna(faults) or moved is None or pd.isna(moved):
        return None  # not recorded: never explains a change
    return faulting(float(faults), int(moved))


def _outcome_change(old, new) -> str:
    if pd.isna(old):
        return "added"
    if pd.isna(new):
        return "removed"
    if old in OK and new in BAD:
        return "regressed"
    if old in BAD and new in OK:
        return "fixed"
    return "changed"


def _outcome_changes(old: Results, new: Results, by_allocator: bool = True) -> pd.DataFrame:
    """Checks whose outcome differs; benchmarks also by allocator when ``by_allocator``."""
    key = ["adapter", "suite", "case", "check", "allocator"]
    cols = ["mark", "change", *key, "old", "new", "message", "rerun"]

    def pick(res):
        c = res.checks
        if not len(c):
            return pd.DataFrame(columns=[*key, "outcome", "message", "rerun"])
        c = c.assign(allocator=allocators(res).where(c["suite"] == Suite.SPEED, "") if by_allocator else "")
        return c[[*key, "outcome", "message", "rerun"]].drop_duplicates(key, keep="last")

    both = pick(old).merge(pick(new), on=key, how="outer", suffixes=("_old", "_new"))
    both = both[both["outcome_old"].fillna("") != both["outcome_new"].fillna("")]
    if not len(both):
        return pd.DataFrame(columns=cols)
    change = [_outcome_change(a, b) for a, b in zip(both["outcome_old"], both["outcome_new"], strict=True)]
    out = both.assign(change=change, mark=[MARKS.get(c, "") for c in change], old=both["outcome_old"],
                      new=both["outcome_new"], message=both["message_new"].fillna(both["message_old"]),
                      rerun=both["rerun_new"].fillna(both["rerun_old"]))
    order = {"regressed": 0, "fixed": 1, "changed": 2, "added": 3, "removed": 4}
    return out.sort_values(by="change", key=lambda s: s.map(order), kind="stable")[cols].reset_index(drop=True)


def _label(res: Results) -> str:
    """Each run once (a `normbench run` folder holds one results file per process)."""
    envs = res.environments
    if not len(envs):
        return "(no results)"
    parts = []
    for run, group in envs.groupby(envs["run"].astype(str).str.split("/").str[0], sort=False):
        e = group.sort_values("date").iloc[0]
        files = f", {len(group)} results files" if len(group) > 1 else ""
        parts.append(f"{run} (commit {str(e.get('git_commit') or '?')[:7]}, {str(e.get('date') or '?')[:16]}, "
                     f"{e['machine']}{files})")
    return "; ".join(parts)


@dataclass
class Comparison:
    speed: pd.DataFrame  # one row per (adapter, case, allocator) timed in either run
    outcomes: pd.DataFrame  # one row per check whose outcome differs (incl. added/removed)
    factor: float = DEFAULT_FACTOR
    alpha: float = 0.05
    old_label: str = ""
    new_label: str = ""
    notes: list[str] = field(default_factory=list)
    machine: dict[str, Drift] = field(default_factory=dict)  # per probe kind: "memory", "cpu"
    show_allocator: bool = False  # a run timed under several allocators: the table names each case's one

    @property
    def shift(self) -> float | None:
        """The median over every case timed in both runs of its ratio judged against the machine
        (None with fewer than MIN_SHIFT_CASES): the whole run's move, code rather than machine."""
        judged = pd.to_numeric(self.speed["judged"], errors="coerce").dropna() if len(self.speed) else []
        return float(judged.median()) if len(judged) >= MIN_SHIFT_CASES else None

    @property
    def shifted(self) -> str | None:
        """"slower" or "faster" when every case moved together past SHIFT_FACTOR."""
        shift = self.shift
        if shift is None or 1 / SHIFT_FACTOR <= shift <= SHIFT_FACTOR:
            return None
        return "slower" if shift > 1 else "faster"

    def adapter_shifts(self) -> dict[str, float]:
        """Adapters whose cases moved together past ADAPTER_SHIFT_FACTOR: their median judged ratio."""
        if not len(self.speed):
            return {}
        judged = self.speed.assign(judged=pd.to_numeric(self.speed["judged"], errors="coerce")).dropna(
            subset=["judged"])
        medians = judged.groupby("adapter")["judged"].agg(["median", "count"])
        moved = medians[(medians["count"] >= MIN_SHIFT_CASES)
                        & ~medians["median"].between(1 / ADAPTER_SHIFT_FACTOR, ADAPTER_SHIFT_FACTOR)]
        return {str(a): float(m) for a, m in moved["median"].items()}

    @property
    def regressed(self) -> bool:
        """Anything slower (significantly, past the factor), the whole run or one adapter's cases
        slower together (past SHIFT_FACTOR, ADAPTER_SHIFT_FACTOR), or a check that passed and now fails."""
        return bool(self.speed["change"].isin(["slower", "broke"]).any() or self.shifted == "slower"
                    or any(m > 1 for m in self.adapter_shifts().values())
                    or (self.outcomes["change"] == "regressed").any())

    def counts(self) -> dict[str, int]:
        """Timings slower/faster/unchanged, checks broke/fixed, and cases or checks in one run only."""
        s, o = self.speed["change"].value_counts(), self.outcomes["change"].value_counts()
        checks = self.outcomes[self.outcomes["suite"] != Suite.SPEED]["change"].value_counts()  # speed: counted in s
        return {"slower": int(s.get("slower", 0)), "faster": int(s.get("faster", 0)),
                "unchanged": int(s.get("same", 0) + s.get("noise", 0)), "allocator": int(s.get("allocator", 0)),
                "broke": int(o.get("regressed", 0)), "fixed": int(o.get("fixed", 0)),
                "added": int(s.get("added", 0) + checks.get("added", 0)),
                "removed": int(s.get("removed", 0) + checks.get("removed", 0))}

    def summary(self) -> str:
        n = self.counts()
        adapters = self.adapter_shifts()
        slower = n["slower"] or self.shifted == "slower" or any(m > 1 for m in adapters.values())
        if slower or n["broke"]:
            verdict = "PERFORMANCE DECREASED." if slower else "SOME CHECKS BROKE."
            if slower and n["broke"]:
                verdict = "PERFORMANCE DECREASED AND SOME CHECKS BROKE."
        elif n["faster"] or n["fixed"] or self.shifted == "faster" or adapters:
            verdict = "SOME BENCHMARKS OR CHECKS IMPROVED."
        else:
            verdict = "BENCHMARKS NOT SIGNIFICANTLY CHANGED."
        allocator = f", {n['allocator']} changed with page faults" if n["allocator"] else ""
        shift = (f" Every case moved together: median ratio {self.shift:.2f} beyond what the machine measured "
                 f"(run-wide factor {SHIFT_FACTOR:g})." if self.shifted else "")
        if adapters:
            moved = ", ".join(f"{a} {m:.2f}" for a, m in sorted(adapters.items()))
            shift += (f" One adapter's cases moved together (median ratio, adapter factor "
                      f"{ADAPTER_SHIFT_FACTOR:g}): {moved}.")
        return (f"**{verdict}**{shift} Timings: {n['slower']} slower, {n['faster']} faster, {n['unchanged']} unchanged"
                f"{allocator}. "
                f"Checks: {n['broke']} broke, {n['fixed']} fixed. Only in one run: {n['added']} added, "
                f"{n['removed']} removed. (factor {self.factor:g}, alpha {self.alpha:g})")

    def markdown(self, only_changed: bool = True) -> str:
        parts = ["## normbench compare", "", f"Before: {cell(self.old_label)}  ", f"After: {cell(self.new_label)}"]
        parts += [f"\n> {cell(note)}" for note in self.notes]
        parts += ["", "### Speed", "", self._speed_table(only_changed), "", "### Outcomes", "",
                  self._outcome_table(), "", self.summary()]
        return "\n".join(parts) + "\n"

    def _speed_table(self, only_changed: bool) -> str:
        s = self.speed
        if not len(s):
            return "No timings in either run."
        if only_changed:
            s = s[s["change"] != "same"]
            if not len(s):
                return f"All {len(self.speed)} timed cases unchanged (within a factor of {self.factor:g})."
        order = {"broke": 0, "slower": 1, "faster": 2, "allocator": 3, "noise": 4, "fixed": 5, "added": 6,
                 "removed": 7, "same": 8}
        s = s.assign(_o=s["change"].map(order), _r=-s["ratio"].fillna(0)).sort_values(["_o", "_r"])
        rows = [[r["mark"] or " ", _time(r["old_s"], r["old_iqr_s"]), _time(r["new_s"], r["new_iqr_s"]),
                 cell(f"{r['ratio']:.2f}" if pd.notna(r["ratio"]) else None), _p(r),
                 f"{cell(r['adapter'])} · {cell(r['case'])}" + self._allocator(r) + _why(r)]
                for _, r in s.head(MAX_ROWS).iterrows()]
        out = table(["Change", "Before", "After", "Ratio", "p", "Benchmark"], rows)
        if len(s) > MAX_ROWS:
            out += f"\n\n… and {len(s) - MAX_ROWS} more."
        return out + ("\n\nBefore/after: median ± half the IQR of the pooled rounds. p: `repeats` where both "
                      "runs have several repeats (significant when the ranges of their medians do not overlap); "
                      "else Mann-Whitney U on per-round samples; `iqr` where a file has no samples "
                      "(significant when the intervals do not overlap).")

    def _allocator(self, r: pd.Series) -> str:
        return f" · {cell(r['allocator'])}" if self.show_allocator and r["allocator"] else ""

    def _outcome_table(self) -> str:
        o = self.outcomes
        o = o[o["suite"] != Suite.SPEED] if len(o) else o  # speed outcomes are in the speed table
        if not len(o):
            return "No check changed its outcome."
        shown = o[~o["change"].isin(["added", "removed"])]
        rows = [[r["mark"] or " ", cell(r["old"]), cell(r["new"]),
                 f"{cell(r['adapter'])} · {cell(r['case'])} · {cell(r['check'])}",
                 code(r["rerun"]) if isinstance(r["rerun"], str) and r["rerun"] else "—"]
                for _, r in shown.head(MAX_ROWS).iterrows()]
        out = [table(["Change", "Before", "After", "Check", "Rerun"], rows)] if rows else []
        if len(shown) > MAX_ROWS:
            out.append(f"… and {len(shown) - MAX_ROWS} more.")
        for kind in ("added", "removed"):
            part = o[o["change"] == kind]
            if len(part):
                by = ", ".join(f"{a}: {k}" for a, k in part["adapter"].value_counts().sort_index().items())
                out.append(f"{len(part)} checks {kind} ({cell(by)}).")
        return "\n\n".join(out)


def _time(seconds, iqr) -> str:
    if seconds is None or pd.isna(seconds):
        return "—"
    unit, scale = next((u, s) for u, s in (("s", 1), ("ms", 1e3), ("μs", 1e6), ("ns", 1e9)) if seconds * s >= 1
                       or u == "ns")
    half = iqr / 2 * scale if iqr is not None and pd.notna(iqr) else None
    half = "" if half is None else f"±{half:.2g}" if half < 100 else f"±{half:.0f}"
    return f"{seconds * scale:.3g}{half}{unit}"


def _p(r) -> str:
    if r["method"] in ("iqr", "repeats"):
        return f"`{r['method']}`"
    if r["p"] is None or pd.isna(r["p"]):
        return "—"
    return "<1e-6" if r["p"] < 1e-6 else f"{r['p']:.2g}"


def _why(r) -> str:
    if r["change"] in ("broke", "fixed"):
        return f" ({cell(r['old_outcome'])} → {cell(r['new_outcome'])})"
    if r["change"] == "removed" and pd.notna(r["new_outcome"]):
        return f" (now {cell(r['new_outcome'])})"
    if r["change"] == "added" and pd.notna(r["old_outcome"]):
        return f" (was {cell(r['old_outcome'])})"
    if r["change"] == "allocator":
        return f" (page faults per call {_faults(r['old_faults'])} → {_faults(r['new_faults'])}: allocator state)"
    return {"added": " (new)", "removed": " (gone)", "noise": " (not significant)"}.get(r["change"], "")


def _faults(value) -> str:
    return "?" if value is None or pd.isna(value) else f"{value:.0f}"


# What a comparison of two files can and cannot tell, said with every speed comparison.
APART = ("These runs were timed apart, each in its own minutes: on a machine whose speed drifts, a change smaller "
         "than the factor cannot be told from the drift. To judge a smaller one, time both sides in the same "
         "minutes: normbench bench --head-to-head --adapters NAME@/old/venv/bin/python,NAME@/new/venv/bin/python "
         "(see README, Head to head).")


def compare(old: Results, new: Results, factor: float = DEFAULT_FACTOR, alpha: float = 0.05) -> Comparison:
    """Speed and outcome changes from ``old`` to ``new``, matched by (adapter, case, allocator)."""
    if not factor > 1:
        raise ValueError(f"factor must be greater than 1, got {factor:g}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha:g}")
    if not _in_common(old, new):
        raise ValueError(f"no check or benchmark case in common between {_label(old)} and {_label(new)}: "
                         "nothing to compare (a wrong path, or runs of different adapters or suites?)")
    timings = _timings(old), _timings(new)
    key = _match_key(*timings)
    both = timings[0].merge(timings[1], on=key, how="outer", suffixes=("_old", "_new"))
    machine = {kind: machine_drift(old, new, kind, factor) for kind in PROBES}
    speed = _speed_changes(both, factor, alpha, {kind: d.applied for kind, d in machine.items()})
    notes = machine_notes(old, new, speed, factor, machine) + _allocator_notes(*timings, key)
    if len(speed):
        notes.append(APART)
    return Comparison(speed, _outcome_changes(old, new, "allocator" in key), factor, alpha, _label(old),
                      _label(new), notes, machine, max(t["allocator"].nunique() for t in timings) > 1)


def _in_common(old: Results, new: Results) -> int:
    """How many records (checks and timings, by adapter, suite, case and check) both runs have."""
    key = ["adapter", "suite", "case", "check"]
    if not len(old.checks) or not len(new.checks):
        return 0
    return len(old.checks[key].drop_duplicates().merge(new.checks[key].drop_duplicates(), on=key))




def _allocator_notes(old: pd.DataFrame, new: pd.DataFrame, key: list[str]) -> list[str]:
    """Say so where runs under different allocators were matched across them."""
    if "allocator" in key:
        return []
    return [f"Allocators differ: {old['allocator'].iloc[0]} -> {new['allocator'].iloc[0]}; "
            "ratios include the allocator change."]
