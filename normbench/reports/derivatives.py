"""Forward-mode and second-order derivatives in the results model: per adapter, op and derivative,
the record that speaks for it.

Apart from :mod:`model` because these records answer another question than first-order agreement
(which leaves them out): does the framework's forward-mode AD, and its backward pass differentiated
again, agree with the float64 reference? Their case ids are the plain cases', so in the agreement
heatmap a second-order failure would read as a failure of the case itself.
"""

from __future__ import annotations

import pandas as pd

from ..results.kinds import Check, Outcome
from .model import (
    DERIVATIVE_CHECKS,
    SEVERITY,
    Results,
    derivative,
    op_title,
    ordered_ops,
    tally,
    verification,
    worst_of,
)

LABELS = dict(zip(DERIVATIVE_CHECKS, ("jvp", "second-order dx", "second-order dγ"), strict=True))
CELL_COLUMNS = ["adapter", "op", "title", "check", "label", "outcome", "ratio", "err_eps", "max_abs_err", "tolerance",
                "checks", "case", "tally", "known", "link", "message"]
SUMMARY_COLUMNS = ["adapter", "check", "label", "outcome", "ratio", "checks", "by_outcome", "known", "link", "message"]
TALLY = (Outcome.FAIL, Outcome.ERROR, Outcome.KNOWN, Outcome.PASS, Outcome.SKIP)  # the order ops are named by outcome


def records(res: Results) -> pd.DataFrame:
    """The derivative checks' records."""
    c = verification(res)
    return c[derivative(c)] if len(c) else c


def _whole_check(d: pd.DataFrame) -> pd.DataFrame:
    """``d`` with a second-order check that skipped or raised as a whole (recorded once, as
    second_order_dx) said for dγ too, where the case has no dγ record: it was not computed either."""
    whole = d[(d["check"] == Check.SECOND_ORDER_DX) & d["outcome"].isin([Outcome.SKIP, Outcome.ERROR])]
    dgamma = d[d["check"] == Check.SECOND_ORDER_DGAMMA]
    have = set(zip(dgamma["adapter"], dgamma["case"], strict=True))
    extra = whole[[k not in have for k in zip(whole["adapter"], whole["case"], strict=True)]]
    return pd.concat([d, extra.assign(check=Check.SECOND_ORDER_DGAMMA)], ignore_index=True) if len(extra) else d


def _text(v) -> str | None:
    return v if isinstance(v, str) and v else None


def cells(res: Results) -> pd.DataFrame:
    """One row per adapter, op (registry order) and derivative (DERIVATIVE_CHECKS order): the check
    that speaks for it (:func:`model.worst_of`), its case, the outcome tally, and the known
    divergence (key, link) or the skip / error message that explains it. A second-order check
    that skipped or raised counts for both of its derivatives (:func:`_whole_check`)."""
    d = records(res)
    if not len(d):
        return pd.DataFrame(columns=CELL_COLUMNS)
    d = _whole_check(d)
    counts = d.groupby(["adapter", "op", "check"])["outcome"].agg(tally).rename("tally")
    out = worst_of(d, ["adapter", "op", "check"]).join(counts, on=["adapter", "op", "check"])
    out = out.assign(title=out["op"].map(op_title), label=out["check"].map(LABELS),
                     known=out["facts"].apply(lambda f: _text(f.get("known"))),
                     link=out["facts"].apply(lambda f: _text(f.get("link"))),
                     _op=out["op"].map({name: i for i, name in enumerate(ordered_ops(out["op"]))}),
                     _check=out["check"].map(DERIVATIVE_CHECKS.index))
    out = out.sort_values(["adapter", "_op", "_check"], kind="stable")
    return out[CELL_COLUMNS].reset_index(drop=True)


def by_check(res: Results) -> pd.DataFrame:
    """Per adapter and derivative, the worst of its ops' cells, with the op titles per outcome
    (``by_outcome``: outcome → titles, fail first): what a one-line summary says."""
    c = cells(res)
    if not len(c):
        return pd.DataFrame(columns=SUMMARY_COLUMNS)
    out = []
    for (adapter, check), g in c.groupby(["adapter", "check"], sort=False):
        worst = g.assign(_s=g["outcome"].map(SEVERITY)).sort_values(
            ["_s", "ratio"], ascending=False, na_position="last", kind="stable").iloc[0]
        titles = {o: list(g.loc[g["outcome"] == o, "title"]) for o in TALLY if (g["outcome"] == o).any()}
        known = g[g["known"].notna()]
        out.append({"adapter": adapter, "check": check, "label": LABELS[check], "outcome": worst["outcome"],
                    "ratio": worst["ratio"], "checks": int(g["checks"].sum()), "by_outcome": titles,
                    "known": known["known"].iloc[0] if len(known) else None,
                    "link": known["link"].iloc[0] if len(known) else None, "message": worst["message"]})
    return pd.DataFrame(out, columns=SUMMARY_COLUMNS)
