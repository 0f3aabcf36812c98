"""The property-based search in the results model: per adapter and op, the worst case it found.

A search writes, per adapter and op, the records of the failure it shrank (if any), its worst known
divergence and its worst passing example (``facts["search"]["role"]``). This picks the one record
that speaks for each adapter and op (the most severe outcome, then the largest error / tolerance)
and orders them failures first, then known divergences, then passes closest to their tolerance.
Beside it, what that search covered (every record a search writes carries it): cases run, distinct
shapes, dtypes, seconds and the budget share it had, why it ended, and the largest error / tolerance
it reached on any case, shrunk or not.
"""

from __future__ import annotations

import pandas as pd

from ..results.kinds import Suite
from ..search import ROLES
from .model import SEVERITY, Results, op_rank, run_labels, worst_of

COVERAGE = ["examples", "shapes", "dtypes", "seconds", "budget_s", "ended", "reached_ratio", "reached_case",
            "reached_check"]  # facts["search"] keys, as columns
COLUMNS = ["adapter", "op", "outcome", "case", "check", "ratio", *COVERAGE, "role", "known", "message", "rerun",
           "machine", "run"]


def records(res: Results) -> pd.DataFrame:
    """The search's own records (not its replays)."""
    c = res.checks
    if not len(c):
        return c
    role = c["facts"].apply(lambda f: (f.get("search") or {}).get("role") if isinstance(f, dict) else None)
    return c[(c["suite"] == Suite.SEARCH) & role.isin(ROLES)]


def worst(res: Results) -> pd.DataFrame:
    """One row per adapter and op: the case that speaks for the search there (see module docstring)."""
    c = records(res)
    if not len(c):
        return pd.DataFrame(columns=COLUMNS)
    rows = worst_of(c, ["adapter", "op"])
    search = rows["facts"].apply(lambda f: f.get("search") or {})
    covered = {key: search.apply(lambda s, key=key: s.get(key)) for key in COVERAGE}
    covered["dtypes"] = covered["dtypes"].apply(lambda d: ", ".join(d) if isinstance(d, list) else d)
    covered["reached_ratio"] = pd.to_numeric(covered["reached_ratio"], errors="coerce")  # "inf" was written as text
    rows = rows.assign(**covered, role=search.apply(lambda s: s.get("role")),
                       known=rows["facts"].apply(lambda f: f.get("known")), run=run_labels(res, rows),
                       rank=rows["op"].map(lambda op: op_rank(op)[0]))
    rows = rows.sort_values(["severity", "ratio", "adapter", "rank"], ascending=[False, False, True, True],
                            na_position="last", kind="stable")
    return rows[COLUMNS].reset_index(drop=True)


def counts(table: pd.DataFrame) -> dict[str, int]:
    """How many adapter × op searches ended in each outcome."""
    return {o: int((table["outcome"] == o).sum()) for o in sorted(SEVERITY, key=SEVERITY.get, reverse=True)}
