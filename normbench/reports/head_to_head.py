"""Head to head in the results model: for each case timed head to head (``bench --head-to-head``),
every adapter's ratio to the fastest with its 95 % interval and what it lets us say (fastest, tied,
slower), how far its own blocks disagreed, and each process's peak resident memory. The section's
HTML is ``html.head_to_head``, its Markdown ``markdown_speed.head_to_head_md``."""

from __future__ import annotations

import pandas as pd

from ..results.kinds import Check, Outcome
from .loading import Results
from .rows import field_of, side_field

VERDICTS = {"fastest": "fastest", "tied": "tied with the fastest", "slower": "slower"}
SPREAD_WARN = 0.10  # an adapter's own blocks spread (IQR/median) beyond this ...
SPREAD_FACTOR = 2.0  # ... and beyond this many times the case's median adapter's: said beside its row. On a
# noisy machine every adapter's blocks spread 15-40 %; a mark on every row would tell the reader nothing


def unsteady(spread: float | None, field: float | None) -> bool:
    """Whether an adapter's own blocks disagreed, against the floor and against the rest of its case."""
    if spread is None or spread != spread:
        return False
    return spread > SPREAD_WARN and (field is None or field != field or spread > SPREAD_FACTOR * field)


def rows(res: Results) -> pd.DataFrame:
    """One row per case and adapter timed head to head."""
    c = res.checks
    if "head_to_head" not in c:
        return pd.DataFrame()
    timed = c[c["head_to_head"].notna() & (c["outcome"] == Outcome.PASS) & ~side_field(c)]
    if not len(timed):
        return pd.DataFrame()
    h = pd.DataFrame(list(timed["head_to_head"]), index=timed.index)
    out = pd.DataFrame({
        "op": timed["op"], "case": timed["case"], "mode": timed["check"].astype(str), "adapter": timed["adapter"],
        "version": timed["framework_version"], "median_s": timed["median_s"], "ratio": h["ratio"],
        "low": h["ratio_ci"].str[0], "high": h["ratio_ci"].str[1], "verdict": h["verdict"],
        "spread": h["block_spread"], "blocks": h["processes"] * h["rounds"], "processes": h["processes"],
        "heats": pd.to_numeric(h["heats"], errors="coerce").fillna(1) if "heats" in h else 1,
        "busy_after_s": pd.to_numeric(h["busy_after_block_s"], errors="coerce") if "busy_after_block_s" in h else None,
    })
    out["field_spread"] = out.groupby("case")["spread"].transform("median")
    return out.sort_values(["op", "case", "ratio"], kind="stable").reset_index(drop=True)


def memory(res: Results) -> pd.DataFrame:
    c = res.checks
    mem = c[c["check"] == Check.PEAK_MEMORY]
    return pd.DataFrame({"adapter": mem["adapter"], "process": [f.get("process") for f in mem["facts"]],
                         "field": mem["facts"].map(field_of),
                         "peak_rss_mb": [f.get("peak_rss_mb") for f in mem["facts"]],
                       "pass_together_mb": [f.get("pass_together_mb") for f in mem["facts"]],
                         "python": [f.get("executable") for f in mem["facts"]], "message": mem["message"],
                         "retired_on": [f.get("retired_on") for f in mem["facts"]]})


def hungriest(res: Results) -> tuple[str, float] | None:
    """The case on which a pass's processes held the most at once, and how much (MB)."""
    c = res.checks
    if "field_resident_mb" not in c:
        return None
    held = pd.to_numeric(c["field_resident_mb"], errors="coerce").dropna()
    if not len(held):
        return None
    return str(c.loc[held.idxmax(), "case"]), float(held.max())


def together(res: Results) -> tuple[float, int] | None:
    """The most the processes of one pass held at once, and how many processes a pass had at once (one per
    adapter: a restarted process and its successor are one)."""
    mem = memory(res)
    peaks = mem.dropna(subset=["pass_together_mb"]) if len(mem) else mem
    if not len(peaks):
        return None
    return float(peaks["pass_together_mb"].max()), int(peaks.groupby(["field", "process"])["adapter"].nunique().max())


def heats(res: Results) -> tuple[int, int, float | None]:
    """How many cases ran in heats, of how many timed head to head, and the memory budget (MB) that
    sent them there (None: the run had none)."""
    df = rows(res)
    envs = res.environments
    budgets = (pd.to_numeric(envs["memory_budget_mb"], errors="coerce").dropna()
               if "memory_budget_mb" in envs else pd.Series(dtype=float))
    if not len(df):
        return 0, 0, None
    return (int(df.loc[df["heats"] > 1, "case"].nunique()), int(df["case"].nunique()),
            float(budgets.max()) if len(budgets) else None)


def budget_line(res: Results) -> str:
    """The memory budget and what it cost, in words (plain text, for both reports)."""
    heated, cases, budget = heats(res)
    if budget is None:
        return ""
    if not heated:
        return f"Every case fit within the pass's memory budget of {budget:,.0f} MB with the whole field at once."
    mem = memory(res)
    retired = mem[mem["retired_on"].notna()]
    restarted = (f" To keep a heat within it, {len(retired)} idle process{'es' if len(retired) > 1 else ''} of "
                 f"{', '.join(sorted(set(retired['adapter'])))} {'were' if len(retired) > 1 else 'was'} restarted, "
                 "giving back memory its framework kept from earlier cases." if len(retired) else "")
    return (f"{heated} of {cases} cases did not fit within the pass's memory budget of {budget:,.0f} MB with the "
            "whole field at once and ran in heats: the same anchor adapter in each, every ratio read through it, "
            "so their intervals are wider." + restarted)


def present(res: Results) -> bool:
    return bool(len(rows(res)))


def standing(row: pd.Series) -> str:
    heats = f" (in {int(row['heats'])} heats)" if row.get("heats", 1) > 1 else ""
    if row["verdict"] == "fastest":
        return "fastest" + heats
    return f"{row['ratio']:.3f}× [{row['low']:.3f}–{row['high']:.3f}] {VERDICTS[row['verdict']]}{heats}"


def tally(df: pd.DataFrame) -> pd.DataFrame:
    """Per adapter: cases where it was fastest, tied with the fastest, or slower; its median ratio to the
    fastest, the median spread of its own blocks (how well interleaving held for it) and how long its
    threads ran on after a block, which the next block waited out (NaN where not recorded)."""
    counts = df.pivot_table(index="adapter", columns="verdict", values="case", aggfunc="count", fill_value=0)
    for v in VERDICTS:
        if v not in counts:
            counts[v] = 0
    counts["median ratio"] = df.groupby("adapter")["ratio"].median()
    counts["median spread"] = df.groupby("adapter")["spread"].median()  # how well interleaving held for it
    counts["busy after"] = pd.to_numeric(df["busy_after_s"], errors="coerce").groupby(df["adapter"]).median()
    return counts[[*VERDICTS, "median ratio", "median spread", "busy after"]].sort_values("median ratio").reset_index()
