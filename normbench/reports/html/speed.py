"""The speed section: timing tables per op (default shapes, sweep) under each run's primary
allocator, how far repeats agree, the effect of other allocators, scaling charts, compile times
and recompiles."""

from __future__ import annotations

import pandas as pd

from ...results.allocators import OVERLAP_CORES
from ...results.kinds import Outcome
from .. import model
from ..formatting import (
    fixed3,
    fmt_count,
    fmt_faults,
    fmt_gbps,
    fmt_percent,
    fmt_ratio,
    fmt_ratio3,
    fmt_time,
    fmt_value,
    missing,
    number,
    plural,
    sig3,
    span,
)
from ..head_to_head import SPREAD_FACTOR, SPREAD_WARN
from ..html_elements import Col, empty, esc, table, with_machine
from ..model import Results
from .charts import adapter_colours, sweep_svg

ALLOCATOR_ROWS = 40  # cases in the allocator-effect table, largest effect first


def speed_section(res: Results) -> str:
    rows = model.primary_speed(res)
    recompiles = model.recompiles(res)
    parts = []
    if len(rows):
        gbps = pd.to_numeric(res.environments.get("bandwidth_gbps", pd.Series(dtype=float)), errors="coerce").dropna()
        bandwidth = span(fmt_gbps(gbps.min()), fmt_gbps(gbps.max())) if len(gbps) else ""
        load = (' "Other load" is how many cores other processes kept busy while it was timed.'
                if rows["other_load"].notna().any() else "")
        memory = f" ({esc(bandwidth)} GB/s)" if bandwidth else ""
        ceiling = (f"the copy bandwidth measured in the cache level its data fits in (named), or in main memory{memory}"
                   if _levels(rows) else f"the measured memory bandwidth{memory}")
        if len(own := _own_copies(rows)):
            largest = f"{own['bytes'].max() / 2**20:.2g}"
            ceiling = (f"a plain copy of the same working set, timed just before each pass's rounds of it "
                       f"(\"of copy\": working sets of up to {largest} MB here; hover for the rates), else of "
                       f"{ceiling}")
        parts.append('<p class="note">Median and interquartile range of the timed rounds; GB/s counts the bytes '
                     f"an ideal kernel must move; roofline is that as a share of {ceiling}; ×fastest compares "
                     "adapters on the same "
                     f"op, mode, shape and dtype within each table{esc(_paired(rows))}.{esc(load)}"
                     f"{_spread_legend(rows)} Click a header to sort.</p>")
        parts.append(_allocator_note(res))
        for op in model.ordered_ops(rows["op"]):
            parts.append(f'<h3 id="speed-{esc(op)}">{esc(model.op_title(op))}</h3>')
            parts.append(_speed_tables(rows[rows["op"] == op]))
        parts.append(_stability(res))
        parts.append(allocator_effect(res))
        parts.append(_self_checks(res))
        parts.append(_sweeps(rows))
        parts.append(_compile_times(rows))
    parts.append("<h3>Recompiles</h3>")
    if len(recompiles):
        parts.append('<p class="note">One layer called with varying sequence lengths: how many times it traced '
                     "or compiled.</p>")
        parts.append(table(recompiles, with_machine([
            Col("adapter", cls="nowrap"), Col("recompiles", fmt=lambda v: "none" if missing(v) else fmt_value(v),
                                              numeric=True),
            Col("distinct lengths", fmt=fmt_count, numeric=True), Col("calls", fmt=fmt_count, numeric=True),
            Col("message")], recompiles)))
    else:
        parts.append(empty("No recompile measurements in these files."))
    return "\n".join(p for p in parts if p)


def _speed_tables(rows: pd.DataFrame) -> str:
    """Default shapes, then the sweep: two tables, so each has its own fastest per case."""
    default = rows["group"].fillna("default") != "sweep"
    parts = []
    if default.any():
        parts.append(f"<h4>default shapes</h4>\n{_speed_table(rows[default])}")
    if (~default).any():  # the scaling chart shows these; the table is there to look numbers up
        parts.append(f'<details class="sweep"><summary>sweep <span>{plural(int((~default).sum()), "timing")}, '
                     f'charted under Scaling</span></summary>\n{_speed_table(rows[~default])}</details>')
    return "\n".join(parts)


def _levels(rows: pd.DataFrame) -> bool:
    return bool(rows["roofline_level"].notna().any())


def _paired(rows: pd.DataFrame) -> str:
    if not rows["verdict"].notna().any():
        return ""
    return ("; where timed head to head, it is the median of per-round ratios with its 95 % interval, and "
            "\"tied\" where that interval reaches within 1 % of 1 (see Head to head)")


