"""The property-based search in the results model: per adapter and op, the worst case it found.

A search writes, per adapter and op, the records of the failure it shrank (if any), its worst known
divergence and its worst passing example (``facts["search"]["role"]``). This picks the one record
that speaks for each adapter and op (the most severe outcome, then the largest error / tolerance)
and orders them failures first, then known divergences, then passes closest to their tolerance.
"""

from __future__ import annotations

import pandas as pd

from ..results.kinds import Suite
from .model import SEVERITY, Results, op_rank, run_labels, worst_of

COLUMNS = ["adapter", "op", "outcome", "case", "check", "ratio", "examples", "role", "known", "message", "rerun",
           "machine", "run"]
ROLES = ("failure", "worst_known", "worst_pass", "skipped")  # what a search writes (replays are reruns)


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
    rows = rows.assign(examples=search.apply(lambda s: s.get("examples")), role=search.apply(lambda s: s.get("role")),
                       known=rows["facts"].apply(lambda f: f.get("known")), run=run_labels(res, rows),
                       rank=rows["op"].map(lambda op: op_rank(op)[0]))
    rows = rows.sort_values(["severity", "ratio", "adapter", "rank"], ascending=[False, False, True, True],
                            na_position="last", kind="stable")
    return rows[COLUMNS].reset_index(drop=True)


def counts(table: pd.DataFrame) -> dict[str, int]:
    """How many adapter × op searches ended in each outcome."""
    return {o: int((table["outcome"] == o).sum()) for o in sorted(SEVERITY, key=SEVERITY.get, reverse=True)}
