"""The HTML report: one self-contained page (inline CSS, inline SVG charts, no fetches).

Every number comes from :mod:`normbench.reports.model`. The page reads fully without
JavaScript; a small inline script only makes tables sortable by clicking their headers.
"""

from __future__ import annotations

import datetime as dt
import html
import io
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd
from matplotlib import colormaps, rc_context
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..bench import OVERLAP_CORES
from ..records import OUTCOMES
from . import model
from .formatting import (  # noqa: F401 - re-exported: html.sig3, html.fmt_time, … are the public names
    MISSING,
    fixed3,
    fmt_bool,
    fmt_count,
    fmt_date,
    fmt_gbps,
    fmt_percent,
    fmt_ratio,
    fmt_seconds,
    fmt_time,
    fmt_value,
    missing,
    number,
    plural,
    sig3,
    span,
)
from .model import Results

SECTIONS = (
    ("summary", "Summary"),
    ("behaviour", "Behaviour"),
    ("agreement", "Agreement"),
    ("divergences", "Divergences and failures"),
    ("speed", "Speed"),
)
HEATMAP_CASES = 60
AGREEMENT_ROWS = 50

CSS = """
:root {
  --fg: #1f2328; --muted: #656d76; --line: #d8dee4; --bg: #ffffff; --zebra: #f6f8fa; --head: #eef1f4;
  --accent: #0b5cad; --pass: #1a7f37; --pass-bg: #dafbe1; --fail: #b3261e; --fail-bg: #ffebe9;
  --known: #8a5a00; --known-bg: #fff4d6; --error: #7d2ea8; --error-bg: #f5e8ff;
  --skip: #656d76; --skip-bg: #eef1f4;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body {
  margin: 0; color: var(--fg); background: var(--bg);
  font: 15px/1.55 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    "Noto Sans", "Liberation Sans", sans-serif;
}
main, header > div { max-width: 1320px; margin: 0 auto; padding: 0 28px; }
header { background: #17212b; color: #f0f3f6; padding: 26px 0 20px; }
header h1 { margin: 0 0 4px; font-size: 26px; font-weight: 650; letter-spacing: -0.01em; }
header .meta { color: #b7c0c9; font-size: 13.5px; }
header code { color: #e6edf3; background: rgba(255, 255, 255, 0.08); }
nav.toc { margin: 14px 0 0; font-size: 14px; }
nav.toc ol { list-style: none; display: flex; flex-wrap: wrap; gap: 6px 8px; margin: 0; padding: 0; }
nav.toc a {
  display: inline-block; color: #e6edf3; text-decoration: none; padding: 3px 11px;
  border: 1px solid rgba(255, 255, 255, 0.22); border-radius: 999px;
}
nav.toc a:hover { background: rgba(255, 255, 255, 0.12); }
section { padding: 8px 0 18px; border-bottom: 1px solid var(--line); }
section:last-child { border-bottom: 0; }
h2 { font-size: 21px; font-weight: 650; margin: 26px 0 10px; scroll-margin-top: 12px; }
h3 { font-size: 16px; font-weight: 620; margin: 22px 0 8px; }
p { margin: 6px 0 10px; max-width: 88ch; }
p.note, .muted { color: var(--muted); }
p.note { font-size: 13.5px; }
a { color: var(--accent); }
code {
  font: 12.5px/1.4 ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace;
  background: var(--zebra); padding: 1px 5px; border-radius: 4px; word-break: break-all;
}
.headline {
  margin: 16px 0 12px; padding: 12px 16px; border-left: 5px solid var(--pass); background: var(--pass-bg);
  border-radius: 4px; font-size: 16px; font-weight: 550; max-width: none;
}
.headline.bad { border-left-color: var(--fail); background: var(--fail-bg); }
.headline.empty { border-left-color: var(--skip); background: var(--skip-bg); font-weight: 450; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0 6px; }
.card { min-width: 112px; padding: 8px 14px; border: 1px solid var(--line); border-radius: 6px; }
.card b { display: block; font-size: 22px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card span { color: var(--muted); font-size: 12.5px; text-transform: uppercase; letter-spacing: 0.04em; }
.card.pass b { color: var(--pass); } .card.fail b { color: var(--fail); } .card.known b { color: var(--known); }
.card.error b { color: var(--error); } .card.skip b { color: var(--skip); }
.scroll { overflow-x: auto; margin: 6px 0 12px; border: 1px solid var(--line); border-radius: 6px; }
.scroll.fit { width: fit-content; max-width: 100%; }
table { border-collapse: collapse; width: 100%; font-size: 13.5px; }
th, td { padding: 5px 10px; text-align: left; vertical-align: top; border-bottom: 1px solid var(--line); }
thead th {
  background: var(--head); font-weight: 600; white-space: nowrap; border-bottom: 1px solid #c4ccd4;
  position: relative;
}
tbody tr:nth-child(even) { background: var(--zebra); }
tbody tr:hover { background: #eaf2fb; }
tbody tr:last-child td { border-bottom: 0; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.nowrap { white-space: nowrap; }
td.small { font-size: 12.5px; color: #3d444d; min-width: 11em; overflow-wrap: anywhere; }
td.case { font-size: 12.5px; overflow-wrap: anywhere; min-width: 16em; }
table.matrix tbody th { font-weight: 600; white-space: nowrap; width: 1%; }
table.environments td { min-width: 16em; }
table.environments td.shared { color: #3d444d; text-align: center; }
td.prose { min-width: 26em; }
td.none { color: #9aa3ac; }
td.best { font-weight: 650; color: var(--pass); }
td.differs { background: var(--known-bg); font-weight: 600; }
td.o-pass { color: var(--pass); background: var(--pass-bg); font-weight: 600; }
td.o-fail { color: var(--fail); background: var(--fail-bg); font-weight: 650; }
td.o-known { color: var(--known); background: var(--known-bg); font-weight: 600; }
td.o-error { color: var(--error); background: var(--error-bg); font-weight: 650; }
td.o-skip { color: var(--skip); background: var(--skip-bg); }
td.zero { color: #b0b7be; }
td.loaded { color: var(--fail); font-weight: 600; }
h4 { font-size: 13.5px; font-weight: 600; margin: 14px 0 4px; color: var(--muted); text-transform: uppercase;
  letter-spacing: 0.04em; }
.warnings {
  margin: 0 0 12px; padding: 10px 16px; border-left: 5px solid var(--known); background: var(--known-bg);
  border-radius: 4px; font-size: 14px;
}
.warnings ul { margin: 4px 0 0; padding-left: 20px; }
table.heatmap { width: auto; font-size: 12px; }
table.heatmap th, table.heatmap td { padding: 3px 8px; }
table.heatmap thead th + th { text-align: right; }
table.heatmap tbody th {
  font-weight: 500; white-space: nowrap; position: sticky; left: 0; background: var(--bg); z-index: 1;
  border-right: 1px solid var(--line);
}
table.heatmap tbody tr:nth-child(even) th { background: var(--zebra); }
table.heatmap td { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; min-width: 6.5em;
  border-left: 2px solid var(--bg); }
.h0 { background: #eef8f0; color: #3d6b47; } .h1 { background: #d6f0dc; color: #24582f; }
.h2 { background: #b9e4c2; color: #1c4d27; } .h3 { background: #e4e9a6; color: #4a4a10; }
.h4 { background: #ffdc8f; color: #5c3d00; } .h5 { background: #f6b24f; color: #422800; font-weight: 650; }
.h-known { color: var(--known); font-weight: 600;
  background: repeating-linear-gradient(135deg, #f1ead9 0 5px, #e2d8bf 5px 10px); }
.h-fail { background: #ffc9c3; color: #8f1d17; font-weight: 700; }
.h-error { background: var(--fail); color: #fff; font-weight: 700; }
.h-none { background: transparent; }
p.legend { font-size: 13px; line-height: 2; max-width: none; }
p.legend span { padding: 2px 7px; border-radius: 3px; white-space: nowrap; }
p.legend span.h-none { border: 1px dashed #c4ccd4; }
table.js-sort thead th { cursor: pointer; user-select: none; padding-right: 22px; }
table.js-sort thead th:hover { background: #e1e6eb; }
table.js-sort thead th::after { content: "\\2195"; position: absolute; right: 7px; color: #9aa3ac; font-size: 11px; }
table.js-sort thead th[aria-sort="ascending"]::after { content: "\\25B2"; color: var(--fg); }
table.js-sort thead th[aria-sort="descending"]::after { content: "\\25BC"; color: var(--fg); }
.bar { display: flex; align-items: center; gap: 8px; justify-content: flex-end; }
.bar i { display: block; height: 9px; background: #6e9fd1; border-radius: 2px; min-width: 1px; }
.bar .track { width: 160px; display: flex; justify-content: flex-start; background: #e7ecf1; border-radius: 2px; }
figure { margin: 10px 0 18px; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 13px; margin-top: 4px; max-width: 100ch; }
.charts { display: grid; grid-template-columns: repeat(auto-fit, minmax(520px, 1fr)); gap: 8px 24px; }
footer { color: var(--muted); font-size: 12.5px; padding: 18px 0 30px; }
@media print { header { background: none; color: var(--fg); } nav.toc { display: none; } }
"""

