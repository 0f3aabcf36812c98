"""The speed sections of the Markdown report: head to head, the speed table, timing stability,
allocator effect, self-check and recompiles."""

from __future__ import annotations

from . import head_to_head as h2h
from . import model
from .formatting import (
    MISSING,
    fmt_faults,
    fmt_gbps,
    fmt_ratio,
    fmt_ratio3,
    fmt_time,
    missing,
    plural,
)
from .loading import Results
from .markdown_elements import ALLOCATOR_ROWS, cell, code, table


def _median(r) -> str:
    """Median (× the fastest), with the repeats' range where they disagree (model.SPREAD_NOTE)."""
    text = f"{fmt_time(r['median_s'])} ({model.standing(r)})"
    text = f"**{text}**" if model.leads(r) else text
    note = model.spread_note(r)
    return f"{text} ⚠ {note}" if note else text


def speed_table(res: Results) -> str:
    s = model.primary_speed(res)
    if not len(s):
        return "No speed results in these files."
    default = s[s["group"] == "default"]
    if not len(default):
        default = s
    index = ["op", "mode", "shape"]
    if default["dtype"].nunique() > 1:
        index.append("dtype")
    if default["machine"].nunique() > 1:
        index.append("machine")
    adapters = sorted(default["adapter"].unique())
    rows = []
    for key, group in default.groupby(index, sort=False):
        by_adapter = group.drop_duplicates("adapter").set_index("adapter")
        cells = []
        for adapter in adapters:
            if adapter not in by_adapter.index:
                cells.append(MISSING)
                continue
            cells.append(cell(_median(by_adapter.loc[adapter])))
        key = dict(zip(index, key, strict=True))
        key["op"] = model.op_title(key["op"])
        rows.append([cell(k) for k in key.values()] + cells)
    several = len(model.runs(res)) > default["machine"].nunique()
    unsteady = default["repeat_spread"].gt(model.SPREAD_NOTE).any()
    paired = default["verdict"].notna().any()
    out = ("Median time per call (× the fastest adapter), default shapes; the fastest is bold."
           + (" Timed head to head: × the fastest with its 95 % interval; \"tied\" (also bold) where that interval "
              "reaches within 1 % of 1." if paired else "")
           + (" Several runs per machine: each cell is the adapter's fastest run." if several else "")
           + (f" ⚠: the repeats' medians spread over more than ±{(model.SPREAD_NOTE - 1) * 100:.0f}% (their range "
              "follows)." if unsteady else "") + "\n\n"
           + table([*index, *adapters], rows))
    rest = len(s) - len(default)
    if rest:
        out += f"\n\n{plural(rest, 'more timing')} (shape sweeps) in the HTML report."
    return out


def stability_section(res: Results) -> str | None:
    """How far repeats agree, and the worst case's repeats with their process's bandwidth and faults."""
    found = model.stability(res)
    if found is None:
        return None
    summary, worst = model.stability_text(found)
    rows = [[cell(r["repeat"]), cell(fmt_time(r["median_s"])), cell(fmt_gbps(r["bandwidth_gbps"])),
             cell(fmt_faults(r["faults_per_call"]))] for _, r in found["worst_case"]["repeats"].iterrows()]
    return (f"{cell(summary)}\n\n{cell(worst)}\n\n"
            + table(["repeat", "median", "memory bandwidth (GB/s)", "page faults/call"], rows))


def _allocator_cell(r) -> str:
    ratio = "" if r["allocator"] == r["baseline"] else f" · {fmt_ratio(r['vs_baseline'])}"
    spread = " ⚠" if model.spread_note(r) else ""
    return cell(f"{fmt_time(r['median_s'])}{spread} ({fmt_faults(r['faults_per_call'])}){ratio}")


