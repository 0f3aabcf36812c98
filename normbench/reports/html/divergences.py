"""The divergences section: records outside a known divergence's envelope (failures, first), the known
divergences with each one's error against its envelope, and every other failure with its rerun command."""

from __future__ import annotations

import pandas as pd

from .. import model
from ..formatting import fmt_count, fmt_percent, plural, sig3
from ..html_elements import Col, code, empty, esc, link, outcome_class, table, with_machine
from ..model import Results

KNOWN_COLS = [
    Col("entry", "divergence", html=True, cls="nowrap"), Col("adapter", cls="nowrap"),
    Col("records", fmt=fmt_count, numeric=True),
    Col("outside", "outside envelope", fmt=fmt_count, numeric=True,
        cls=lambda v: "o-fail" if (v or 0) > 0 else "zero"),
    Col("ratio", "error / tolerance", fmt=sig3, numeric=True),
    Col("envelope", "envelope", fmt=sig3, numeric=True),
    Col("used", "of envelope", fmt=fmt_percent, numeric=True),
    Col("how", "not a ratio", cls="nowrap"), Col("example", cls="case"),
    Col("reproducer", "reproducer", html=True, cls="nowrap"),
]
OUTSIDE_COLS = [
    Col("adapter", cls="nowrap"), Col("entry", "divergence", html=True, cls="nowrap"), Col("case", cls="case"),
    Col("check", cls="nowrap"), Col("ratio", "error / tolerance", fmt=sig3, numeric=True),
    Col("envelope", fmt=sig3, numeric=True), Col("within_envelope", "not a ratio", cls="small"),
    Col("rerun", "rerun with", fmt=code, html=True), Col("reproducer", "reproducer", html=True, cls="nowrap"),
]
FAILURE_COLS = [
    Col("adapter", cls="nowrap"), Col("suite"), Col("case", cls="case"), Col("check", cls="nowrap"),
    Col("outcome", cls=outcome_class), Col("message", cls="small"), Col("rerun", "rerun with", fmt=code, html=True),
    Col("reproducer", "reproducer", html=True, cls="nowrap"),
]


def _script(path) -> str:
    """A link to a standalone reproducer beside the report (numpy and the framework only)."""
    if not isinstance(path, str):
        return "—"
    return f'<a href="{esc(path)}" title="a standalone script: exits 1 while the divergence exists">{esc(path)}</a>'


def with_scripts(rows: pd.DataFrame, res: Results, example: bool = False) -> pd.DataFrame:
    """``rows`` with a ``reproducer`` link for each record a script was written for (of the known table: its
    example record's)."""
    case, check = ("example_case", "example_check") if example else ("case", "check")
    keys = [(r["adapter"], r[case], str(r[check])) for _, r in rows.iterrows()]
    return rows.assign(reproducer=[_script(res.reproducers.get(k)) for k in keys]) if len(rows) else rows


def _entry(key, url) -> str:
    return f'<a href="{esc(url)}" title="{esc(url)}" rel="noopener noreferrer">{esc(key)}</a>' if url else esc(key)


def outside_block(outside: pd.DataFrame, res: Results) -> str:
    """Failures hiding behind a known divergence: shown first, boxed, whatever else the section holds."""
    rows = outside.assign(entry=[_entry(k, u) for k, u in zip(outside["divergence"], outside["link"], strict=True)])
    rows = with_scripts(rows, res)
    title = f"{plural(len(outside), 'record')} fell outside a known divergence's envelope"
    return (f'<div class="alert" role="alert"><b>{esc(title)}</b>'
            '<p class="note">A known cause matched these records, but their error is larger than the cause '
            "explains (or they raised or overflowed where it does not): they are failures, not known.</p>"
            + table(rows, with_machine(OUTSIDE_COLS, rows)) + "</div>")


def known_block(known: pd.DataFrame, res: Results) -> str:
    rows = known.assign(entry=[_entry(k, u) for k, u in zip(known["divergence"], known["link"], strict=True)])
    rows = with_scripts(rows, res, example=True)
    reasons = known.drop_duplicates("divergence")
    listed = "".join(f"<dt>{esc(r['divergence'])}</dt><dd>{esc(r['reason'])} {link(r['link'])}</dd>"
                     for _, r in reasons.iterrows())
    return ('<p class="note">Upstream behaviour the suites expect, per entry and adapter. Each entry explains '
            "errors up to its <em>envelope</em> (in multiples of a record's tolerance); records within it count "
            "as <em>known</em>, records beyond it fail. The numbers are those of the record closest to its "
            "envelope; records that raised or came out non-finite are counted apart.</p>"
            + table(rows, KNOWN_COLS)
            + f'<details class="reasons"><summary>Why each diverges ({plural(len(reasons), "entry", "entries")})'
            f'</summary><dl>{listed}</dl></details>')


def divergences_section(res: Results) -> str:
    parts = []
    outside = model.outside_known(res)
    if len(outside):
        parts.append(outside_block(outside, res))
    if len(model.verification(res)):
        parts.append("<h3>Known divergences</h3>")
        known = model.known(res)
        parts.append(known_block(known, res) if len(known) else empty("No known divergences showed in these results."))
    parts.append("<h3>Unexpected failures and errors</h3>")
    failed = model.failures(res)
    if len(failed):
        failed = with_scripts(failed, res)
        parts.append(table(failed, with_machine(FAILURE_COLS, failed)))
    else:
        parts.append(empty("None: every check passed, was skipped, or diverged as known."))
    return "\n".join(parts)
