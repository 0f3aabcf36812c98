"""The search section: per adapter and op, the worst case ``normbench search`` found (failures first,
then known divergences, then the passes closest to their tolerance), with the command that reruns it;
then what each search covered, so a clean row says how hard it was looked for."""

from __future__ import annotations

from .. import search
from ..formatting import fmt_count, fmt_seconds, plural, sig3
from ..html_elements import Col, code, esc, outcome_class, table, with_machine
from ..model import Results

COLS = [
    Col("adapter", cls="nowrap"), Col("op", cls="nowrap"), Col("outcome", cls=outcome_class), Col("case", cls="case"),
    Col("check", cls="nowrap"), Col("ratio", "error / tolerance", fmt=sig3, numeric=True),
    Col("examples", fmt=fmt_count, numeric=True), Col("known", "known divergence", cls="nowrap"),
    Col("message", cls="small"), Col("rerun", "rerun with", fmt=code, html=True),
]

COVERED = [
    Col("adapter", cls="nowrap"), Col("op", cls="nowrap"), Col("examples", fmt=fmt_count, numeric=True),
    Col("shapes", "distinct shapes", fmt=fmt_count, numeric=True), Col("dtypes", cls="nowrap"),
    Col("seconds", "time", fmt=fmt_seconds, numeric=True),
    Col("budget_s", "budget share", fmt=fmt_seconds, numeric=True),
    Col("ended", "ended by", cls="nowrap"), Col("reached_ratio", "largest error / tolerance", fmt=sig3, numeric=True),
    Col("reached_case", "on case", cls="case"), Col("reached_check", "check", cls="nowrap"),
]


def search_section(res: Results) -> str:
    found = search.worst(res)
    tally = ", ".join(f"{n} {o}" for o, n in search.counts(found).items() if n)
    note = (f'<p class="note">Hypothesis searched {esc(plural(len(found), "adapter × op pair"))} ({esc(tally)}) '
            "for the input with the largest error / tolerance: shapes, dtypes, eps, affine, layout and input "
            "offsets and scales, each example running the forward, gradient and running-statistics checks. A failure "
            "is shrunk to a minimal case; where none was found, the row is the passing example closest to its "
            "tolerance. <em>examples</em> counts the cases run; the rerun command runs that case's checks again.</p>")
    covered = ('<p class="note">What each search covered: the cases it ran (shrink candidates included), their '
               "distinct shapes and dtypes, its time against its share of the adapter's budget, what ended it (the "
               "budget, the example count, a failure, or no case the adapter runs) and the largest error / tolerance "
               "it reached on any case.</p>")
    return note + table(found, with_machine(COLS, found)) + covered + table(found, with_machine(COVERED, found))
