"""The derivatives and mixed-precision section: forward-mode and second-order derivatives as a
heatmap (adapters × op and derivative, cells as the agreement section's), and what each adapter's
mixed-precision path does (a matrix, one row per path and input dtype)."""

from __future__ import annotations

import pandas as pd

from ...results.kinds import Check, Outcome
from .. import derivatives as deriv
from .. import mixed
from ..formatting import MISSING, plural
from ..html_elements import code, esc, link, outcome_class
from ..model import Results
from .agreement import heat_cell, heatmap_legend

# the heatmap's sub-headers
SHORT = {Check.JVP: "jvp", Check.SECOND_ORDER_DX: "2nd dx", Check.SECOND_ORDER_DGAMMA: "2nd dγ"}
FLOAT32_CLASSES = {Outcome.PASS: "", Outcome.SKIP: "none"}  # a verdict that holds reads plain; problems are coloured
MIXED_HEAD = ("path: how it is asked for, where it is documented", "dtype", "ops", "compute (documented)", "output",
              "running statistics", "gradients (dx; dγ)", "float32 accumulation?", "worst error / tolerance")

DERIVATIVES_NOTE = (
    '<p class="note">Forward mode (<em>jvp</em>: the derivative of the output along a tangent of x, γ and β, '
    "by the framework's forward-mode AD) and second order (<em>2nd dx</em>, <em>2nd dγ</em>: ∂⟨dx, v⟩/∂x and "
    "∂⟨dx, v⟩/∂γ, differentiating the framework's own backward pass), each against the analytic float64 "
    "derivative. A cell is the worst error / tolerance over the op's cases; hover it for the case and the "
    "outcome counts. These checks are left out of the agreement heatmap, whose case names they share.</p>")
MIXED_NOTE = (
    '<p class="note">Each framework\'s mixed-precision path (half-precision inputs, float32 parameters and '
    "running statistics), one row per path and input dtype. <em>Compute</em> is the dtype the path documents "
    "for the op's statistics and normalization, which its tolerance is derived for; output, running statistics "
    "and gradients are the dtypes the layer returned. <em>float32 accumulation?</em> says whether every record "
    "of a path documenting float32 compute passed against that bound (else the worst error / tolerance, op and "
    "check). Where a fact differs between ops, each value names its ops.</p>")


def _note(c: pd.Series) -> str:
    """What a cell's tooltip adds to the heatmap's: the case and the outcome counts, with the known
    divergence or the framework's message (a skip's reason first)."""
    lines = [f"worst case: {c['case']}", f"{plural(int(c['checks']), 'check')}: {c['tally']}"]
    if c["outcome"] == Outcome.KNOWN and isinstance(c["known"], str):
        lines.append(f"known divergence: {c['known']}")
    elif c["outcome"] == Outcome.SKIP and isinstance(c["message"], str):
        lines = [c["message"], lines[1]]
    elif c["outcome"] == Outcome.ERROR and isinstance(c["message"], str):
        lines.append(c["message"])
    return "\n".join(lines)


def _cell(c: pd.Series | None, first: bool) -> str:
    """A heatmap cell; the first of an op's group starts with a rule."""
    cell = heat_cell(c, _note(c)) if c is not None else heat_cell(None)
    return cell.replace('<td class="', '<td class="op-start ', 1) if first else cell


def derivatives_table(cells: pd.DataFrame) -> str:
    """Adapters (rows) × op (column groups, registry order) and derivative (sub-columns)."""
    ops = list(dict.fromkeys(zip(cells["op"], cells["title"], strict=True)))
    checks = [c for c in deriv.LABELS if c in set(cells["check"])]
    top = "".join(f'<th scope="colgroup" colspan="{len(checks)}">{esc(title)}</th>' for _, title in ops)
    start = ' class="op-start"'
    sub = "".join(f'<th scope="col"{start if i == 0 else ""} title="{esc(deriv.LABELS[c])}">{esc(SHORT[c])}</th>'
                  for _ in ops for i, c in enumerate(checks))
    by_cell = {(c["adapter"], c["op"], c["check"]): c for _, c in cells.iterrows()}
    rows = []
    for adapter in sorted(cells["adapter"].unique()):
        tds = "".join(_cell(by_cell.get((adapter, op, check)), first=i == 0)
                      for op, _ in ops for i, check in enumerate(checks))
        rows.append(f'<tr><th scope="row">{esc(adapter)}</th>{tds}</tr>')
    return (f'<div class="scroll fit"><table class="heatmap derivatives">\n<thead>'
            f'<tr><th scope="col" rowspan="2">adapter</th>{top}</tr><tr>{sub}</tr></thead>\n<tbody>\n'
            + "\n".join(rows) + "\n</tbody></table></div>")