def _spread_legend(rows: pd.DataFrame) -> str:
    notes = rows.apply(model.spread_note, axis=1) if len(rows) else pd.Series(dtype=str)
    if not notes.astype(bool).any():
        return ""
    if rows["block_spread"].notna().any():
        return (" ⚠ marks an adapter whose own blocks disagree: their interquartile range over their median (each "
                f"divided by the field's block of the same round) beyond {SPREAD_WARN:.0%} and beyond "
                f"{SPREAD_FACTOR:g}× the case's median adapter's; its interval is the one to read.")
    return (f" ⚠ marks a case whose repeats disagree by more than ±{(model.SPREAD_NOTE - 1) * 100:.0f}%: the range "
            "of their medians follows (hover for each; see Timing stability).")


def _median(row: pd.Series) -> str:
    """The median, and the range of the repeats' medians where they disagree (see model.SPREAD_NOTE)."""
    text, note = esc(fmt_time(row["median_s"])), model.spread_note(row)
    if not note:
        return text
    if number(row.get("block_spread")) is not None:
        return f'{text} <span class="spread">⚠ {esc(note)}</span>'
    medians = ", ".join(fmt_time(m) for m in row["repeat_medians_s"])
    title = (f"{len(row['repeat_medians_s'])} repeats' medians: {medians}; slowest / fastest "
             f"{fixed3(row['repeat_spread'])}×")
    return f'{text} <span class="spread" title="{esc(title)}">⚠ {esc(note)}</span>'


def _roofline(row: pd.Series) -> str:
    """Its share of a copy of its own working set timed beside it, or of the copy rate of the level its
    data fits in, that level named (head to head)."""
    level, copies = row.get("roofline_level"), row.get("roofline_copies_gbps")
    if _copied(copies):
        title = (f"a copy of the same {row['bytes'] / 2**20:.1f} MB before each pass's rounds: "
                 f"{', '.join(fmt_gbps(c) for c in copies)} GB/s; the best, at least main memory's, is the ceiling"
                 + (f"; sysfs puts this working set in {level}" if isinstance(level, str) else ""))
        return f'<span title="{esc(title)}">{fmt_percent(row["roofline_frac"])} of copy</span>'
    return esc(fmt_percent(row["roofline_frac"]) + (f" of {level}" if isinstance(level, str) else ""))


def _copied(copies) -> bool:
    """Whether a row was judged against a copy of its own working set (its ``roofline_copies_gbps``)."""
    return isinstance(copies, list) and len(copies) > 0


