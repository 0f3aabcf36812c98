"""The verdict table and the headline: what was verified and timed, and how it went."""

from __future__ import annotations

import pandas as pd

from ..results.records import OUTCOMES
from .formatting import plural
from .loading import Results
from .rows import verification
from .timing import speed, timed_rows


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
    """One sentence for the verification and one for the benchmarks, whichever these files hold."""
    lines = []
    c = verification(res)
    if len(c):
        counts = c["outcome"].value_counts()
        parts = ", ".join(f"{int(counts.get(o, 0)):,} {o}" for o in OUTCOMES)
        bad = int(counts.get("fail", 0) + counts.get("error", 0))
        verdict = ("all agree or diverge only as known" if bad == 0
                   else plural(bad, "unexpected failure"))
        outside = int(c["facts"].apply(lambda f: bool(f.get("outside_known"))).sum())
        if outside:
            verdict += f" ({outside} outside a known divergence's envelope)"
        lines.append(f"{plural(len(c), 'check')} on {plural(c['adapter'].nunique(), 'adapter')}: {parts} — {verdict}.")
    s = speed(res)
    if len(s):
        broken = timed_rows(res)
        broken = int(broken["outcome"].isin(["fail", "error"]).sum()) if len(broken) else 0
        lines.append(f"{plural(len(s), 'timing')} of {plural(s['adapter'].nunique(), 'adapter')} on "
                     f"{plural(s['machine'].nunique(), 'machine')}"
                     + (f"; {plural(broken, 'benchmark')} failed or errored." if broken else "."))
    return lines or ["No results in these files."]


def unexpected(res: Results) -> int:
    """Failed and errored records in any suite: what makes a report bad news."""
    c = res.checks
    return int(c["outcome"].isin(["fail", "error"]).sum()) if len(c) else 0
