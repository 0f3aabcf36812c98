"""The report as GitHub-flavoured Markdown, small enough for a pull-request comment.

Every number comes from :mod:`normbench.reports.model`; long tables are cut to their worst
rows here, and the HTML report keeps everything (charts, full tables).
"""

from __future__ import annotations

import math
import re

import pandas as pd

from . import model
from .model import Results

MAX_FAILURES = 25  # failures listed; the rest are counted
MAX_TEXT = 160  # characters kept of a message or reason


def cell(value) -> str:
    """One table cell: missing values as a dash, no newlines, pipes and HTML escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if isinstance(value, float):
        return _num(value)
    text = " ".join(str(value).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|") or "—"


def code(text: str) -> str:
    """A code span of ``text`` that survives backticks in it; pipes escaped for tables."""
    text = " ".join(str(text).split())
    ticks = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}".replace("|", "\\|")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A GFM table; ``rows`` hold already-formatted cells (see :func:`cell`)."""
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _num(x: float) -> str:
    if math.isnan(x):
        return "—"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3g}" if abs(x) < 1000 else f"{x:.3e}"


def _short(text, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ms(seconds: float) -> str:
    """Milliseconds with three significant digits."""
    value = seconds * 1e3
    return f"{value:.3g}" if value < 1000 else f"{value:.0f}"


def times(ratio: float) -> str:
    return f"{ratio:.2f}×" if ratio < 10 else f"{ratio:.0f}×"


def environments(res: Results) -> str:
    envs = res.environments
    if not len(envs):
        return "No environment records."

    def threads(text):
        found = re.search(r"NORMBENCH_THREADS=(\d+)", text or "")
        return found.group(1) if found else (text or "defaults")

    def bandwidth(values):
        gbps = pd.to_numeric(values, errors="coerce").dropna()
        if not len(gbps):
            return None
        low, high = gbps.min(), gbps.max()
        return f"{low:.1f} GB/s" if high - low < 0.05 else f"{low:.1f}–{high:.1f} GB/s"

    # One row per run: a `normbench run` writes one results file per process.
    envs = envs.assign(_run=envs["run"].astype(str).str.split("/").str[0])
    rows = []
    for run, group in envs.groupby("_run", sort=False):
        e = group.sort_values("date").iloc[0]
        files = f" ({len(group)} results files)" if len(group) > 1 else ""
        rows.append([cell(run + files), cell(e["machine"]), cell(str(e.get("date") or "")[:16]),
                     code(str(e.get("git_commit") or "?")[:10]), cell(e.get("python")),
                     cell(threads(e.get("threads"))), cell(bandwidth(group["bandwidth_gbps"]))])
    out = [table(["run", "machine", "date", "commit", "Python", "threads", "memory bandwidth"], rows)]
    for versions in dict.fromkeys(envs["versions"].fillna("")):
        out.append(f"\nVersions: {cell(versions)}")
    missing = [m for m in dict.fromkeys(envs["adapters_missing"].fillna("")) if m]
    if missing:
        out.append(f"\nNot installed: {cell('; '.join(missing))}")
    return "\n".join(out)


def verdict_table(res: Results) -> str:
    v = model.verdicts(res)
    suites = sorted(v["suite"].unique())
    rows = []
    for adapter, group in v.groupby("adapter", sort=True):
        by_suite = {r["suite"]: r for _, r in group.iterrows()}
        cells = []
        for suite in suites:
            r = by_suite.get(suite)
            if r is None:
                cells.append("—")
                continue
            mark = "❌" if r["fail"] + r["error"] else "✅"
            counts = ", ".join(f"{int(r[o])} {o}" for o in ("fail", "error", "pass", "known", "skip") if r[o])
            cells.append(f"{mark} {counts}")
        rows.append([cell(adapter), *cells])
    return table(["adapter", *suites], rows)


def behaviour_table(res: Results) -> str | None:
    b = model.behaviour(res)
    if not len(b):
        return None
    b = b.set_index("adapter")
    b = b.loc[:, b.notna().any()]
    if not b.shape[1]:
        return None
    t = b.T
    return table(["property", *t.columns], [[cell(name), *(cell(v) for v in row)] for name, row in t.iterrows()])


def agreement_table(res: Results, n: int = 10) -> str | None:
    a = model.agreement(res).head(n)
    if not len(a):
        return None
    rows = [[cell(r["adapter"]), cell(r["case"]), cell(r["check"]), cell(r["outcome"]), cell(r["err_eps"]),
             cell(r["max_abs_err"]), cell(r["tolerance"]), cell(r["ratio"])] for _, r in a.iterrows()]
    return table(["adapter", "case", "check", "outcome", "error (eps)", "max abs error", "tolerance",
                  "error / tolerance"], rows)


def known_table(res: Results) -> str | None:
    k = model.known(res)
    if not len(k):
        return None
    rows = [[code(r["divergence"]), cell(r["adapters"]), cell(r["records"]), cell(_short(r["reason"])),
             f"[link]({r['link']})" if r["link"] else "—"] for _, r in k.iterrows()]
    return table(["divergence", "adapters", "records", "reason", "upstream"], rows)


def failures_section(res: Results) -> str:
    f = model.failures(res)
    if not len(f):
        return "none"
    rows = [[cell(r["adapter"]), cell(r["case"]), cell(r["check"]), cell(r["outcome"]),
             cell(_short(str(r["message"]).split("\n")[0], 120)), code(r["rerun"]) if r["rerun"] else "—"]
            for _, r in f.head(MAX_FAILURES).iterrows()]
    out = table(["adapter", "case", "check", "outcome", "message", "rerun"], rows)
    if len(f) > MAX_FAILURES:
        out += f"\n\n… and {len(f) - MAX_FAILURES} more in the HTML report."
    return out


def speed_table(res: Results) -> str:
    s = model.speed(res)
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
                cells.append("—")
                continue
            r = by_adapter.loc[adapter]
            text = f"{ms(r['median_s'])} ({times(r['vs_fastest'])})"
            cells.append(f"**{text}**" if r["vs_fastest"] <= 1.0 else text)
        rows.append([cell(k) for k in key] + cells)
    several = len(res.environments) > default["machine"].nunique()
    out = ("Median milliseconds per call (× the fastest adapter), default shapes; the fastest is bold."
           + (" Several runs per machine: each cell is the adapter's fastest run." if several else "") + "\n\n"
           + table([*index, *adapters], rows))
    rest = len(s) - len(default)
    if rest:
        out += f"\n\n{rest} more timings (shape sweeps) in the HTML report."
    return out


def recompile_table(res: Results) -> str | None:
    r = model.recompiles(res)
    if not len(r):
        return None
    rows = [[cell(x["adapter"]), cell("—" if pd.isna(x["recompiles"]) else str(int(x["recompiles"]))),
             cell(x["distinct lengths"]), cell(x["calls"]), cell(x["message"])] for _, x in r.iterrows()]
    return table(["adapter", "recompiles", "distinct lengths", "calls", "note"], rows)


def headline(res: Results, verified: bool) -> str:
    s = model.speed(res)
    lines = [model.headline(res)] if verified else []
    if len(s):
        lines.append(f"{len(s)} timings of {s['adapter'].nunique()} adapters on "
                     f"{s['machine'].nunique()} machine(s).")
    return "  \n".join(lines) or "No results in these files."


def render(res: Results, html_name: str = "report.html") -> str:
    """The whole report as Markdown; sections with nothing to show say so."""
    c = res.checks
    verified = bool(len(c)) and bool((c["suite"] != "speed").any())
    parts = ["# normbench report", "", headline(res, verified),
             "", "## Environment", "", environments(res), "", "## Verification", ""]
    if verified:
        parts += [verdict_table(res), ""]
        for title, section in (("Behaviour", behaviour_table(res)),
                               ("Worst agreement (10 largest errors relative to tolerance)", agreement_table(res)),
                               ("Known divergences", known_table(res))):
            parts += [f"### {title}", "", section or "none", ""]
        parts += ["### Failures", "", failures_section(res), ""]
    else:
        parts += ["No verification results in these files.", ""]
    parts += ["## Speed", "", speed_table(res), ""]
    recompiles = recompile_table(res)
    if recompiles:
        parts += ["### Recompiles", "", recompiles, ""]
    parts += ["---", f"Charts and full tables: {code(html_name)} (the HTML report next to this file)."]
    return "\n".join(parts) + "\n"