SCRIPT = """
(function () {
  "use strict";
  function key(cell) {
    var v = cell.getAttribute("data-v");
    if (v !== null) { return v === "" ? NaN : parseFloat(v); }
    return cell.textContent.trim().toLowerCase();
  }
  function compare(a, b) {
    var an = typeof a === "number", bn = typeof b === "number";
    if (an && bn) {
      if (isNaN(a) || isNaN(b)) { return isNaN(a) - isNaN(b); }
      return a - b;
    }
    return String(a).localeCompare(String(b), undefined, {numeric: true});
  }
  function sortBy(table, th, col) {
    var ascending = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows).map(function (row, i) {
      return {row: row, key: key(row.cells[col]), i: i};
    });
    rows.sort(function (a, b) {
      var c = compare(a.key, b.key);
      if (typeof a.key === "number" && (isNaN(a.key) || isNaN(b.key))) { return c || a.i - b.i; }
      return (ascending ? c : -c) || a.i - b.i;
    });
    rows.forEach(function (r) { body.appendChild(r.row); });
  }
  Array.prototype.forEach.call(document.querySelectorAll("table.sortable"), function (table) {
    if (!table.tHead || !table.tBodies.length) { return; }
    table.classList.add("js-sort");
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      th.tabIndex = 0;
      th.title = "Sort by " + th.textContent.trim();
      th.addEventListener("click", function () { sortBy(table, th, col); });
      th.addEventListener("keydown", function (e) {
        if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortBy(table, th, col); }
      });
    });
  });
})();
"""