def _own_copies(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows judged against a copy of their own working set."""
    return rows[rows["roofline_copies_gbps"].map(_copied)]


def _self_checks(res: Results) -> str:
    found = model.self_checks(res)
    if not len(found):
        return ""
    cols = [Col("adapter", cls="nowrap"), Col("outcome", cls=lambda v: "failed" if v == Outcome.FAIL else ""),
            Col("ratio", "harness/bare", fmt=fmt_ratio3, numeric=True),
            Col("fresh_ratio", "harness/fresh-process bare", fmt=fmt_ratio3, numeric=True),
            Col("case_vs_bare", "case median/bare", fmt=fmt_ratio3, numeric=True), Col("message", cls="wrap")]
    return ('<h3 id="self-check">Self-check</h3>\n'
            f'<p class="note">{esc(model.self_check_text(found))}</p>\n{table(found, with_machine(cols, found))}')


def _allocator_note(res: Results) -> str:
    note = model.allocator_note(res)
    return f'<p class="allocator">{esc(note)}</p>' if note else ""


def _speed_table(rows: pd.DataFrame) -> str:
    cols = [
        Col("mode", cls="nowrap"), Col("shape", cls="nowrap"), Col("dtype"),
        Col("adapter", cls="nowrap"),
        Col("median_s", "median", fmt=fmt_time, numeric=True, html=True, show=_median),
        Col("iqr_s", "IQR", fmt=fmt_time, numeric=True), Col("gbps", "GB/s", fmt=fmt_gbps, numeric=True),
        Col("roofline_frac", "roofline", numeric=True, html=True, show=_roofline),
        Col("faults_per_call", "page faults/call", fmt=fmt_count, numeric=True),
        Col("vs_fastest", "×fastest [95 %]" if rows["verdict"].notna().any() else "×fastest", numeric=True,
            show=model.standing, cls=lambda v: "best" if number(v) is not None and number(v) <= 1.0000001 else ""),
    ]
    if rows["other_load"].notna().any():
        cols.append(Col("other_load", "other load (cores)", fmt=sig3, numeric=True,
                        cls=lambda v: "loaded" if (number(v) or 0) >= OVERLAP_CORES else ""))
    return table(rows, with_machine(cols, rows))


def _stability(res: Results) -> str:
    """How far repeats agree, with the worst case's repeats side by side (bandwidth, faults)."""
    found = model.stability(res)
    if found is None:
        return ""
    summary, worst = model.stability_text(found)
    cols = [Col("repeat", fmt=fmt_count, numeric=True), Col("median_s", "median", fmt=fmt_time, numeric=True),
            Col("bandwidth_gbps", "memory bandwidth (GB/s)", fmt=fmt_gbps, numeric=True),
            Col("faults_per_call", "page faults/call", fmt=fmt_faults, numeric=True)]
    return ('<h3 id="timing-stability">Timing stability</h3>\n'
            f'<p class="note">{esc(summary)}</p>\n<p class="note">{esc(worst)}</p>\n'
            f'<div class="fit">{table(found["worst_case"]["repeats"], cols, sortable=False)}</div>')


def _allocator_cells(table_: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """One row per case: its key, effect, and per allocator the median (sorts), faults, ratio."""
    out = []
    for _, g in table_.groupby(model.ALLOCATOR_CASE, dropna=False, sort=False):
        first = g.iloc[0]
        row = {k: first[k] for k in model.ALLOCATOR_CASE} | {"title": model.op_title(first["op"]),
                                                             "effect": first["effect"]}
        row["shape"] = model.shape_label(first["shape"], first["group"])
        for _, r in g.iterrows():
            row |= {r["allocator"]: r["median_s"], f"{r['allocator']} faults": r["faults_per_call"],
                    f"{r['allocator']} ×": None if r["allocator"] == r["baseline"] else r["vs_baseline"],
                    f"{r['allocator']} spread": model.spread_note(r)}
        out.append(row)
    return pd.DataFrame(out).reindex(columns=[*model.ALLOCATOR_CASE, "title", "effect", *(
        f"{n}{suffix}" for n in names for suffix in ("", " faults", " ×", " spread"))])


def _allocator_cell(name: str):
    def show(row: pd.Series) -> str:
        if missing(row[name]):
            return "—"
        ratio = number(row[f"{name} ×"])
        mark = "" if ratio is None else (f' <span class="ratio {"better" if ratio < 1 else "worse"}">'
                                         f"{esc(fmt_ratio(ratio))}</span>")
        faults = esc(fmt_faults(row[f"{name} faults"]))
        spread = row[f"{name} spread"]
        spread = f' <span class="spread" title="{esc(spread)}">⚠</span>' if isinstance(spread, str) and spread else ""
        return f'{esc(fmt_time(row[name]))}{spread} <span class="faults">({faults})</span>{mark}'
    return show


def allocator_effect(res: Results, limit: int = ALLOCATOR_ROWS) -> str:
    """Cases timed under several allocators: one row each (the ``limit`` with the largest effect),
    a column per allocator; nothing where every case was timed under one."""
    found = model.allocators(res)
    if not len(found):
        return ""
    names = model.allocator_order(found["allocator"])
    cases = _allocator_cells(found, names)
    shown = cases.head(limit)
    intro, advice = model.allocator_text(found)
    meanings = "".join(f"<dt>{esc(n)}</dt><dd>{esc(m)}</dd>" for n, m in model.allocator_meanings(res, names).items())
    cols = [Col("title", "op", cls="nowrap"), Col("mode", cls="nowrap"), Col("shape", cls="nowrap"), Col("dtype"),
            Col("adapter", cls="nowrap"), Col("effect", "slowest / fastest", fmt=fmt_ratio, numeric=True),
            *(Col(n, f"{n}: time (faults/call)", fmt=fmt_time, numeric=True, html=True, show=_allocator_cell(n))
              for n in names)]
    cap = (f" The {len(shown)} cases with the largest effect, of {len(cases):,}." if len(shown) < len(cases) else "")
    return ('<h3 id="allocator-effect">Allocator effect</h3>\n'
            f'<p class="note">{esc(intro)}{esc(cap)}</p>\n<p class="note">{esc(advice)}</p>\n'
            f'<dl class="allocators">{meanings}</dl>\n{table(shown, with_machine(cols, shown))}')


def _sweeps(rows: pd.DataFrame) -> str:
    sweep = rows[rows["group"] == "sweep"]
    if not len(sweep):
        return ""
    colours = adapter_colours(rows["adapter"])
    charts = []
    for op in model.ordered_ops(sweep["op"]):
        g = sweep[sweep["op"] == op]
        same = [str(g[c].iloc[0]) for c in ("mode", "dtype") if g[c].nunique() == 1]
        title = " ".join([model.op_title(op), *same])
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