def allocator_section(res: Results, n: int = ALLOCATOR_ROWS) -> str | None:
    """Cases timed under several allocators: one row each, a column per allocator, largest effect first."""
    found = model.allocators(res)
    if not len(found):
        return None
    names = model.allocator_order(found["allocator"])
    runs = found["run"].nunique() > 1
    rows = []
    groups = list(found.groupby(model.ALLOCATOR_CASE, dropna=False, sort=False))
    for _, g in groups[:n]:
        first, by = g.iloc[0], {r["allocator"]: r for _, r in g.iterrows()}
        key = [cell(model.op_title(first["op"])), cell(first["mode"]),
               cell(model.shape_label(first["shape"], first["group"])), cell(first["dtype"]), cell(first["adapter"])]
        rows.append([*key, cell(fmt_ratio(first["effect"])),
                     *(_allocator_cell(by[a]) if a in by else MISSING for a in names),
                     *([cell(first["run"])] if runs else [])])
    intro, advice = model.allocator_text(found)
    meanings = "\n".join(f"- {code(a)}: {cell(m)}" for a, m in model.allocator_meanings(res, names).items())
    header = ["op", "mode", "shape", "dtype", "adapter", "slowest / fastest",
              *(f"{a}: time (faults/call)" for a in names), *(["run"] if runs else [])]
    out = f"{cell(intro)} {cell(advice)}\n\n{meanings}\n\n{table(header, rows)}"
    if len(groups) > n:
        out += f"\n\n… and {len(groups) - n:,} more cases in the HTML report."
    return out


def self_check_section(res: Results) -> str | None:
    found = model.self_checks(res)
    if not len(found):
        return None
    rows = [[cell(r["adapter"]), cell(r["outcome"]), cell(fmt_ratio3(r["ratio"])), cell(fmt_ratio3(r["fresh_ratio"])),
             cell(fmt_ratio3(r["case_vs_bare"]))] for _, r in found.iterrows()]
    return (cell(model.self_check_text(found)) + "\n\n"
            + table(["adapter", "outcome", "harness/bare", "harness/fresh-process bare", "case median/bare"], rows))


def recompile_table(res: Results) -> str | None:
    r = model.recompiles(res)
    if not len(r):
        return None
    rows = [[cell(x["adapter"]), cell(MISSING if missing(x["recompiles"]) else str(int(x["recompiles"]))),
             cell(x["distinct lengths"]), cell(x["calls"]), cell(x["message"])] for _, x in r.iterrows()]
    return table(["adapter", "recompiles", "distinct lengths", "calls", "note"], rows)


def speed_md(res: Results) -> list[str]:
    """The speed part: the allocator the tables show, the speed table, then stability, allocator effect,
    self-check and recompiles where these files have them."""
    note = model.allocator_note(res)
    parts = ["## Speed", "", *([cell(note), ""] if note else []), speed_table(res), ""]
    for title, found in (("Timing stability", stability_section(res)), ("Allocator effect", allocator_section(res)),
                         ("Self-check", self_check_section(res))):
        parts += [f"### {title}", "", found, ""] if found else []
    recompiles = recompile_table(res)
    return parts + (["### Recompiles", "", recompiles, ""] if recompiles else [])


def head_to_head_md(res: Results) -> list[str]:
    df = h2h.rows(res)
    lines = ["## Head to head", "",
             "Processes alive at once, taking turns in shuffled blocks, each once the process before it had gone "
             "quiet; × fastest with its 95 % interval; tied = the interval reaches within 1 % of 1.", "",
             "| adapter | fastest | tied | slower | median × fastest | median spread of its own blocks "
             "| its threads ran on after a block |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for _, t in h2h.tally(df).iterrows():
        lines.append(f"| {t['adapter']} | {t['fastest']} | {t['tied']} | {t['slower']} | {t['median ratio']:.3f}× "
                     f"| {t['median spread']:.0%} | {fmt_time(t['busy after'])} |")
    close = df[df["verdict"] == "tied"]
    if len(close):
        lines += ["", f"Tied with the fastest on {close['case'].nunique()} of {df['case'].nunique()} cases "
                      f"({len(close)} adapters in all; every case's ratio and interval: report.html)."]
    mem = h2h.memory(res)
    peaks = [p for p in mem["peak_rss_mb"] if p == p and p]
    if peaks:
        held, most, budget = h2h.together(res), h2h.hungriest(res), h2h.budget_line(res)
        lines += ["", f"Peak resident memory per process: {min(peaks):,.0f}–{max(peaks):,.0f} MB "
                      f"({len(peaks)} processes)" + (f"; at most {held[0]:,.0f} MB for the {held[1]} processes of a "
                                                     "pass together" if held else "")
                  + (f", on {most[0]}." if most else ".") + (f" {budget}" if budget else "")]
    return [*lines, ""]
