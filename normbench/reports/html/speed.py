"""The speed section: timing tables per op (default shapes, sweep), scaling charts, compile times
and recompiles."""

from __future__ import annotations

import pandas as pd

from ...bench.harness import OVERLAP_CORES
from .. import model
from ..formatting import (
    fmt_count,
    fmt_gbps,
    fmt_percent,
    fmt_ratio,
    fmt_time,
    fmt_value,
    missing,
    number,
    plural,
    sig3,
    span,
)
from ..model import Results
from .charts import adapter_colours, sweep_svg
from .elements import Col, empty, esc, section, table, with_machine


def speed_section(res: Results) -> str:
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
        for op in model.ordered_ops(rows["op"]):
            parts.append(f'<h3 id="speed-{esc(op)}">{esc(model.op_title(op))}</h3>')
            parts.append(_speed_tables(rows[rows["op"] == op]))
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
    return section("speed", "\n".join(p for p in parts if p))


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
    return table(rows, with_machine(cols, rows))


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

