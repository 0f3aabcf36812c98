"""The synchronized BatchNorm section: what each adapter's cross-replica BatchNorm does (a facts
table, one row per adapter) and its error against the global batch per replica layout (a heatmap
whose cells read like the agreement section's)."""

from __future__ import annotations

import pandas as pd

from ...results.kinds import Outcome
from .. import synchronized as sync
from ..formatting import MISSING, plural
from ..html_elements import empty, esc, outcome_class
from ..model import Results
from .agreement import heat_cell, heatmap_legend

FACT_CLASSES = {Outcome.PASS: "", Outcome.SKIP: "o-skip"}  # a fact that holds reads plain; problems are coloured

NOTE = ('<p class="note">Each global batch is split over data-parallel replicas (equal, uneven, one sample on a '
        "replica, masked) and run on the framework's own engine; every replica's output, dx, the "
        "replica-summed dγ and dβ, the running statistics after several steps and inference are compared "
        "with the float64 global batch. <em>Count-weighted</em> comes from the forward output on unmasked "
        "uneven splits, which matches the global batch's statistics (yes), the unweighted average of the "
        "replicas' (as <code>lax.pmean</code> of per-device moments gives) or each replica's own; "
        "<em>masks</em> from masked cases the same way. A dash means not recorded; hover a cell for where "
        "it was read.</p>")


def _fact_cell(f: pd.Series) -> str:
    outcome = f["outcome"] if sync.given(f["outcome"]) else None
    cls = FACT_CLASSES.get(outcome, outcome_class(outcome)) if outcome else ""
    if f["text"] in (MISSING, sync.NOT_RUN):
        cls = "none"
    body = esc(f["text"])
    if sync.given(f["known"]):
        key = esc(f["known"])
        body += (f' (<a href="{esc(f["link"])}" title="{esc(f["link"])}" rel="noopener noreferrer">{key}</a>)'
                 if sync.given(f["link"]) else f" ({key})")
    title = f' title="{esc(f["detail"])}"' if sync.given(f["detail"]) else ""
    return f'<td class="{cls}"{title}>{body}</td>' if cls else f"<td{title}>{body}</td>"


def facts_table(facts: pd.DataFrame) -> str:
    """Adapters (rows) × facts (columns, sync.FACTS order)."""
    head = "".join(f'<th scope="col">{esc(label)}</th>' for label in sync.FACTS.values())
    rows = []
    for adapter, g in facts.groupby("adapter", sort=True):
        by_fact = g.set_index("fact")
        cells = "".join(_fact_cell(by_fact.loc[key]) for key in sync.FACTS)
        rows.append(f'<tr><th scope="row">{esc(adapter)}</th>{cells}</tr>')
    return ('<div class="scroll"><table class="matrix sync-facts">\n<thead><tr><th scope="col">adapter</th>'
            f"{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def _note(c: pd.Series) -> str:
    """What a cell's tooltip adds to the heatmap's: the known divergence, or the framework's message."""
    if c["outcome"] == Outcome.KNOWN and sync.given(c["known"]):
        return f"known divergence: {c['known']}"
    return str(c["message"]) if c["outcome"] in (Outcome.SKIP, Outcome.ERROR) and sync.given(c["message"]) else ""


def errors_table(cells: pd.DataFrame) -> str:
    """Replica layouts (rows, grouped by number of replicas) × adapters."""
    adapters = sorted(cells["adapter"].unique())
    head = "".join(f'<th scope="col">{esc(a)}</th>' for a in adapters)
    rows = []
    for replicas, group in cells.groupby("replicas", sort=True):
        rows.append(f'<tr class="group"><th scope="rowgroup" colspan="{len(adapters) + 1}">'
                    f"{esc(plural(int(replicas), 'replica'))}</th></tr>")
        by_cell = {(c["case"], c["adapter"]): c for _, c in group.iterrows()}
        for case, layout in dict.fromkeys(zip(group["case"], group["layout"], strict=True)):
            tds = "".join(heat_cell(c, _note(c)) if (c := by_cell.get((case, a))) is not None else heat_cell(None)
                          for a in adapters)
            rows.append(f'<tr><th scope="row" title="{esc(case)}">{esc(layout)}</th>{tds}</tr>')
    return (f'<div class="scroll fit"><table class="heatmap sync-errors">\n<thead><tr><th scope="col">replicas · '
            f"global batch</th>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def synchronized_section(res: Results) -> str:
    facts, cells = sync.facts(res), sync.cells(res)
    parts = [NOTE, "<h3>Behaviour across replicas</h3>",
             facts_table(facts) if len(facts) else empty("No synchronized records in these files.")]
    parts.append("<h3>Error against the global batch</h3>")
    if len(cells):
        parts += [heatmap_legend(skip=True), errors_table(cells)]
    else:
        parts.append(empty("No replica case was run."))
    return "\n".join(parts)
