"""The head-to-head section: standings per adapter, every case's ratio to the fastest with its
interval and verdict, a chart of the ratios with their intervals per op, and each process's peak
memory (the model is :mod:`normbench.reports.head_to_head`)."""

from __future__ import annotations

import pandas as pd
from matplotlib.ticker import FuncFormatter

from ..formatting import fmt_time
from ..head_to_head import (
    SPREAD_FACTOR,
    SPREAD_WARN,
    VERDICTS,
    budget_line,
    hungriest,
    memory,
    rows,
    standing,
    tally,
    together,
    unsteady,
)
from ..html_elements import Col, empty, esc, table
from ..loading import Results
from .charts import figure, svg


def _chart(df: pd.DataFrame, op: str) -> str:
    sub = df[df["op"] == op]
    cases = list(dict.fromkeys(sub["case"]))
    adapters = list(dict.fromkeys(sub.sort_values("ratio")["adapter"]))
    fig = figure(9, 0.35 * len(cases) * max(1, len(adapters)) / 2 + 1.2)
    ax = fig.add_subplot()
    height = 0.8 / max(1, len(adapters))
    for k, adapter in enumerate(adapters):
        mine = sub[sub["adapter"] == adapter].set_index("case").reindex(cases)
        y = [i + k * height for i in range(len(cases))]
        ax.errorbar(mine["ratio"], y, xerr=[mine["ratio"] - mine["low"], mine["high"] - mine["ratio"]], fmt="o",
                    ms=4, capsize=2, label=adapter)
    ax.axvline(1.0, color="0.5", lw=0.8)
    ax.set_yticks([i + height * (len(adapters) - 1) / 2 for i in range(len(cases))], cases, fontsize=7)
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}×"))
    ax.set_xlabel("time / fastest's, 95 % interval (log scale)")
    ax.legend(fontsize=7, loc="lower right")
    return svg(fig, f"head-to-head ratios, {op}")


COLS = [Col("case", cls="nowrap"), Col("adapter", cls="nowrap"), Col("version"),
        Col("median_s", "median", fmt_time, numeric=True),
        Col("ratio", "× fastest [95 %]", numeric=True, show=standing),
        Col("spread", "own blocks' spread", numeric=True,
            show=lambda r: f"{r['spread']:.0%}" + (" ⚠" if unsteady(r["spread"], r["field_spread"]) else "")),
        Col("blocks", numeric=True)]


def head_to_head_section(res: Results) -> str:
    df = rows(res)
    intro = ("<p>Every adapter's process was alive at once and took turns on each case in short blocks, in an "
             "order shuffled every round, so the machine's drift touched all alike, each block once the process "
             "before it had gone quiet (a framework's worker threads spin on after its call; the last column says "
             "for how long, and the next block waited that out). Each ratio to the fastest is the "
             "median of per-round ratios, with a 95 % bootstrap interval over processes and rounds; an adapter "
             "whose interval reaches within 1 % of 1 is <em>tied</em> with the fastest. ⚠ marks an adapter whose "
             f"own blocks spread (IQR/median) beyond {SPREAD_WARN:.0%} and beyond {SPREAD_FACTOR:g}× the case's "
             "median adapter's.</p>")
    summary = table(tally(df), [Col("adapter"), *(Col(v, VERDICTS[v], numeric=True) for v in VERDICTS),
                                Col("median ratio", fmt=lambda v: f"{v:.3f}×", numeric=True),
                                Col("median spread", "median spread of its own blocks", lambda v: f"{v:.0%}",
                                    numeric=True),
                                Col("busy after", "its threads ran on after a block (median)", fmt_time, numeric=True)])
    charts = "".join(f"<h3>{esc(op)}</h3>{_chart(df, op)}" for op in dict.fromkeys(df["op"]))
    mem = memory(res)
    held = together(res)
    most = hungriest(res)
    held_html = (f'<p class="note">At most {held[0]:,.0f} MB resident for the {held[1]} processes of a pass '
                 "together (their proportional set sizes, each shared library page divided among the processes "
                 "that map it; read once the field has prepared a case, and at the end of each heat's rounds)"
                 + (f", on {esc(most[0])}" if most else "") + f". {esc(budget_line(res))}</p>" if held else "")
    mem_html = held_html + (table(mem, [Col("adapter"), Col("process", numeric=True),
                            Col("peak_rss_mb", "peak resident MB", lambda v: f"{v:,.0f}" if v == v and v else "—",
                                numeric=True), Col("python")])
                if len(mem) else empty("no process reported its memory"))
    return (intro + "<h3>Standings</h3>" + summary + "<h3>Every case</h3>" + table(df, COLS) + charts
            + "<h3>Peak memory per process</h3>" + mem_html)
