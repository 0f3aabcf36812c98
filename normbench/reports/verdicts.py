"""The verdict table and the headline: what was verified and timed, and how it went."""

from __future__ import annotations

import pandas as pd

from ..results.counts import count
from ..results.kinds import Outcome
from ..results.records import OUTCOMES
from .formatting import plural
from .loading import Results
from .rows import verification
from .timing import speed


def verdicts(res: Results) -> pd.DataFrame:
    """Outcome counts per adapter and suite (verification suites only)."""
    c = verification(res)
    if not len(c):
        return pd.DataFrame(columns=["adapter", "suite", *OUTCOMES])
    table = c.groupby(["adapter", "suite", "outcome"]).size().unstack("outcome", fill_value=0)
    for outcome in OUTCOMES:
        if outcome not in table:
            table[outcome] = 0
    return table[list(OUTCOMES)].reset_index()


def headline(res: Results) -> str:
    """The report's first words: what was verified and timed, and the verdict."""
    return " ".join(headlines(res))


def headlines(res: Results) -> list[str]:
    """One sentence for the verification and one for the benchmarks, whichever these files hold, counted
    by the one rule (:func:`normbench.results.counts.count`, which the terminal uses too); then the
    adapters no run had installed."""
    lines = []
    counts = count(res.checks.to_dict("records")) if len(res.checks) else count([])
    c = verification(res)
    if len(c):
        parts = ", ".join(f"{counts.checks[o]:,} {o}" for o in OUTCOMES)
        bad = counts.unexpected
        verdict = ("all agree or diverge only as known" if bad == 0
                   else plural(bad, "unexpected failure"))
        outside = int(c["facts"].apply(lambda f: bool(f.get("outside_known"))).sum())
        if outside:
            verdict += f" ({outside} outside a known divergence's envelope)"
        lines.append(f"{plural(counts.total, 'check')} on {plural(c['adapter'].nunique(), 'adapter')}: {parts} "
                     f"— {verdict}.")
    s = speed(res)
    if len(s):
        broken = counts.broken_timings
        lines.append(f"{plural(counts.timings, 'timing')} of {plural(s['adapter'].nunique(), 'adapter')} on "
                     f"{plural(s['machine'].nunique(), 'machine')}"
                     + (f"; {plural(broken, 'benchmark')} failed or errored." if broken else "."))
    absent = missing_everywhere(res)
    if absent:
        lines.append(f"Not installed in any run: {', '.join(absent)}.")
    return lines or ["No results in these files."]


def missing_everywhere(res: Results) -> list[str]:
    """"torch (pip install normbench[torch])" for each adapter that some run lacked and none ran."""
    envs = res.environments
    if not len(envs) or "adapters_missing" not in envs:
        return []
    ran = {a.strip() for v in envs.get("adapters_run", []) if isinstance(v, str) for a in v.split(", ")}
    found = {}
    for value in envs["adapters_missing"]:
        for item in (value.split(", ") if isinstance(value, str) and value else []):
            found.setdefault(item.split(" (")[0], item)
    return [item for name, item in found.items() if name not in ran]


def unexpected(res: Results) -> int:
    """Failed and errored records in any suite: what makes a report bad news."""
    c = res.checks
    return int(c["outcome"].isin([Outcome.FAIL, Outcome.ERROR]).sum()) if len(c) else 0
