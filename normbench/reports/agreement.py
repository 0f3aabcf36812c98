"""Errors against tolerance: the agreement table, the heatmap's cells and the checks closest to
their tolerance."""

from __future__ import annotations

import pandas as pd

from ..results.kinds import Outcome
from .loading import Results
from .rows import derivative, mixed, run_labels, single_process, verification, with_ratio, worst_of

AGREEMENT_COLUMNS = ["adapter", "suite", "case", "check", "dtype", "input", "outcome", "err_eps", "max_abs_err",
                     "tolerance", "ratio", "machine", "run"]


def agreement(res: Results, records: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compared checks (of ``records``, default every verification record), worst first by error
    relative to tolerance."""
    c = verification(res) if records is None else records
    c = c[c["max_abs_err"].notna() & c["tolerance"].notna()] if len(c) and "tolerance" in c else c.iloc[0:0]
    if not len(c):
        return pd.DataFrame(columns=AGREEMENT_COLUMNS)
    c = with_ratio(c).assign(run=run_labels(res, c))
    return c.sort_values("ratio", ascending=False, na_position="first")[AGREEMENT_COLUMNS].reset_index(drop=True)


def closest(res: Results) -> pd.DataFrame:
    """Passing checks, closest to their tolerance first: how much headroom agreement has. Derivatives
    and mixed-precision paths are left out: their section shades each op's and path's worst, and
    their bounds would crowd the first-order checks out of the list."""
    c = verification(res)
    a = agreement(res, c[~(derivative(c) | mixed(c))] if len(c) else c)
    a = a[(a["outcome"] == Outcome.PASS) & a["ratio"].notna()]
    return a.sort_values("ratio", ascending=False, kind="stable").reset_index(drop=True)


def agreement_cells(res: Results) -> pd.DataFrame:
    """One row per case and adapter, for the heatmap: the check that speaks for the cell (the most
    severe outcome, then the highest error / tolerance), with how many checks the cell holds.

    Cases come most interesting first: any failure or error, then the highest ratio. Failures and
    errors without an error value (an exception) are cells too: they are what a reader looks for.
    """
    cols = ["case", "adapter", "check", "dtype", "outcome", "err_eps", "max_abs_err", "tolerance", "ratio", "checks"]
    c = single_process(res)
    if not len(c) or "tolerance" not in c:
        return pd.DataFrame(columns=cols)
    c = c[(c["max_abs_err"].notna() & c["tolerance"].notna()) | c["outcome"].isin([Outcome.FAIL, Outcome.ERROR])]
    if not len(c):
        return pd.DataFrame(columns=cols)
    cells = worst_of(c, ["case", "adapter"])
    by_case = cells.groupby("case").agg(bad=("severity", lambda s: bool((s >= 2).any())),
                                        top=("ratio", lambda r: r.max() if r.notna().any() else -1.0))
    order = by_case.sort_values(["bad", "top"], ascending=False, kind="stable").index
    cells["case"] = pd.Categorical(cells["case"], categories=order, ordered=True)
    cells = cells.sort_values(["case", "adapter"], kind="stable")
    return cells.assign(case=cells["case"].astype(str))[cols].reset_index(drop=True)


def agreement_matrix(res: Results) -> pd.DataFrame:
    """Error / tolerance per case (rows, most interesting first) and adapter (columns)."""
    cells = agreement_cells(res)
    if not len(cells):
        return pd.DataFrame()
    matrix = cells.pivot(index="case", columns="adapter", values="ratio")
    return matrix.loc[list(dict.fromkeys(cells["case"]))]
