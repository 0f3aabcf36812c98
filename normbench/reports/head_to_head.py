"""The head-to-head section: for each case timed head to head (``bench --head-to-head``), every
adapter's ratio to the fastest with its 95 % interval and what it lets us say (fastest, tied,
slower), a chart of those ratios with their intervals per op, how far each adapter's own blocks
disagreed, and each process's peak resident memory."""

from __future__ import annotations

import pandas as pd
from matplotlib.ticker import FuncFormatter

from ..results.kinds import Check, Outcome
from .formatting import fmt_time
from .html.charts import _figure, svg
from .html.elements import Col, empty, esc, table
from .loading import Results

VERDICTS = {"fastest": "fastest", "tied": "tied with the fastest", "slower": "slower"}
SPREAD_WARN = 0.10  # an adapter's own blocks spread (IQR/median) beyond this: said beside its row


def rows(res: Results) -> pd.DataFrame:
    """One row per case and adapter timed head to head."""
    c = res.checks
    if "head_to_head" not in c:
        return pd.DataFrame()
    timed = c[c["head_to_head"].notna() & (c["outcome"] == Outcome.PASS)]
    out = pd.DataFrame({
        "op": timed["op"], "case": timed["case"], "mode": timed["check"].astype(str), "adapter": timed["adapter"],
        "version": timed["framework_version"], "median_s": timed["median_s"],
        "ratio": [h["ratio"] for h in timed["head_to_head"]],
        "low": [h["ratio_ci"][0] for h in timed["head_to_head"]],
        "high": [h["ratio_ci"][1] for h in timed["head_to_head"]],
        "verdict": [h["verdict"] for h in timed["head_to_head"]],
        "spread": [h["block_spread"] for h in timed["head_to_head"]],
        "blocks": [h["processes"] * h["rounds"] for h in timed["head_to_head"]],
        "processes": [h["processes"] for h in timed["head_to_head"]],
    })
    return out.sort_values(["op", "case", "ratio"], kind="stable").reset_index(drop=True)


def memory(res: Results) -> pd.DataFrame:
    c = res.checks
    mem = c[c["check"] == Check.PEAK_MEMORY]
    return pd.DataFrame({"adapter": mem["adapter"], "process": [f.get("process") for f in mem["facts"]],
                         "peak_rss_mb": [f.get("peak_rss_mb") for f in mem["facts"]],
                         "python": [f.get("executable") for f in mem["facts"]], "message": mem["message"]})


def present(res: Results) -> bool:
    return bool(len(rows(res)))


def standing(row: pd.Series) -> str:
    if row["verdict"] == "fastest":
        return "fastest"
    return f"{row['ratio']:.3f}× [{row['low']:.3f}–{row['high']:.3f}] {VERDICTS[row['verdict']]}"


def tally(df: pd.DataFrame) -> pd.DataFrame:
    """Per adapter: cases where it was fastest, tied with the fastest, or slower."""
    counts = df.pivot_table(index="adapter", columns="verdict", values="case", aggfunc="count", fill_value=0)
    for v in VERDICTS:
        if v not in counts:
            counts[v] = 0
    counts["median ratio"] = df.groupby("adapter")["ratio"].median()
    return counts[[*VERDICTS, "median ratio"]].sort_values("median ratio").reset_index()


def _chart(df: pd.DataFrame, op: str) -> str:
    sub = df[df["op"] == op]
    cases = list(dict.fromkeys(sub["case"]))
    adapters = list(dict.fromkeys(sub.sort_values("ratio")["adapter"]))
    fig = _figure(9, 0.35 * len(cases) * max(1, len(adapters)) / 2 + 1.2)
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
        Col("spread", "own blocks' spread", lambda v: f"{v:.0%}" + (" ⚠" if v > SPREAD_WARN else ""), numeric=True),
        Col("blocks", numeric=True)]


def html(res: Results) -> str:
    df = rows(res)
    intro = ("<p>Every adapter's process was alive at once and took turns on each case in short blocks, in an "
             "order shuffled every round, so the machine's drift touched all alike. Each ratio to the fastest is the "
             "median of per-round ratios, with a 95 % bootstrap interval over processes and rounds; an adapter "
             "whose interval reaches within 1 % of 1 is <em>tied</em> with the fastest. ⚠ marks an adapter whose "
             f"own blocks spread by more than {SPREAD_WARN:.0%} (IQR/median).</p>")
    summary = table(tally(df), [Col("adapter"), *(Col(v, VERDICTS[v], numeric=True) for v in VERDICTS),
                                Col("median ratio", fmt=lambda v: f"{v:.3f}×", numeric=True)])
    charts = "".join(f"<h3>{esc(op)}</h3>{_chart(df, op)}" for op in dict.fromkeys(df["op"]))
    mem = memory(res)
    mem_html = (table(mem, [Col("adapter"), Col("process", numeric=True),
                            Col("peak_rss_mb", "peak resident MB", lambda v: f"{v:,.0f}" if v == v and v else "—",
                                numeric=True), Col("python")])
                if len(mem) else empty("no process reported its memory"))
    return (intro + "<h3>Standings</h3>" + summary + "<h3>Every case</h3>" + table(df, COLS) + charts
            + "<h3>Peak memory per process</h3>" + mem_html)


def markdown(res: Results) -> list[str]:
    df = rows(res)
    lines = ["## Head to head", "",
             "Processes alive at once, taking turns in shuffled blocks; × fastest with its 95 % interval; tied = the "
             "interval reaches within 1 % of 1.", "",
             "| adapter | fastest | tied | slower | median × fastest |", "|---|---:|---:|---:|---:|"]
    for _, t in tally(df).iterrows():
        lines.append(f"| {t['adapter']} | {t['fastest']} | {t['tied']} | {t['slower']} | {t['median ratio']:.3f}× |")
    close = df[df["verdict"] == "tied"]
    if len(close):
        lines += ["", f"Tied with the fastest on {len(close)} of {df['case'].nunique()} cases "
                      f"(every case's ratio and interval: report.html)."]
    mem = memory(res)
    peaks = [p for p in mem["peak_rss_mb"] if p == p and p]
    if peaks:
        lines += ["", f"Peak resident memory per process: {min(peaks):,.0f}–{max(peaks):,.0f} MB "
                      f"({len(peaks)} processes)."]
    return [*lines, ""]

