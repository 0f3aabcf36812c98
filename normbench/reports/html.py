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

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

from ..records import OUTCOMES
from . import model
from .model import Results

SECTIONS = (
    ("summary", "Summary"),
    ("behaviour", "Behaviour"),
    ("agreement", "Agreement"),
    ("divergences", "Divergences and failures"),
    ("speed", "Speed"),
)
HEATMAP_CASES = 40
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
  border-radius: 4px; font-size: 16px; font-weight: 550;
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
table.environments td { min-width: 22em; }
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


# ---------------------------------------------------------------- formatting


def _missing(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    try:
        return bool(isinstance(v, float | np.floating) and math.isnan(v))
    except TypeError:
        return False


def _number(v) -> float | None:
    if _missing(v) or isinstance(v, bool | np.bool_):
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def sig3(v) -> str:
    """Three significant digits, compact exponent: 0.523, 41.9, 2.43e13, ∞."""
    x = _number(v)
    if x is None:
        return "—"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    text = f"{x:.3g}"
    if "e" in text:
        mantissa, exponent = text.split("e")
        text = f"{mantissa}e{int(exponent)}"
    return text


def _fixed3(x: float) -> str:
    """x with three significant digits and no exponent (1.23, 12.3, 123)."""
    decimals = max(0, 2 - math.floor(math.log10(abs(x)))) if x else 2
    return f"{x:.{decimals}f}"


def fmt_time(v) -> str:
    """Seconds as ns, µs, ms or s with three significant digits."""
    x = _number(v)
    if x is None or math.isinf(x):
        return "—"
    if x == 0:
        return "0"
    for scale, unit in ((1, "s"), (1e-3, "ms"), (1e-6, "µs")):
        if abs(x) >= scale * 0.9995:
            return f"{_fixed3(x / scale)} {unit}"
    return f"{_fixed3(x / 1e-9)} ns"


def fmt_gbps(v) -> str:
    x = _number(v)
    if x is None:
        return "—"
    return "<0.1" if 0 < x < 0.05 else f"{x:.1f}"


def fmt_percent(v) -> str:
    x = _number(v)
    if x is None:
        return "—"
    pct = x * 100
    if 0 < pct < 0.1:
        return "<0.1%"
    return f"{pct:.0f}%" if pct >= 10 else f"{pct:.1f}%"


def fmt_ratio(v) -> str:
    x = _number(v)
    return "—" if x is None or math.isinf(x) else f"{_fixed3(x)}×"


def fmt_value(v) -> str:
    """Any cell: booleans as yes/no, floats with three significant digits, missing as a dash."""
    if _missing(v):
        return "—"
    if isinstance(v, bool | np.bool_):
        return "yes" if v else "no"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return sig3(v)
    return str(v)


def fmt_count(v) -> str:
    x = _number(v)
    return "—" if x is None else f"{int(x):,}"


def fmt_date(v) -> str:
    if _missing(v):
        return "—"
    try:
        stamp = pd.Timestamp(v)
    except (TypeError, ValueError):
        return str(v)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%d %H:%M UTC")
    return stamp.strftime("%Y-%m-%d %H:%M")


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
            x = _number(value)
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
    return lambda v: f"o-{outcome}" if (_number(v) or 0) > 0 else "zero"


def _empty(message: str) -> str:
    return f'<p class="muted">{message}</p>'


def _with_machine(cols: list[Col], df: pd.DataFrame) -> list[Col]:
    """Show which machine a row came from only when the results span several."""
    if "machine" in df and df["machine"].nunique() > 1:
        return [*cols, Col("machine")]
    return cols


# ---------------------------------------------------------------- charts


def _svg(fig: Figure, name: str) -> str:
    """The figure as inline SVG markup: no XML prolog or metadata, ids scoped to this chart."""
    FigureCanvasAgg(fig)
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
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


def heatmap_svg(matrix: pd.DataFrame, limit: int = HEATMAP_CASES) -> str:
    """log10 of the worst error (in eps) per case and adapter, the `limit` worst cases on top."""
    values = matrix.astype(float)
    worst = values.replace(np.inf, np.finfo(float).max).max(axis=1, skipna=True)
    values = values.loc[worst.sort_values(ascending=False, kind="stable").index[:limit]]
    with np.errstate(divide="ignore"):
        logs = np.log10(values.to_numpy())
    finite = logs[np.isfinite(logs)]
    low = max(math.floor(finite.min()), -3) if finite.size else -1
    high = max(math.ceil(finite.max()), low + 1) if finite.size else 1
    shown = np.where(np.isposinf(logs), high, np.where(np.isneginf(logs), low, logs))
    shown = np.ma.masked_invalid(np.clip(shown, low, high))
    cmap = colormaps["YlOrRd"].with_extremes(bad="#eef1f4")

    n_cases, n_adapters = values.shape
    fig = _figure(max(6.5, 4.2 + 0.95 * n_adapters), 1.5 + 0.2 * n_cases)
    ax = fig.add_subplot()
    mesh = ax.pcolormesh(shown, cmap=cmap, vmin=low, vmax=high, edgecolors="white", linewidth=0.6)
    ax.invert_yaxis()
    ax.set_xticks(np.arange(n_adapters) + 0.5, [_label(a) for a in values.columns], rotation=25, ha="left",
                  fontsize=8.5)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_yticks(np.arange(n_cases) + 0.5, [_label(c) for c in values.index], fontsize=7.5)
    ax.tick_params(length=0, colors="#3d444d")
    ax.set_xlabel("adapter", fontsize=9, color="#3d444d")
    ax.set_ylabel(f"case (worst {n_cases} of {len(matrix)})", fontsize=9, color="#3d444d")
    for spine in ax.spines.values():
        spine.set_visible(False)
    for (i, j), log in np.ndenumerate(logs):
        if np.isposinf(log):
            ax.text(j + 0.5, i + 0.5, "∞", ha="center", va="center", fontsize=9, color="white", weight="bold")
    length = min(1.0, 3.2 / (0.2 * n_cases))  # about three inches, whatever the number of cases
    bar = fig.colorbar(mesh, ax=ax, shrink=length, aspect=20 * length, pad=0.02, anchor=(0.0, 1.0))
    bar.set_label("log10(max error / eps)", fontsize=9, color="#3d444d")
    bar.ax.tick_params(labelsize=8, colors="#3d444d")
    bar.outline.set_visible(False)
    return _svg(fig, "agreement heatmap")


def fmt_elements(v) -> str:
    """A count the way an axis reads it: 512, 65.5k, 1M, 16.8M."""
    for scale, unit in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if v >= scale:
            return f"{v / scale:.3g}{unit}"
    return f"{v:.3g}"


def _log_axis(ax, which: str, fmt: Callable[[float], str]) -> None:
    """Log ticks labelled in plain units; 1-2-5 steps when the axis spans less than two decades."""
    low, high = ax.get_xlim() if which == "x" else ax.get_ylim()
    span = math.log10(high / low) if low > 0 and high > 0 else 0
    axis = ax.xaxis if which == "x" else ax.yaxis
    axis.set_major_locator(LogLocator(base=10, subs=(1.0,) if span >= 2 else (1.0, 2.0, 5.0)))
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


def _summary(res: Results) -> str:
    checks = model.verification(res)
    parts = []
    bad = int(checks["outcome"].isin(["fail", "error"]).sum()) if len(checks) else 0
    state = "empty" if not len(checks) else ("bad" if bad else "good")
    parts.append(f'<p class="headline {state}">{esc(model.headline(res))}</p>')
    if len(checks):
        counts = checks["outcome"].value_counts()
        cards = [("checks", len(checks), ""), ("adapters", checks["adapter"].nunique(), "")]
        cards += [(o, int(counts.get(o, 0)), o) for o in OUTCOMES]
        parts.append('<div class="cards">' + "".join(
            f'<div class="card {cls}"><b>{n:,}</b><span>{esc(label)}</span></div>' for label, n, cls in cards)
            + "</div>")
    parts.append("<h3>Environments</h3>")
    parts.append(_environments(res.environments))
    parts.append("<h3>Verdicts</h3>")
    verdicts = model.verdicts(res)
    if len(verdicts):
        verdicts = verdicts.assign(total=verdicts[list(OUTCOMES)].sum(axis=1))
        cols = [Col("adapter", cls="nowrap"), Col("suite", cls="nowrap")]
        cols += [Col(o, fmt=fmt_count, numeric=True, cls=_count_class(o)) for o in OUTCOMES]
        parts.append(table(verdicts, [*cols, Col("total", fmt=fmt_count, numeric=True)]))
    else:
        parts.append(_empty("No verification results in these files (run <code>normbench</code>)."))
    return _section("summary", "\n".join(parts))


ENVIRONMENT_FIELDS = (  # (field of Results.environments, label, formatter, cell class)
    ("machine", "machine", fmt_value, ""),
    ("date", "date", fmt_date, ""),
    ("python", "python", fmt_value, ""),
    ("normbench", "normbench", fmt_value, ""),
    ("os", "os", fmt_value, "small"),
    ("versions", "versions", fmt_value, "small"),
    ("threads", "threads", fmt_value, "small"),
    ("bandwidth_gbps", "memory bandwidth", lambda v: "—" if _missing(v) else f"{fmt_gbps(v)} GB/s", ""),
    ("adapters_installed", "adapters installed", fmt_value, ""),
    ("adapters_missing", "adapters missing (install with)", lambda v: fmt_value(v) if v else "none", "small"),
)


def _environments(envs: pd.DataFrame) -> str:
    """One column per results file, one row per field: readable however long the version lists get."""
    if not len(envs):
        return _empty("No results files.")
    envs = envs.copy()
    commits = envs["git_commit"] if "git_commit" in envs else pd.Series([None] * len(envs), index=envs.index)
    versions = envs["normbench_version"] if "normbench_version" in envs else commits.map(lambda _: None)
    envs["normbench"] = [" ".join(str(x)[:10] for x in (v, c) if not _missing(x) and x)
                         for v, c in zip(versions, commits, strict=True)]
    names = list(envs["run"])
    head = "".join(f'<th scope="col" title="{esc(s)}">{esc(n)}</th>' for n, s in zip(names, envs["source"],
                                                                                      strict=True))
    rows = []
    for key, label, fmt, cls in ENVIRONMENT_FIELDS:
        if key not in envs:
            continue
        cells = []
        for v in envs[key]:
            text = fmt(v)
            classes = " ".join(c for c in (cls, "none" if text == "—" else "") if c)
            cells.append(f'<td class="{classes}">{esc(text)}</td>' if classes else f"<td>{esc(text)}</td>")
        rows.append(f'<tr><th scope="row">{esc(label)}</th>{"".join(cells)}</tr>')
    return (f'<div class="scroll"><table class="matrix environments">\n<thead><tr><th scope="col">results file</th>'
            f"{head}</tr></thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")


def _behaviour(res: Results) -> str:
    matrix = model.behaviour(res)
    if not len(matrix) or not model.verification(res).shape[0]:
        return _section("behaviour", _empty("No verification results in these files (run <code>normbench</code>)."))
    facts = matrix.set_index("adapter").T
    head = "".join(f'<th scope="col">{esc(a)}</th>' for a in facts.columns)
    rows = []
    for fact, values in facts.iterrows():
        shown = [fmt_value(v) for v in values]
        present = Counter(s for s in shown if s != "—")
        ranked = present.most_common(2)
        common = ranked[0][0] if len(ranked) == 2 and ranked[0][1] > ranked[1][1] else None  # no tie
        cells = "".join(
            f'<td class="{"none" if s == "—" else ("differs" if common and s != common else "")}">{esc(s)}</td>'
            for s in shown)
        rows.append(f'<tr><th scope="row">{esc(fact)}</th>{cells}</tr>')
    body = (f'<div class="scroll"><table class="matrix">\n<thead><tr><th scope="col">behaviour</th>{head}</tr>'
            f"</thead>\n<tbody>\n" + "\n".join(rows) + "\n</tbody></table></div>")
    note = ('<p class="note">What each adapter measurably does, read from the records\' facts. '
            "Highlighted cells differ from the value most adapters share; a dash means not measured.</p>")
    return _section("behaviour", note + body)


def _agreement(res: Results) -> str:
    rows = model.agreement(res)
    if not len(rows):
        return _section("agreement", _empty("No compared checks in these files (run <code>normbench</code>)."))
    parts = []
    matrix = model.agreement_matrix(res)
    if matrix.size:
        n = min(HEATMAP_CASES, len(matrix))
        parts.append(f"<figure>{heatmap_svg(matrix)}<figcaption>Worst error per case and adapter, in units of "
                     f"the dtype's epsilon (log10), for the {n} cases with the largest errors of {len(matrix)}. "
                     "∞ marks a non-finite result; grey means not compared.</figcaption></figure>")
    parts.append(f"<h3>Worst {min(AGREEMENT_ROWS, len(rows))} of {len(rows):,} compared checks</h3>")
    parts.append('<p class="note">Sorted by error relative to tolerance (ratio), worst first.</p>')
    cols = [
        Col("adapter", cls="nowrap"), Col("suite"), Col("case", cls="case"), Col("check", cls="nowrap"),
        Col("dtype"), Col("outcome", cls=outcome_class),
        Col("err_eps", "error (eps)", fmt=sig3, numeric=True),
        Col("max_abs_err", "max abs error", fmt=sig3, numeric=True),
        Col("tolerance", fmt=sig3, numeric=True), Col("ratio", "error / tolerance", fmt=sig3, numeric=True),
    ]
    top = rows.head(AGREEMENT_ROWS)
    parts.append(table(top, _with_machine(cols, top)))
    return _section("agreement", "\n".join(parts))


def _link(v) -> str:
    if _missing(v) or not v:
        return "—"
    text = re.sub(r"^https?://(www\.)?", "", str(v))
    if len(text) > 42:
        parts = text.split("/")
        text = "/".join(parts[:3]) + "/…/" + parts[-1] if len(parts) > 4 else text[:40] + "…"
    return f'<a href="{esc(v)}" title="{esc(v)}" rel="noopener noreferrer">{esc(text)}</a>'


def _code(v) -> str:
    return "—" if _missing(v) or not v else f"<code>{esc(v)}</code>"


def _divergences(res: Results) -> str:
    if not len(model.verification(res)):
        return _section("divergences", _empty("No verification results in these files (run <code>normbench</code>)."))
    parts = ["<h3>Known divergences</h3>"]
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
    if not len(rows) and not len(recompiles):
        return _section("speed", _empty("No benchmark results in these files (run <code>normbench bench</code>)."))
    parts = []
    if len(rows):
        bandwidth = ", ".join(fmt_gbps(b) for b in res.environments.get("bandwidth_gbps", pd.Series()).dropna())
        parts.append('<p class="note">Median and interquartile range of the timed rounds; GB/s counts the bytes '
                     "an ideal kernel must move; roofline is that as a share of the measured memory bandwidth"
                     f"{f' ({esc(bandwidth)} GB/s)' if bandwidth else ''}; ×fastest compares adapters on the same "
                     "op, mode, shape and dtype. Click a header to sort.</p>")
        for op, g in rows.groupby("op", sort=True):
            parts.append(f"<h3>{esc(op)}</h3>")
            parts.append(_speed_table(g))
        parts.append(_sweeps(rows))
        parts.append(_compile_times(rows))
    parts.append("<h3>Recompiles</h3>")
    if len(recompiles):
        parts.append('<p class="note">One layer called with varying sequence lengths: how many times it traced '
                     "or compiled.</p>")
        parts.append(table(recompiles, _with_machine([
            Col("adapter", cls="nowrap"), Col("recompiles", fmt=lambda v: "none" if _missing(v) else fmt_value(v),
                                              numeric=True),
            Col("distinct lengths", fmt=fmt_count, numeric=True), Col("calls", fmt=fmt_count, numeric=True),
            Col("message")], recompiles)))
    else:
        parts.append(_empty("No recompile measurements in these files."))
    return _section("speed", "\n".join(parts))


def _speed_table(rows: pd.DataFrame) -> str:
    cols = [
        Col("mode", cls="nowrap"), Col("shape", cls="nowrap"), Col("dtype"), Col("group"),
        Col("adapter", cls="nowrap"), Col("median_s", "median", fmt=fmt_time, numeric=True),
        Col("iqr_s", "IQR", fmt=fmt_time, numeric=True), Col("gbps", "GB/s", fmt=fmt_gbps, numeric=True),
        Col("roofline_frac", "roofline", fmt=fmt_percent, numeric=True),
        Col("faults_per_call", "page faults/call", fmt=fmt_count, numeric=True),
        Col("vs_fastest", "×fastest", fmt=fmt_ratio, numeric=True,
            cls=lambda v: "best" if _number(v) is not None and _number(v) <= 1.0000001 else ""),
    ]
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
        width = 0 if _missing(v) else max(0.5, 100 * float(v) / top)
        return (f'<div class="bar"><span>{esc(fmt_time(v))}</span><span class="track">'
                f'<i style="width:{width:.1f}%"></i></span></div>')

    cols = [Col("adapter", cls="nowrap"), Col("median", fmt=bar, numeric=True, html=True),
            Col("max", fmt=fmt_time, numeric=True), Col("benchmarks", fmt=fmt_count, numeric=True)]
    if "machine" in keys:
        cols.append(Col("machine"))
    return ("<h3>Compile and warm-up time</h3>\n<p class=\"note\">First call minus the median call, per benchmark: "
            "tracing, compilation and one-off allocation.</p>\n" + table(table_, cols))


# ---------------------------------------------------------------- page


def _header(res: Results, generated: dt.datetime) -> str:
    sources = list(res.environments["source"]) if "source" in res.environments else []
    listed = ", ".join(f"<code>{esc(s)}</code>" for s in sources) or "none"
    if len(sources) > 3:  # a `normbench run` writes one file per process: name the runs, fold the files
        runs = ", ".join(f"<code>{esc(r)}</code>" for r in dict.fromkeys(
            str(r).split("/")[0] for r in res.environments["run"]))
        listed = f"{runs} <details><summary>the files</summary>{listed}</details>"
    toc = "".join(f'<li><a href="#{key}">{esc(title)}</a></li>' for key, title in SECTIONS)
    return (f"<header><div>\n<h1>normbench report</h1>\n"
            f'<div class="meta">Generated {esc(generated.strftime("%Y-%m-%d %H:%M UTC"))} from '
            f"{len(sources)} results file{'s' if len(sources) != 1 else ''}: {listed}</div>\n"
            f'<nav class="toc" aria-label="Contents"><ol>{toc}</ol></nav>\n</div></header>')


def render(res: Results, generated: dt.datetime | None = None) -> str:
    """The whole report as one self-contained HTML document."""
    generated = generated or dt.datetime.now(dt.UTC)
    sections = [_summary(res), _behaviour(res), _agreement(res), _divergences(res), _speed(res)]
    body = "\n".join(sections)
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
{_header(res, generated)}
<main>
{body}
<footer>Made by normbench from the results files listed above. Every table and chart is derived from their
records; tables sort when clicked (with JavaScript).</footer>
</main>
<script>{SCRIPT}</script>
</body>
</html>
"""