def _doc(v) -> str:
    """The path's documentation: a link where it is a URL, else the reference as code."""
    if not isinstance(v, str) or not v:
        return MISSING
    return link(v) if v.startswith(("http://", "https://")) else code(v)


def _td(text: str, cls: str = "", title: str = "", colspan: int = 1) -> str:
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{esc(title)}"' if title else "")
    attrs += f' colspan="{colspan}"' if colspan > 1 else ""
    return f"<td{attrs}>{text}</td>"


def _plain(v) -> str:
    return esc(v) if isinstance(v, str) and v else MISSING


def _path_cells(r: pd.Series, every: list[str]) -> str:
    ops = _td(esc(mixed.ops_label(r["ops"], every)), "ops", ", ".join(r["ops"]))
    if not r["path"]:
        return (_td("no path", "none") + _td(esc(r["dtype"])) + ops
                + _td(esc(r["reason"]), "o-skip", r["tally"], colspan=len(MIXED_HEAD) - 3))
    outcome = r["float32_outcome"] if isinstance(r["float32_outcome"], str) else None
    f32 = FLOAT32_CLASSES.get(outcome, outcome_class(outcome)) if outcome else ""
    note = f"worst case: {r['case']}\n{r['tally']}" + (f"\nknown divergence: {r['known']}" if r["known"] else "")
    if r["outcome"] in (Outcome.SKIP, Outcome.ERROR) and isinstance(r["message"], str):
        note = f"{r['message']}\n{note}"
    how = code(r["how"]) if isinstance(r["how"], str) else MISSING
    doc = _doc(r["doc_link"])
    cells = [_td(how + (f'<span class="doc">{doc}</span>' if doc != MISSING else ""), "how"), _td(esc(r["dtype"])), ops,
             *(_td(_plain(r[k]), "" if isinstance(r[k], str) and r[k] != MISSING else "none")
               for k in ("compute", "output", "running", "grads")),
             _td(_plain(r["float32"]), f"verdict {f32}".strip()), heat_cell(r, note)]
    return "".join(cells)


def mixed_table(paths: pd.DataFrame) -> str:
    """Paths (rows, grouped by adapter) × what they do (MIXED_HEAD)."""
    every = list(dict.fromkeys(t for ops in paths["ops"] for t in ops))
    head = "".join(f'<th scope="col">{esc(h)}</th>' for h in MIXED_HEAD)
    rows = []
    for adapter, g in paths.groupby("adapter", sort=False):
        rows.append(f'<tr class="group"><th scope="rowgroup" colspan="{len(MIXED_HEAD)}">{esc(adapter)}</th></tr>')
        rows += [f"<tr>{_path_cells(r, every)}</tr>" for _, r in g.iterrows()]
    return ('<div class="scroll"><table class="matrix mixed-paths">\n'
            f"<thead><tr>{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def derivatives_section(res: Results) -> str:
    cells, paths = deriv.cells(res), mixed.paths(res)
    parts = []
    if len(cells):
        legend = heatmap_legend(skip=True, cell="that derivative of that op on that adapter")
        parts += ["<h3>Derivatives</h3>", DERIVATIVES_NOTE, legend, derivatives_table(cells)]
    if len(paths):
        parts += ["<h3>Mixed precision</h3>", MIXED_NOTE, mixed_table(paths)]
    return "\n".join(parts)
