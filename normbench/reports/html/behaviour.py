"""The behaviour section: what each adapter measurably does with each op, one small facts × adapters
table per op (registry order), side by side where the page is wide enough."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from .. import model
from ..formatting import MISSING, fmt_value
from ..html_elements import empty, esc
from ..model import BEHAVIOUR_FACTS, Results

MEASURED_VAR = BEHAVIOUR_FACTS["running variance"]


def _common(shown: list[str]) -> str | None:
    """The value most adapters share (None on a tie, or with fewer than two values to compare)."""
    ranked = Counter(s for s in shown if s != MISSING).most_common(2)
    return ranked[0][0] if len(ranked) == 2 and ranked[0][1] > ranked[1][1] else None


def op_table(title: str, facts: pd.DataFrame, broken: set[tuple[str, str]] = frozenset()) -> str:
    """One op's facts (rows) × adapters (columns). A cell that differs from the value most adapters
    share is highlighted; a measured running variance that breaks the adapter's declaration is a failure."""
    head = "".join(f'<th scope="col">{esc(a)}</th>' for a in facts.columns)
    rows = []
    for fact, values in facts.iterrows():
        shown = [fmt_value(v) for v in values]
        common = _common(shown)
        cells = []
        for adapter, s in zip(facts.columns, shown, strict=True):
            cls = "none" if s == MISSING else "differs" if common and s != common else ""
            if fact == MEASURED_VAR and (title, adapter) in broken:
                cls, s = "o-fail", f"{s} ✗"
            cells.append(f'<td class="{cls}">{esc(s)}</td>' if cls else f"<td>{esc(s)}</td>")
        rows.append(f'<tr><th scope="row">{esc(fact)}</th>{"".join(cells)}</tr>')
    return (f'<div class="op-block"><h4>{esc(title)}</h4><div class="scroll"><table class="matrix">\n'
            f'<thead><tr><th scope="col">behaviour</th>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table></div></div>")


def behaviour_section(res: Results) -> str:
    matrices = model.behaviour_matrices(res)
    if not matrices:
        return empty("No behaviour measured in these files.")
    broken = {(r["title"], r["adapter"]) for _, r in model.running_var_mismatches(res).iterrows()}
    note = ('<p class="note">What each adapter measurably does with each op, read from the records\' facts. '
            "Defaults come from a default-constructed layer (momentum also as the weight the new batch gets); "
            "<em>float16 in → out</em> is the output dtype for float16 input; <em>eps goes</em> "
            "<em>inside the sqrt</em> when the <code>eps0.1</code> case agrees with √(σ² + eps), else it "
            "<em>differs</em>; the running variance is what the layer stores after training steps (biased: "
            "divided by n, unbiased: by n − 1) and what the adapter declares (✗: it breaks its declaration, "
            "a failure). Highlighted cells differ from the value most adapters share; a dash means not "
            "measured.</p>")
    blocks = "".join(op_table(title, facts, broken) for title, facts in matrices)
    return note + f'<div class="op-blocks">{blocks}</div>'
