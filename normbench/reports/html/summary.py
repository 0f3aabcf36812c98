"""The summary section: headline, warnings, outcome cards, the environment of each run, verdicts."""

from __future__ import annotations

import pandas as pd

from ...results.records import OUTCOMES
from .. import model
from ..formatting import MISSING, fmt_count
from ..html_elements import Col, count_class, empty, esc, table, td
from ..model import Results


def _headline(res: Results) -> str:
    state = "empty" if not len(res.checks) else ("bad" if model.unexpected(res) else "good")
    lines = "<br>".join(esc(line) for line in model.headlines(res))
    return f'<p class="headline {state}">{lines}</p>'


def _warnings(res: Results) -> str:
    """What may make these numbers less trustworthy, said next to the headline."""
    found = model.report_warnings(res)
    if not found:
        return ""
    items = "".join(f"<li>{esc(w)}</li>" for w in found)
    return f'<div class="warnings" role="note"><b>Read the timings with care</b><ul>{items}</ul></div>'


def summary_section(res: Results) -> str:
    checks = model.verification(res)
    parts = [_headline(res), _warnings(res)]
    if len(checks):
        counts = checks["outcome"].value_counts()
        cards = [("checks", len(checks), ""), ("adapters", checks["adapter"].nunique(), "")]
        cards += [(o, int(counts.get(o, 0)), o) for o in OUTCOMES]
        parts.append('<div class="cards">' + "".join(
            f'<div class="card {cls}"><b>{n:,}</b><span>{esc(label)}</span></div>' for label, n, cls in cards)
            + "</div>")
    parts.append("<h3>Environment</h3>")
    parts.append(_environments(model.runs(res)))
    if len(checks):
        parts.append("<h3>Verdicts</h3>")
        verdicts = model.verdicts(res)
        verdicts = verdicts.assign(total=verdicts[list(OUTCOMES)].sum(axis=1))
        cols = [Col("adapter", cls="nowrap"), Col("suite", cls="nowrap")]
        cols += [Col(o, fmt=fmt_count, numeric=True, cls=count_class(o)) for o in OUTCOMES]
        parts.append(table(verdicts, [*cols, Col("total", fmt=fmt_count, numeric=True)]))
    return "\n".join(p for p in parts if p)


WIDE_FIELDS = {"os", "versions", "threads", "allocator", "adapters missing (install with)"}  # small type


def _environments(runs: pd.DataFrame) -> str:
    """One column per run, one row per field; a field every run shares is one cell spanning them all."""
    if not len(runs):
        return empty("No results files.")
    shared, differ = model.split_runs(runs)
    names = list(runs["run"])
    head = "".join(f'<th scope="col">{esc(n)}</th>' for n in names)
    rows = []
    for field in model.RUN_FIELDS:
        small = "small" if field in WIDE_FIELDS else ""
        if field in shared:
            cells = td(shared[field], small, "shared" if len(names) > 1 else "", colspan=len(names))
        elif field in differ.index:
            cells = "".join(td(v, small, "none" if v == MISSING else "") for v in differ.loc[field])
        else:
            continue
        rows.append(f'<tr><th scope="row">{esc(field)}</th>{cells}</tr>')
    note = ('<p class="note">A run\'s fields summarise its results files (one per process): dates first–last, '
            "memory bandwidth lowest–highest. A value every run shares spans the columns.</p>"
            if len(names) > 1 else "")
    return (note + f'<div class="scroll"><table class="matrix environments">\n<thead><tr><th scope="col">run</th>'
            f"{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")

