"""The agreement section: a heatmap table of error / tolerance per case and adapter, and the passing
checks closest to their tolerance."""

from __future__ import annotations

import pandas as pd

from ...results.kinds import Outcome
from .. import model
from ..formatting import number, plural, sig3
from ..html_elements import Col, empty, esc, outcome_class, table, with_machine
from ..model import Results

HEATMAP_CASES = 60
AGREEMENT_ROWS = 50

PASS_BINS = (0.001, 0.01, 0.1, 0.3, 0.6)  # error / tolerance bin edges of a passing cell: green → amber
MARKS = {Outcome.KNOWN: "K", Outcome.FAIL: "✗", Outcome.ERROR: "✗"}


def _pass_bin(ratio: float | None) -> int:
    """Which shade a passing cell gets: 0 (far inside its tolerance) to 5 (within 0.6–1 of it)."""
    return 0 if ratio is None else sum(ratio >= edge for edge in PASS_BINS)


def _cell_text(outcome: str, ratio: float | None) -> str:
    mark = MARKS.get(outcome, "")
    value = "error" if outcome == Outcome.ERROR and ratio is None else sig3(ratio)
    return f"{mark} {value}".strip() if outcome != Outcome.PASS else value


def _cell_title(c: pd.Series) -> str:
    """The hover text of a heatmap cell: the check that speaks for it, in numbers (the case is the
    row's header, which stays in view)."""
    checks = int(c["checks"])
    return "\n".join([
        f"{c['adapter']}: {c['check']} {c['outcome']}" + (f" (worst of {checks} checks)" if checks > 1 else ""),
        f"error {sig3(c['err_eps'])} eps, max abs error {sig3(c['max_abs_err'])}",
        f"tolerance {sig3(c['tolerance'])}, error / tolerance {sig3(c['ratio'])}"])


def heat_cell(c: pd.Series | None, note: str = "") -> str:
    """One heatmap cell from the check that speaks for it; ``note`` adds a line to its tooltip. A
    cell whose every check skipped says so, its reason (``note``) in the tooltip."""
    if c is None:
        return '<td class="h-none" title="not compared"></td>'
    if c["outcome"] == Outcome.SKIP:
        return f'<td class="h-skip" title="{esc(note or "skipped")}">skip</td>'
    ratio = number(c["ratio"])
    outcome = c["outcome"] if c["outcome"] in MARKS else Outcome.PASS
    cls = f"h-pass h{_pass_bin(ratio)}" if outcome == Outcome.PASS else f"h-{outcome}"
    title = _cell_title(c) + (f"\n{note}" if note else "")
    return f'<td class="{cls}" title="{esc(title)}">{esc(_cell_text(outcome, ratio))}</td>'


def heatmap_table(cells: pd.DataFrame, limit: int = HEATMAP_CASES) -> str:
    """Cases (rows, most interesting first, the first ``limit``) × adapters, each cell the worst
    error / tolerance with its outcome: text to search and select, a tooltip per cell."""
    adapters = sorted(cells["adapter"].unique())
    cases = list(dict.fromkeys(cells["case"]))[:limit]
    by_cell = {(c["case"], c["adapter"]): c for _, c in cells[cells["case"].isin(cases)].iterrows()}
    head = "".join(f'<th scope="col">{esc(a)}</th>' for a in adapters)
    rows = [f'<tr><th scope="row">{esc(case)}</th>'
            + "".join(heat_cell(by_cell.get((case, a))) for a in adapters) + "</tr>" for case in cases]
    return (f'<div class="scroll fit"><table class="heatmap">\n<thead><tr><th scope="col">case</th>{head}</tr>'
            "</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def heatmap_legend(skip: bool = False, cell: str = "that case on that adapter") -> str:
    """The shades and marks of a heatmap; ``skip`` where its cells can be skips (heat_cell), ``cell``
    what a cell stands for."""
    edges = ["0", *(sig3(e) for e in PASS_BINS), "1"]
    shades = "".join(f'<span class="h-pass h{i}">{edges[i]}–{edges[i + 1]}</span>' for i in range(len(edges) - 1))
    skipped = '<span class="h-skip">skip</span> not run (reason on hover) · ' if skip else ""
    return (f'<p class="legend">Each cell is the worst error / tolerance of {esc(cell)}. Pass: {shades} · '
            '<span class="h-known">K</span> known divergence · <span class="h-fail">✗</span> fail · '
            f'<span class="h-error">✗</span> error · {skipped}<span class="h-none">&nbsp;&nbsp;</span> not compared. '
            "Hover a cell for its check, error in eps, max abs error and tolerance.</p>")



AGREEMENT_COLS = [
    Col("adapter", cls="nowrap"), Col("suite"), Col("case", cls="case"), Col("check", cls="nowrap"),
    Col("dtype"), Col("outcome", cls=outcome_class),
    Col("err_eps", "error (eps)", fmt=sig3, numeric=True),
    Col("max_abs_err", "max abs error", fmt=sig3, numeric=True),
    Col("tolerance", fmt=sig3, numeric=True), Col("ratio", "error / tolerance", fmt=sig3, numeric=True),
]


def _elsewhere(res: Results) -> str:
    """Where the derivative and mixed-precision records are, when these files hold any."""
    c = model.verification(res)
    if not len(c) or not (model.derivative(c) | model.mixed(c)).any():
        return ""
    return (' Forward-mode and second-order derivatives and mixed-precision paths are in <a href="#derivatives">'
            "a section of their own</a>.")


def agreement_section(res: Results) -> str:
    cells = model.agreement_cells(res)
    if not len(cells):
        return empty("No compared checks in these files.")
    cases = cells["case"].nunique()
    shown = min(HEATMAP_CASES, cases)
    parts = [f'<p class="note">{plural(cases, "case")} compared against the reference'
             + (f"; the {shown} most telling are shown: failures first, then the highest error / tolerance."
                if shown < cases else ", failures first, then the highest error / tolerance.")
             + _elsewhere(res) + "</p>",
             heatmap_legend(), heatmap_table(cells)]
    closest = model.closest(res)
    parts.append("<h3>Closest to tolerance</h3>")
    if len(closest):
        top = closest.head(AGREEMENT_ROWS)
        parts.append(f'<p class="note">The {plural(len(top), "passing check")} with the highest error / tolerance '
                     f"(of {len(closest):,}): how much headroom agreement has. Known divergences and failures are "
                     'listed under <a href="#divergences">Divergences and failures</a>.</p>')
        cols = [c for c in AGREEMENT_COLS if c.key != "outcome"]  # every one passed
        parts.append(table(top, with_machine(cols, top)))
    else:
        parts.append(empty("No passing compared checks."))
    return "\n".join(parts)

