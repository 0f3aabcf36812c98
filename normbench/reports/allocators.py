"""Allocator effect, timing stability and the harness self-check: their tables and the prose
that explains them."""

from __future__ import annotations

import pandas as pd

from ..results.kinds import Check, Outcome, Suite
from .formatting import (
    fmt_ratio,
    plural,
)
from .loading import Results
from .rows import op_title, run_labels
from .timing import SPREAD_NOTE, allocator_meaning, allocator_order, allocator_rank, primary_speed, speed


def self_checks(res: Results) -> pd.DataFrame:
    """Each benchmark process's self-check (``bench.self_check``): harness against a bare timeit
    loop of the same call, interleaved in that process (and, for bench --self-check, a fresh one)."""
    cols = ["adapter", "run", "repeat", "outcome", "ratio", "fresh_ratio", "case_vs_bare", "allocator", "message"]
    c = res.checks
    rows = c[(c["suite"] == Suite.SPEED) & (c["check"] == Check.SELF_CHECK)] if len(c) else c
    if not len(rows):
        return pd.DataFrame(columns=cols)
    facts = rows["facts"]

    def fact(key):
        return facts.apply(lambda f: f.get(key))

    case, bare = pd.to_numeric(fact("case_median_s")), pd.to_numeric(fact("bare_median_s"))
    out = pd.DataFrame({
        "adapter": rows["adapter"], "run": run_labels(res, rows),
        "repeat": pd.to_numeric(rows["repeat"], errors="coerce") if "repeat" in rows else None,
        "outcome": rows["outcome"], "ratio": pd.to_numeric(fact("ratio")),
        "fresh_ratio": pd.to_numeric(fact("fresh_ratio")),
        "case_vs_bare": case / bare, "allocator": fact("allocator"), "message": rows["message"]})
    return out.sort_values(["run", "adapter"], kind="stable")[cols].reset_index(drop=True)


def self_check_text(found: pd.DataFrame) -> str:
    """One sentence over every self-check: how many passed, the range of the ratios."""
    n, passed = len(found), int((found["outcome"] == Outcome.PASS).sum())
    busy = int((found["outcome"] == Outcome.SKIP).sum())
    ratios = pd.concat([found["ratio"], found["fresh_ratio"]]).dropna()
    span_ = f"; harness/bare ratios {ratios.min():.3f}–{ratios.max():.3f}" if len(ratios) else ""
    return (f"{passed} of {plural(n, 'self-check')} passed (target 1.00 ± 0.05)"
            + (f", {busy} inconclusive on a busy machine" if busy else "") + span_
            + ". Harness and bare timeit blocks of the same call alternate in the benchmark process after its "
              "cases; the case's own median, timed earlier, is shown but not judged (the machine drifts).")


def allocator_note(res: Results) -> str | None:
    """The allocator the speed tables were timed under, said once, with what it means and which
    others were timed too (None where no record names one: files from before it was recorded)."""
    s = speed(res)
    if not len(s):
        return None
    shown = allocator_order(s.loc[s["primary"].astype(bool), "allocator"])
    if not shown:
        return None
    label = "Allocator" if len(shown) == 1 else "Allocators"
    main = "; ".join(" — ".join(p for p in (name, allocator_meaning(res, name)) if p) for name in shown)
    others = [n for n in allocator_order(s["allocator"]) if n not in shown]
    also = f" Also timed under {', '.join(others)}: see Allocator effect." if others else ""
    return f"{label}: {main}.{also}"


ALLOCATOR_CASE = ["machine", "run", "group", "op", "mode", "shape", "dtype", "adapter"]
ALLOCATOR_COLUMNS = [*ALLOCATOR_CASE, "allocator", "median_s", "faults_per_call", "repeat_spread",
                     "repeat_medians_s", "baseline", "vs_baseline", "effect"]


def shape_label(shape: str, group) -> str:
    """A case's shape, marked where it is a sweep point (a sweep may time a default shape again)."""
    return f"{shape} (sweep)" if group == "sweep" else str(shape)


def _baseline(names: list[str], primary: str | None) -> str:
    """What a case's allocators are compared with: system, else the run's primary, else the first."""
    return next(n for n in ("system", primary, names[0]) if n in names)