def esc(v) -> str:
    return html.escape(str(v), quote=True)


# ---------------------------------------------------------------- tables


@dataclass
class Col:
    """One table column: how to show a value, and whether it is a number (right-aligned, sorted as one)."""

    key: str
    label: str | None = None
    fmt: Callable[[object], str] = fmt_value
    numeric: bool = False
    cls: Callable[[object], str] | str = ""
    html: bool = False  # fmt returns markup it has escaped itself

    def cell(self, value) -> str:
        classes = [self.cls(value) if callable(self.cls) else self.cls]
        attrs = ""
        if self.numeric:
            classes.append("num")
            x = number(value)
            attrs = f' data-v="{"" if x is None else (str(x).replace("inf", "Infinity") if math.isinf(x) else x)}"'
        text = self.fmt(value)
        if text == "—" and not self.html:
            classes.append("none")
        body = text if self.html else esc(text)
        cls = " ".join(c for c in classes if c)
        cls = f' class="{cls}"' if cls else ""
        return f"<td{cls}{attrs}>{body}</td>"

    def header(self) -> str:
        cls = ' class="num"' if self.numeric else ""
        return f'<th{cls} scope="col">{esc(self.label or self.key)}</th>'


def table(df: pd.DataFrame, cols: Iterable[Col], sortable: bool = True) -> str:
    cols = [c for c in cols if c.key in df.columns]
    head = "".join(c.header() for c in cols)
    rows = "\n".join(
        "<tr>" + "".join(c.cell(row[c.key]) for c in cols) + "</tr>" for _, row in df.iterrows())
    cls = ' class="sortable"' if sortable else ""
    return (f'<div class="scroll"><table{cls}>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody></table></div>")


def outcome_class(v) -> str:
    return f"o-{v}" if v in OUTCOMES else ""


def _count_class(outcome: str) -> Callable[[object], str]:
    return lambda v: f"o-{outcome}" if (number(v) or 0) > 0 else "zero"


def _empty(message: str) -> str:
    return f'<p class="muted">{message}</p>'


def _with_machine(cols: list[Col], df: pd.DataFrame) -> list[Col]:
    """Show which machine (and run) a row came from only when the results span several."""
    extra = [Col(key, cls="nowrap") for key in ("machine", "run") if key in df and df[key].nunique() > 1]
    return [*cols, *extra]


# ---------------------------------------------------------------- charts


def _svg(fig: Figure, name: str) -> str:
    """The figure as inline SVG markup: no XML prolog or metadata, ids scoped to this chart, and
    labels as text (selectable, searchable, a tenth of the size of glyph outlines)."""
    FigureCanvasAgg(fig)
    buf = io.StringIO()
    with rc_context({"svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    svg = re.sub(r"font-family: [^;\"]+", "font-family: inherit", svg)  # the page's font, not a list per label
    prefix = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    svg = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', svg)
    svg = re.sub(r'href="#([^"]+)"', rf'href="#{prefix}-\1"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", rf"url(#{prefix}-\1)", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{esc(name)}" ', 1)


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=96)
    fig.set_layout_engine("constrained")
    return fig


def _style(ax) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    for spine in ax.spines.values():
        spine.set_color("#8c959f")
    ax.tick_params(colors="#3d444d", labelsize=8.5)
    ax.grid(True, which="major", color="#d8dee4", linewidth=0.7)
    ax.grid(True, which="minor", color="#eef1f4", linewidth=0.5)
    ax.set_axisbelow(True)


def _label(text) -> str:
    """Plain text for matplotlib: a dollar sign must not start mathtext."""
    return str(text).replace("$", r"\$")


def _adapter_colours(adapters: Iterable[str]) -> dict[str, tuple]:
    palette = colormaps["tab10"].colors
    return {a: palette[i % len(palette)] for i, a in enumerate(sorted(set(adapters)))}


# ---------------------------------------------------------------- agreement heatmap

PASS_BINS = (0.001, 0.01, 0.1, 0.3, 0.6)  # error / tolerance bin edges of a passing cell: green → amber
MARKS = {"known": "K", "fail": "✗", "error": "✗"}


def _pass_bin(ratio: float | None) -> int:
    """Which shade a passing cell gets: 0 (far inside its tolerance) to 5 (within 0.6–1 of it)."""
    return 0 if ratio is None else sum(ratio >= edge for edge in PASS_BINS)


def _cell_text(outcome: str, ratio: float | None) -> str:
    mark = MARKS.get(outcome, "")
    value = "error" if outcome == "error" and ratio is None else sig3(ratio)
    return f"{mark} {value}".strip() if outcome != "pass" else value


def _cell_title(c: pd.Series) -> str:
    """The hover text of a heatmap cell: the check that speaks for it, in numbers (the case is the
    row's header, which stays in view)."""
    checks = int(c["checks"])
    return "\n".join([
        f"{c['adapter']}: {c['check']} {c['outcome']}" + (f" (worst of {checks} checks)" if checks > 1 else ""),
        f"error {sig3(c['err_eps'])} eps, max abs error {sig3(c['max_abs_err'])}",
        f"tolerance {sig3(c['tolerance'])}, error / tolerance {sig3(c['ratio'])}"])


def _heat_cell(c: pd.Series | None) -> str:
    if c is None:
        return '<td class="h-none" title="not compared"></td>'
    ratio = number(c["ratio"])
    outcome = c["outcome"] if c["outcome"] in MARKS else "pass"
    cls = f"h-pass h{_pass_bin(ratio)}" if outcome == "pass" else f"h-{outcome}"
    return f'<td class="{cls}" title="{esc(_cell_title(c))}">{esc(_cell_text(outcome, ratio))}</td>'


def heatmap_table(cells: pd.DataFrame, limit: int = HEATMAP_CASES) -> str:
    """Cases (rows, most interesting first, the first ``limit``) × adapters, each cell the worst
    error / tolerance with its outcome: text to search and select, a tooltip per cell."""
    adapters = sorted(cells["adapter"].unique())
    cases = list(dict.fromkeys(cells["case"]))[:limit]
    by_cell = {(c["case"], c["adapter"]): c for _, c in cells[cells["case"].isin(cases)].iterrows()}
    head = "".join(f'<th scope="col">{esc(a)}</th>' for a in adapters)
    rows = [f'<tr><th scope="row">{esc(case)}</th>'
            + "".join(_heat_cell(by_cell.get((case, a))) for a in adapters) + "</tr>" for case in cases]
    return (f'<div class="scroll fit"><table class="heatmap">\n<thead><tr><th scope="col">case</th>{head}</tr>'
            "</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def heatmap_legend() -> str:
    edges = ["0", *(sig3(e) for e in PASS_BINS), "1"]
    shades = "".join(f'<span class="h-pass h{i}">{edges[i]}–{edges[i + 1]}</span>' for i in range(len(edges) - 1))
    return ('<p class="legend">Each cell is the worst error / tolerance of that case on that adapter. '
            f"Pass: {shades} · "
            '<span class="h-known">K</span> known divergence · <span class="h-fail">✗</span> fail · '
            '<span class="h-error">✗</span> error · <span class="h-none">&nbsp;&nbsp;</span> not compared. '
            "Hover a cell for its check, error in eps, max abs error and tolerance.</p>")


def fmt_elements(v) -> str:
    """A count the way an axis reads it: 512, 65.5k, 1M, 16.8M."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _log_axis(ax, which: str, fmt: Callable[[float], str]) -> None:
    """Log ticks labelled in plain units; 1-2-5 steps when the axis spans less than two decades."""
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    decades = math.log10(high / low) if low > 0 and high > 0 else 0
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if decades >= 2 else (1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v) if v > 0 else ""))
    axis.set_minor_formatter(NullFormatter())


def _time_tick(v: float) -> str:
    return re.sub(r"\.0+ ", " ", fmt_time(v))


def sweep_svg(rows: pd.DataFrame, title: str, colours: dict[str, tuple]) -> str:
    """Median time against elements, log-log, one line per adapter, with the bandwidth bound dashed."""
    fig = _figure(6.4, 3.9)
    ax = fig.add_subplot()
    machines = sorted(rows["machine"].unique())
    variants = [v for v in ("mode", "dtype") if rows[v].nunique() > 1]
    combos = sorted({tuple(k) for k in rows[variants].astype(str).itertuples(index=False)}) if variants else [()]
    styles, markers = ["-", "--", ":", "-."], ["o", "s", "^", "D", "v"]
    for (machine, *variant, adapter), g in rows.groupby(["machine", *variants, "adapter"], sort=True):
        g = g.sort_values("elements")
        variant = tuple(map(str, variant))
        label = " ".join([adapter, *variant] + ([f"@ {machine}"] if len(machines) > 1 else []))
        ax.plot(g["elements"], g["median_s"], marker=markers[combos.index(variant) % len(markers)],
                markersize=4, linewidth=1.6, linestyle=styles[machines.index(machine) % len(styles)],
                color=colours.get(adapter), label=_label(label))
    bound = rows.dropna(subset=["roofline_frac"]).assign(t=lambda d: d["median_s"] * d["roofline_frac"])
    if len(bound):
        bound = bound.groupby("elements")["t"].min().sort_index()
        ax.plot(bound.index, bound.values, color="#57606a", linestyle=(0, (4, 3)), linewidth=1.1,
                label="memory-bandwidth bound")
    ax.set_xscale("log")
    ax.set_yscale("log")
    _style(ax)
    _log_axis(ax, "x", fmt_elements)
    _log_axis(ax, "y", _time_tick)
    ax.set_xlabel("elements", fontsize=9, color="#3d444d")
    ax.set_ylabel("median time", fontsize=9, color="#3d444d")
    ax.set_title(_label(title), fontsize=10.5, loc="left", color="#1f2328", weight="bold")
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=3)
    return _svg(fig, f"sweep {title}")


# ---------------------------------------------------------------- sections


def _section(key: str, body: str) -> str:
    title = dict(SECTIONS)[key]
    return f'<section aria-labelledby="{key}">\n<h2 id="{key}">{esc(title)}</h2>\n{body}\n</section>'


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


def _summary(res: Results) -> str:
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
        cols += [Col(o, fmt=fmt_count, numeric=True, cls=_count_class(o)) for o in OUTCOMES]
        parts.append(table(verdicts, [*cols, Col("total", fmt=fmt_count, numeric=True)]))
    return _section("summary", "\n".join(p for p in parts if p))


WIDE_FIELDS = {"os", "versions", "threads", "adapters missing (install with)"}  # set in small type


def _td(text: str, *classes: str, colspan: int = 1) -> str:
    cls = " ".join(c for c in classes if c)
    attrs = (f' class="{cls}"' if cls else "") + (f' colspan="{colspan}"' if colspan > 1 else "")
    return f"<td{attrs}>{esc(text)}</td>"


def _environments(runs: pd.DataFrame) -> str:
    """One column per run, one row per field; a field every run shares is one cell spanning them all."""
    if not len(runs):
        return _empty("No results files.")
    shared, differ = model.split_runs(runs)
    names = list(runs["run"])
    head = "".join(f'<th scope="col">{esc(n)}</th>' for n in names)
    rows = []
    for field in model.RUN_FIELDS:
        small = "small" if field in WIDE_FIELDS else ""
        if field in shared:
            cells = _td(shared[field], small, "shared" if len(names) > 1 else "", colspan=len(names))
        elif field in differ.index:
            cells = "".join(_td(v, small, "none" if v == MISSING else "") for v in differ.loc[field])
        else:
            continue
        rows.append(f'<tr><th scope="row">{esc(field)}</th>{cells}</tr>')
    note = ('<p class="note">A run\'s fields summarise its results files (one per process): dates first–last, '
            "memory bandwidth lowest–highest. A value every run shares spans the columns.</p>"
            if len(names) > 1 else "")
    return (note + f'<div class="scroll"><table class="matrix environments">\n<thead><tr><th scope="col">run</th>'
            f"{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def _behaviour(res: Results) -> str:
    matrix = model.behaviour(res).set_index("adapter")
    facts = matrix.loc[:, matrix.notna().any()].T  # a fact no adapter measured (float16 in a quick run) is no row
    head = "".join(f'<th scope="col">{esc(a)}</th>' for a in facts.columns)
    rows = []
    for fact, values in facts.iterrows():
        shown = [fmt_value(v) for v in values]
        present = Counter(s for s in shown if s != MISSING)
        ranked = present.most_common(2)
        common = ranked[0][0] if len(ranked) == 2 and ranked[0][1] > ranked[1][1] else None  # no tie
        cells = "".join(
            f'<td class="{"none" if s == MISSING else ("differs" if common and s != common else "")}">{esc(s)}</td>'
            for s in shown)
        rows.append(f'<tr><th scope="row">{esc(fact)}</th>{cells}</tr>')
    body = (f'<div class="scroll"><table class="matrix">\n<thead><tr><th scope="col">behaviour</th>{head}</tr>'
            f"</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")
    note = ('<p class="note">What each adapter measurably does, read from the records\' facts. '
            "Highlighted cells differ from the value most adapters share; a dash means not measured.</p>")
    return _section("behaviour", note + body)


AGREEMENT_COLS = [
    Col("adapter", cls="nowrap"), Col("suite"), Col("case", cls="case"), Col("check", cls="nowrap"),
    Col("dtype"), Col("outcome", cls=outcome_class),
    Col("err_eps", "error (eps)", fmt=sig3, numeric=True),
    Col("max_abs_err", "max abs error", fmt=sig3, numeric=True),
    Col("tolerance", fmt=sig3, numeric=True), Col("ratio", "error / tolerance", fmt=sig3, numeric=True),
]


def _agreement(res: Results) -> str:
    cells = model.agreement_cells(res)
    if not len(cells):
        return _section("agreement", _empty("No compared checks in these files."))
    cases = cells["case"].nunique()
    shown = min(HEATMAP_CASES, cases)
    parts = [f'<p class="note">{plural(cases, "case")} compared against the reference'
             + (f"; the {shown} most telling are shown: failures first, then the highest error / tolerance."
                if shown < cases else ", failures first, then the highest error / tolerance.") + "</p>",
             heatmap_legend(), heatmap_table(cells)]
    closest = model.closest(res)
    parts.append("<h3>Closest to tolerance</h3>")
    if len(closest):
        top = closest.head(AGREEMENT_ROWS)
        parts.append(f'<p class="note">The {plural(len(top), "passing check")} with the highest error / tolerance '
                     f"(of {len(closest):,}): how much headroom agreement has. Known divergences and failures are "
                     'listed under <a href="#divergences">Divergences and failures</a>.</p>')
        cols = [c for c in AGREEMENT_COLS if c.key != "outcome"]  # every one passed
        parts.append(table(top, _with_machine(cols, top)))
    else:
        parts.append(_empty("No passing compared checks."))
    return _section("agreement", "\n".join(parts))


def _link(v) -> str:
    if missing(v) or not v:
        return MISSING
    text = re.sub(r"^https?://(www\.)?", "", str(v))
    if len(text) > 42:
        parts = text.split("/")
        text = "/".join(parts[:3]) + "/…/" + parts[-1] if len(parts) > 4 else text[:40] + "…"
    return f'<a href="{esc(v)}" title="{esc(v)}" rel="noopener noreferrer">{esc(text)}</a>'


def _code(v) -> str:
    return MISSING if missing(v) or not v else f"<code>{esc(v)}</code>"


def _divergences(res: Results) -> str:
    parts = []
    if len(model.verification(res)):
        parts.append("<h3>Known divergences</h3>")
        known = model.known(res)
        if len(known):
            parts.append('<p class="note">Upstream behaviour the suites expect; these records count as '
                         "<em>known</em>, not as failures.</p>")
            parts.append(table(known, [
                Col("divergence", cls="nowrap"), Col("reason", cls="prose"), Col("link", fmt=_link, html=True),
                Col("adapters"), Col("records", fmt=fmt_count, numeric=True), Col("example", cls="case"),
            ]))
        else:
            parts.append(_empty("No known divergences showed in these results."))
    parts.append("<h3>Unexpected failures and errors</h3>")
    failed = model.failures(res)
    if len(failed):
        cols = [Col("adapter", cls="nowrap"), Col("suite"), Col("case", cls="case"), Col("check", cls="nowrap"),
                Col("outcome", cls=outcome_class), Col("message", cls="small"),
                Col("rerun", "rerun with", fmt=_code, html=True)]
        parts.append(table(failed, _with_machine(cols, failed)))
    else:
        parts.append(_empty("None: every check passed, was skipped, or diverged as known."))
    return _section("divergences", "\n".join(parts))


def _speed(res: Results) -> str:
    rows = model.speed(res)
    recompiles = model.recompiles(res)
    parts = []
    if len(rows):
        gbps = pd.to_numeric(res.environments.get("bandwidth_gbps", pd.Series(dtype=float)), errors="coerce").dropna()
        bandwidth = span(fmt_gbps(gbps.min()), fmt_gbps(gbps.max())) if len(gbps) else ""
        load = (' "Other load" is how many cores other processes kept busy while it was timed.'
                if rows["other_load"].notna().any() else "")
        parts.append('<p class="note">Median and interquartile range of the timed rounds; GB/s counts the bytes '
                     "an ideal kernel must move; roofline is that as a share of the measured memory bandwidth"
                     f"{f' ({esc(bandwidth)} GB/s)' if bandwidth else ''}; ×fastest compares adapters on the same "
                     f"op, mode, shape and dtype within each table.{esc(load)} Click a header to sort.</p>")
        for op, g in rows.groupby("op", sort=True):
            parts.append(f"<h3>{esc(op)}</h3>")
            parts.append(_speed_tables(g))
        parts.append(_sweeps(rows))
        parts.append(_compile_times(rows))
    parts.append("<h3>Recompiles</h3>")
    if len(recompiles):
        parts.append('<p class="note">One layer called with varying sequence lengths: how many times it traced '
                     "or compiled.</p>")
        parts.append(table(recompiles, _with_machine([
            Col("adapter", cls="nowrap"), Col("recompiles", fmt=lambda v: "none" if missing(v) else fmt_value(v),
                                              numeric=True),
            Col("distinct lengths", fmt=fmt_count, numeric=True), Col("calls", fmt=fmt_count, numeric=True),
            Col("message")], recompiles)))
    else:
        parts.append(_empty("No recompile measurements in these files."))
    return _section("speed", "\n".join(p for p in parts if p))


def _speed_tables(rows: pd.DataFrame) -> str:
    """Default shapes, then the sweep: two tables, so each has its own fastest per case."""
    default = rows["group"].fillna("default") != "sweep"
    parts = []
    for title, part in (("default shapes", rows[default]), ("sweep", rows[~default])):
        if len(part):
            parts.append(f'<h4>{esc(title)}</h4>\n{_speed_table(part)}')
    return "\n".join(parts)


def _speed_table(rows: pd.DataFrame) -> str:
    cols = [
        Col("mode", cls="nowrap"), Col("shape", cls="nowrap"), Col("dtype"),
        Col("adapter", cls="nowrap"), Col("median_s", "median", fmt=fmt_time, numeric=True),
        Col("iqr_s", "IQR", fmt=fmt_time, numeric=True), Col("gbps", "GB/s", fmt=fmt_gbps, numeric=True),
        Col("roofline_frac", "roofline", fmt=fmt_percent, numeric=True),
        Col("faults_per_call", "page faults/call", fmt=fmt_count, numeric=True),
        Col("vs_fastest", "×fastest", fmt=fmt_ratio, numeric=True,
            cls=lambda v: "best" if number(v) is not None and number(v) <= 1.0000001 else ""),
    ]
    if rows["other_load"].notna().any():
        cols.append(Col("other_load", "other load (cores)", fmt=sig3, numeric=True,
                        cls=lambda v: "loaded" if (number(v) or 0) >= OVERLAP_CORES else ""))
    return table(rows, _with_machine(cols, rows))


def _sweeps(rows: pd.DataFrame) -> str:
    sweep = rows[rows["group"] == "sweep"]
    if not len(sweep):
        return ""
    colours = _adapter_colours(rows["adapter"])
    charts = []
    for op, g in sweep.groupby("op", sort=True):
        title = " ".join([str(op), *[str(v) for c in ("mode", "dtype") if g[c].nunique() == 1 for v in [g[c].iloc[0]]]])
        charts.append(f"<figure>{sweep_svg(g, title, colours)}</figure>")
    return ("<h3>Scaling</h3>\n<p class=\"note\">Median time against problem size for the sweep shapes (log-log). "
            "The dashed line is the time the measured memory bandwidth allows.</p>\n"
            f'<div class="charts">{"".join(charts)}</div>')


def _compile_times(rows: pd.DataFrame) -> str:
    keys = ["adapter", "machine"] if rows["machine"].nunique() > 1 else ["adapter"]
    rows = rows.assign(compile_s=pd.to_numeric(rows["compile_s"], errors="coerce"))
    table_ = (rows.dropna(subset=["compile_s"]).groupby(keys)["compile_s"]
              .agg(median="median", max="max", benchmarks="count").reset_index()
              .sort_values("median", ascending=False))
    if not len(table_):
        return ""
    top = table_["median"].max() or 1.0

    def bar(v) -> str:
        width = 0 if missing(v) else max(0.5, 100 * float(v) / top)
        return (f'<div class="bar"><span>{esc(fmt_time(v))}</span><span class="track">'
                f'<i style="width:{width:.1f}%"></i></span></div>')

    cols = [Col("adapter", cls="nowrap"), Col("median", fmt=bar, numeric=True, html=True),
            Col("max", fmt=fmt_time, numeric=True), Col("benchmarks", fmt=fmt_count, numeric=True)]
    if "machine" in keys:
        cols.append(Col("machine"))
    return ("<h3>Compile and warm-up time</h3>\n<p class=\"note\">First call minus the median call, per benchmark: "
            "tracing, compilation and one-off allocation.</p>\n" + table(table_, cols))


# ---------------------------------------------------------------- page


def sections(res: Results) -> list[str]:
    """The sections these results have something for: a speed-only report has no verification
    sections, and a verification-only one no speed section; the summary is always there."""
    c = res.checks
    verified = bool(len(model.verification(res)))
    timed = bool(len(c)) and bool((c["suite"] == "speed").any())
    present = {"summary": True, "behaviour": verified, "agreement": verified,
               "divergences": verified or bool(model.unexpected(res)), "speed": timed}
    return [key for key, _ in SECTIONS if present[key]]


def _header(res: Results, generated: dt.datetime, keys: list[str]) -> str:
    sources = list(res.environments["source"]) if "source" in res.environments else []
    listed = ", ".join(f"<code>{esc(s)}</code>" for s in sources) or "none"
    if len(sources) > 3:  # a `normbench run` writes one file per process: name the runs, fold the files
        runs = ", ".join(f"<code>{esc(r)}</code>" for r in dict.fromkeys(model.run_of(res.environments["run"])))
        listed = f"{runs} <details><summary>the files</summary>{listed}</details>"
    titles = dict(SECTIONS)
    toc = "".join(f'<li><a href="#{key}">{esc(titles[key])}</a></li>' for key in keys) if len(keys) > 1 else ""
    nav = f'<nav class="toc" aria-label="Contents"><ol>{toc}</ol></nav>\n' if toc else ""
    return (f"<header><div>\n<h1>normbench report</h1>\n"
            f'<div class="meta">Generated {esc(generated.strftime("%Y-%m-%d %H:%M UTC"))} from '
            f"{plural(len(sources), 'results file')}: {listed}</div>\n{nav}</div></header>")


RENDERERS = {"summary": _summary, "behaviour": _behaviour, "agreement": _agreement, "divergences": _divergences,
             "speed": _speed}


def render(res: Results, generated: dt.datetime | None = None) -> str:
    """The whole report as one self-contained HTML document."""
    generated = generated or dt.datetime.now(dt.UTC)
    keys = sections(res)
    body = "\n".join(RENDERERS[key](res) for key in keys)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="normbench">
<title>normbench report</title>
<style>{CSS}</style>
</head>
<body>
{_header(res, generated, keys)}
<main>
{body}
<footer>Made by normbench from the results files listed above. Every table and chart is derived from their
records; tables sort when clicked (with JavaScript).</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""
