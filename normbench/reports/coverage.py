"""The Coverage section: per adapter (and mode), how many verification checks ran and how many were
skips, grouped by the reason each skip gave. A skip is not a failure, so without this table a layout,
dtype or feature an adapter does not declare would shrink what it was tested on in silence."""

from __future__ import annotations

import pandas as pd

from ..results.kinds import Check, Outcome, Suite
from .formatting import fmt_count
from .html_elements import Col, esc, table
from .loading import Results
from .markdown_elements import cell, short
from .markdown_elements import table as md_table

SHOWN = 4  # reasons named per adapter in the Markdown table; the rest are in its details


def _verification(res: Results) -> pd.DataFrame:
    c = res.checks
    if not len(c):
        return c
    return c[~c["suite"].isin([Suite.SPEED, Suite.SEARCH, Suite.PROCESS]) & (c["check"] != Check.KNOWN_DIVERGENCE)]


def present(res: Results) -> bool:
    return bool(len(_verification(res)))


def by_adapter(res: Results) -> pd.DataFrame:
    """One row per adapter: checks run (any outcome but skip), skips, and the skips' reasons with counts,
    most frequent first."""
    rows = []
    for adapter, own in _verification(res).groupby("adapter", sort=False):
        skipped = own[own["outcome"] == Outcome.SKIP]
        reasons = skipped["message"].fillna("").value_counts()
        rows.append({"adapter": adapter, "ran": len(own) - len(skipped), "skipped": len(skipped),
                     "skip_share": len(skipped) / len(own) if len(own) else 0.0,
                     "reasons": [(str(why), int(n)) for why, n in reasons.items()]})
    return pd.DataFrame(rows)


def _reasons(v) -> str:
    items = "".join(f"<li><b>{fmt_count(n)}</b> {esc(why)}</li>" for why, n in v)
    return f'<ul class="reasons">{items}</ul>' if items else "—"


def _share(row) -> str:
    more = " — more skip than run" if row["skipped"] > row["ran"] else ""
    return f"{row['skip_share']:.0%}{more}"


COLUMNS = [Col("adapter", cls="nowrap"), Col("ran", "checks run", fmt=fmt_count, numeric=True),
           Col("skipped", "skipped", fmt=fmt_count, numeric=True),
           Col("skip_share", "skipped share", numeric=True, show=_share),
           Col("reasons", "why they skipped (records)", fmt=_reasons, html=True)]

NOTE = ("What each adapter was verified on. A combination an adapter does not declare (an op it does not build, a "
        "dtype, a layout, a feature such as gradients or masks, a mixed-precision path) is a skip that says why, not "
        "a failure; this table counts them by reason, so coverage cannot shrink unseen. "
        "<code>normbench check-adapter NAME</code> says the same before anything runs.")


def html(res: Results) -> str:
    return f'<p class="note">{NOTE}</p>' + table(by_adapter(res), COLUMNS)


def markdown(res: Results) -> list[str]:
    t = by_adapter(res)
    rows = [[cell(r["adapter"]), cell(fmt_count(r["ran"])), cell(fmt_count(r["skipped"])), cell(_share(r)),
             cell("; ".join(f"{n} {short(why)}" for why, n in r["reasons"][:SHOWN])
                  + (f"; {len(r['reasons']) - SHOWN} more reasons" if len(r["reasons"]) > SHOWN else ""))]
            for _, r in t.iterrows()]
    return ["### Coverage", "", "Checks run and skipped per adapter; each skip gives its reason (`normbench "
            "check-adapter NAME` says the same before running).", "",
            md_table(["adapter", "checks run", "skipped", "skipped share", "why they skipped (most frequent)"], rows),
            ""]