def allocators(res: Results) -> pd.DataFrame:
    """Cases one run timed under two or more allocators, a row per allocator: median time, page
    faults per call, and the ratio to the baseline: ``system`` (glibc as Python gets it) where
    the case was timed under it, else the run's primary allocator. ``effect`` is the case's
    slowest allocator over its fastest; cases come largest effect first, allocators in
    :data:`ALLOCATOR_ORDER`."""
    s = speed(res)
    s = s[s["allocator"].notna()] if len(s) else s
    if not len(s):
        return pd.DataFrame(columns=ALLOCATOR_COLUMNS)
    primary = s[s["primary"].astype(bool)].groupby("run")["allocator"].first()
    s = s.assign(_case=s.groupby(ALLOCATOR_CASE, dropna=False, sort=False).ngroup())
    s = s[s.groupby("_case")["allocator"].transform("nunique") >= 2]
    if not len(s):
        return pd.DataFrame(columns=ALLOCATOR_COLUMNS)
    timed = s.groupby("_case")["allocator"].agg(allocator_order)
    run = s.groupby("_case")["run"].first()
    s = s.assign(baseline=s["_case"].map({case: _baseline(names, primary.get(run[case]))
                                          for case, names in timed.items()}))
    base = s[s["allocator"] == s["baseline"]].drop_duplicates("_case").set_index("_case")["median_s"]
    by_case = s.groupby("_case")["median_s"]
    s = s.assign(vs_baseline=s["median_s"] / s["_case"].map(base),
                 effect=by_case.transform("max") / by_case.transform("min"),
                 _allocator=s["allocator"].map(allocator_rank))
    s = s.sort_values(["effect", "_case", "_allocator", "allocator"], ascending=[False, True, True, True],
                      kind="stable")
    return s[ALLOCATOR_COLUMNS].reset_index(drop=True)


def stability(res: Results) -> dict | None:
    """How far the repeats of each default-shape case agree under its run's primary allocator
    (None with fewer than two repeats of any case): the distribution of ``repeat_spread`` (the
    slowest repeat's median over the fastest's; repeats run in separate processes minutes apart)
    and the worst case, each repeat with its process's memory bandwidth and page faults per call,
    which tell a busy or throttled machine from an allocator that faults on some repeats only."""
    s = primary_speed(res)
    s = s[(s["group"] != "sweep") & s["repeat_spread"].notna()] if len(s) else s
    if not len(s):
        return None
    spread = s["repeat_spread"].astype(float)
    worst = s.loc[spread.idxmax()]
    repeats = pd.DataFrame({"repeat": worst["repeat_ids"], "median_s": worst["repeat_medians_s"],
                            "bandwidth_gbps": worst["repeat_bandwidth_gbps"],
                            "faults_per_call": worst["repeat_faults_per_call"]})
    return {"cases": len(s), "within": int((spread <= SPREAD_NOTE).sum()), "median": float(spread.median()),
            "p90": float(spread.quantile(0.9)), "worst": float(spread.max()),
            "allocators": allocator_order(s["allocator"]),
            "worst_case": {**{k: worst[k] for k in ("adapter", "op", "mode", "shape", "dtype", "allocator", "run",
                                                     "machine", "median_s")},
                           "title": op_title(worst["op"]), "repeats": repeats}}


def stability_text(found: dict) -> list[str]:
    """The timing-stability paragraph's sentences: how many cases' repeats agree within
    SPREAD_NOTE, the spread's median, 90th percentile and worst, and which case is the worst."""
    under = f" under {', '.join(found['allocators'])}" if found["allocators"] else ""
    w = found["worst_case"]
    return [f"Of {plural(found['cases'], 'default-shape case')} timed in several repeats{under}, {found['within']} "
            f"agree within ±{(SPREAD_NOTE - 1) * 100:.0f}% (slowest repeat's median ≤ {SPREAD_NOTE:.2f}× the "
            f"fastest's); spread median {fmt_ratio(found['median'])}, 90th percentile {fmt_ratio(found['p90'])}, "
            f"worst {fmt_ratio(found['worst'])}.",
            f"Worst: {w['adapter']} {w['title']} {w['mode']} {w['shape']} {w['dtype']}. A repeat whose process "
            "measured lower memory bandwidth points to a busy or throttled machine; one with many more page faults "
            "per call, to the allocator mapping the output afresh on each call."]


def allocator_text(table: pd.DataFrame) -> list[str]:
    """The allocator-effect explanation, written for a CPU user deciding whether to preload
    tcmalloc or jemalloc: how to read a cell, and what to conclude (meanings: :func:`allocator_meanings`)."""
    cases = table.groupby(ALLOCATOR_CASE, dropna=False, sort=False)["baseline"].first()
    bases = allocator_order(cases)
    base = ("system (glibc as a Python process gets it)" if bases == ["system"] else
            f"system where it was timed, else {', '.join(b for b in bases if b != 'system')}")
    return [f"Each case timed under each allocator, in processes of their own. A cell is the median time, its "
            f"page faults per call in brackets, and × the baseline: {base}; the largest effect first. ⚠ marks "
            f"an allocator whose repeats spread over more than ±{(SPREAD_NOTE - 1) * 100:.0f}%: an effect within "
            "that spread is noise.",
            "A CPU process runs under system unless it changes something. Where system is clearly slower and "
            "faults thousands of times per call, the norm's output is mapped in afresh on every call: a long "
            "training or inference loop gains the difference by preloading tcmalloc or jemalloc (LD_PRELOAD) or by "
            "setting warm's GLIBC_TUNABLES. Where the times agree within their repeats' spread, the allocator "
            "does not matter for that case."]


def allocator_meanings(res: Results, names) -> dict[str, str]:
    """Each named setting and what it means, baseline first."""
    return {name: allocator_meaning(res, name) or "as recorded" for name in allocator_order(names)}
