"""Benchmark records pooled per case (repeats as one measurement), the speed table's rows, and
the order allocators are shown in."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..ops.base import DTYPES
from ..results import allocators as alloc
from ..results.counts import TIMED_CASE
from ..results.kinds import NOT_TIMINGS, Check, Outcome, Suite
from .formatting import fmt_ratio, fmt_time_range, number
from .head_to_head import unsteady
from .loading import Results, allocator_names, once_per_results
from .rows import op_or_none, op_rank, run_labels, side_field

SPREAD_NOTE = 1.10  # slowest / fastest repeat median above which a time is shown with its range: the
# target is that a case's repeats (separate processes, minutes apart) agree within ±10% under the default
# allocator; a wider spread means one figure would hide how much the time moved.


def _per_repeat(ordered: pd.DataFrame, column: str) -> list[float | None]:
    values = ordered[column] if column in ordered else [None] * len(ordered)
    return [number(v) for v in values]


def _pool(group: pd.DataFrame) -> dict:
    """One case's repeats as one measurement: pooled per-round samples where recorded, with each
    repeat's median, process bandwidth and page faults kept to show how far repeats agree."""
    ordered = group.sort_values("repeat", kind="stable")
    first = ordered.iloc[0]
    samples = [x for s in group["samples_s"] if isinstance(s, list) for x in s]
    if samples:
        q1, median, q3 = np.percentile(samples, [25, 50, 75])
        iqr = q3 - q1
    else:
        median, iqr = float(group["median_s"].median()), float(group["iqr_s"].median())
    medians = [float(m) for m in ordered["median_s"]]
    gbps = first["bytes"] / median / 1e9
    row = first.to_dict()  # compile_s and first_call_s stay repeat 0's: later repeats reuse its compilation
    row.update(
        median_s=median, iqr_s=iqr, min_s=float(group["min_s"].min()), samples_s=samples or None,
        rounds=int(group["rounds"].sum()), repeats=len(group), repeat_medians_s=medians,
        repeat_spread=max(medians) / min(medians) if len(medians) > 1 and min(medians) > 0 else np.nan,
        repeat_ids=[int(r) for r in ordered["repeat"]],
        repeat_bandwidth_gbps=_per_repeat(ordered, "bandwidth_gbps"),
        repeat_faults_per_call=_per_repeat(ordered, "faults_per_call"),
        gbps=gbps, roofline_frac=_roofline(first, gbps))
    if "faults_per_call" in group:
        row["faults_per_call"] = pd.to_numeric(group["faults_per_call"], errors="coerce").mean()
    return row


def _roofline(first: pd.Series, gbps: float) -> float | None:
    """GB/s over the copy rate of the level the case's data fits in (head to head), else of main memory."""
    ceiling = number(first.get("roofline_gbps")) or number(first.get("bandwidth_gbps"))
    return gbps / ceiling if ceiling else None


TIMED_KEY = list(TIMED_CASE)  # one run's repeats of a case under one allocator: the counting rule's


@once_per_results
def timed_rows(res: Results) -> pd.DataFrame:
    """Benchmark records, each case's repeats under one allocator pooled into one row (outcome from
    the worst); ``primary`` marks the rows of each run's primary allocator (:func:`primary_allocator`)."""
    c = res.checks
    rows = c[(c["suite"] == Suite.SPEED) & ~c["check"].isin(NOT_TIMINGS) & ~side_field(c)] if len(c) else c
    if not len(rows):
        return rows
    rows = rows.assign(**{col: None for col in ("repeat", "samples_s", "median_s") if col not in rows},
                       allocator=allocator_names(rows))
    rows = rows.assign(repeat=rows["repeat"].fillna(0))
    ok = (rows["outcome"] == Outcome.PASS) & rows["median_s"].notna()
    # A case is timed only if every repeat was; one failed or errored repeat makes it broken.
    whole = ok.groupby([rows[k] for k in TIMED_KEY], dropna=False).transform("all")
    pooled = [_pool(g) for _, g in rows[whole].groupby(TIMED_KEY, sort=False, dropna=False)]
    broken = rows[~whole & ~ok].drop_duplicates(TIMED_KEY)
    out = pd.concat([pd.DataFrame(pooled), broken], ignore_index=True)
    out["allocator"] = allocator_names(out)
    primary = out.groupby("run", sort=False)["allocator"].agg(primary_allocator)
    chosen = out["run"].map(primary)
    return out.assign(primary=[a == p for a, p in zip(out["allocator"], chosen, strict=True)])


def primary_allocator(names: pd.Series) -> str | None:
    """The allocator a run's main tables show: the default where the run timed under it, else the
    one it timed most cases under (None where no record names one: older files)."""
    counts = names.dropna().value_counts()
    if not len(counts):
        return None
    if alloc.DEFAULT in counts:
        return alloc.DEFAULT
    return min(counts.index, key=lambda name: (-counts[name], str(name)))


SPEED_COLUMNS = ["op", "mode", "shape", "dtype", "group", "adapter", "allocator", "primary", "median_s", "iqr_s",
                 "min_s", "gbps", "roofline_frac", "roofline_level", "roofline_copies_gbps", "bytes", "faults_per_call",
                 "other_load", "compile_s",
                 "elements", "case",
                 "repeats", "repeat_ids", "repeat_medians_s", "repeat_spread", "repeat_bandwidth_gbps",
                 "repeat_faults_per_call", "machine", "run", "vs_fastest", "vs_low", "vs_high", "verdict",
                 "block_spread", "field_spread"]


@once_per_results
def speed(res: Results) -> pd.DataFrame:
    """Timed benchmarks with GB/s, roofline and the ratio to the fastest adapter of each case.

    The ratio compares adapters within a shape group (default shapes, sweep) and under one
    allocator, so each table a report shows has its own fastest. ``other_load`` is the worst of
    a case's repeats. Every allocator's rows are here; ``primary`` marks what the main tables show.
    """
    rows = timed_rows(res)
    rows = rows[rows["outcome"] == Outcome.PASS] if len(rows) else rows
    if not len(rows) or "median_s" not in rows:
        return pd.DataFrame(columns=SPEED_COLUMNS)
    rows = rows.assign(**{k: None for k in ("faults_per_call", "roofline_level", "roofline_copies_gbps")
                          if k not in rows})
    rows = rows.assign(
        mode=rows["check"],
        shape=rows["params"].apply(lambda p: "×".join(map(str, p.get("logical_shape", [])))),
        group=rows["params"].apply(lambda p: p.get("group")),
        elements=rows["params"].apply(lambda p: int(pd.Series(p.get("logical_shape", [0])).prod())),
        other_load=_other_load(res, rows),
        run_label=run_labels(res, rows),
    )
    rows = rows.assign(run=rows["run_label"], **_standings(rows))
    rows = rows.assign(field_spread=rows.groupby(CASE_KEY, dropna=False)["block_spread"].transform("median"))
    rows = rows.assign(_op=rows["op"].map(lambda n: op_rank(n)[0]),
                       _mode=[_rank(getattr(op_or_none(o), "bench_modes", ()), m)
                              for o, m in zip(rows["op"], rows["mode"], strict=True)],
                       _dtype=rows["dtype"].map(lambda d: _rank(DTYPES, d)),
                       _allocator=rows["allocator"].map(allocator_rank))
    return (rows.sort_values(["_op", "op", "_mode", "mode", "elements", "_dtype", "_allocator", "vs_fastest",
                             "median_s"])
            [SPEED_COLUMNS].reset_index(drop=True))


CASE_KEY = ["machine", "group", "allocator", "op", "mode", "shape", "dtype"]  # what "the fastest" is among


def _standings(rows: pd.DataFrame) -> dict[str, pd.Series]:
    """Where a case was timed head to head: the ratio to the fastest is the paired one, with its 95 %
    interval and verdict (``bench.head_to_head``), not a quotient of medians; NaN elsewhere."""
    h2h = rows["head_to_head"] if "head_to_head" in rows else pd.Series(None, index=rows.index, dtype=object)
    got = h2h.map(lambda h: h if isinstance(h, dict) else {})
    ratio = pd.to_numeric(got.map(lambda h: h.get("ratio")), errors="coerce")
    fastest = rows.groupby(CASE_KEY, dropna=False)["median_s"].transform("min")
    return {"vs_fastest": ratio.where(ratio.notna(), rows["median_s"] / fastest),
            "vs_low": pd.to_numeric(got.map(lambda h: (h.get("ratio_ci") or [None])[0]), errors="coerce"),
            "vs_high": pd.to_numeric(got.map(lambda h: (h.get("ratio_ci") or [None, None])[1]), errors="coerce"),
            "verdict": got.map(lambda h: h.get("verdict")),
            "block_spread": pd.to_numeric(got.map(lambda h: h.get("block_spread")), errors="coerce")}


def standing(row: pd.Series) -> str:
    """×fastest as a reader needs it: "1.23× [1.18–1.29]" or "1.01× tied" where timed head to head
    (the interval from paired rounds), else the quotient of medians ("1.23×")."""
    ratio, low, high = number(row.get("vs_fastest")), number(row.get("vs_low")), number(row.get("vs_high"))
    verdict = row.get("verdict")
    if ratio is None:
        return "—"
    if verdict == "fastest":
        return "fastest"
    if low is None or high is None:
        return fmt_ratio(ratio)
    return f"{ratio:.2f}× [{low:.2f}–{high:.2f}]" + (" tied" if verdict == "tied" else "")


def leads(row: pd.Series) -> bool:
    """The fastest of its case, or tied with it (head to head)."""
    verdict = row.get("verdict")
    if isinstance(verdict, str):
        return verdict in ("fastest", "tied")
    return (number(row.get("vs_fastest")) or 2.0) <= 1.0000001


def primary_speed(res: Results) -> pd.DataFrame:
    """What the main speed tables and charts show: each run's primary allocator only."""
    s = speed(res)
    return s[s["primary"].astype(bool)].reset_index(drop=True) if len(s) else s


def spread_note(row: pd.Series) -> str:
    """"repeats 1.10–1.52 ms" where a case's repeats disagree by more than SPREAD_NOTE; head to head,
    "own blocks spread 54%" where its blocks disagree (``head_to_head.unsteady``); else ""."""
    blocks = number(row.get("block_spread"))
    if blocks is not None:
        return f"own blocks spread {blocks:.0%}" if unsteady(blocks, number(row.get("field_spread"))) else ""
    spread, medians = number(row.get("repeat_spread")), row.get("repeat_medians_s")
    if spread is None or spread <= SPREAD_NOTE or not isinstance(medians, list):
        return ""
    return f"repeats {fmt_time_range(min(medians), max(medians))}"


def _rank(order, value) -> int:
    return order.index(value) if value in order else len(order)


def _other_load(res: Results, rows: pd.DataFrame) -> pd.Series:
    """Per pooled case, the most cores other processes kept busy during any of its repeats."""
    c = res.checks
    if "other_load" not in c:
        return pd.Series(np.nan, index=rows.index)
    c = c[c["suite"] == Suite.SPEED]
    c = c.assign(allocator=allocator_names(c).fillna(""))
    load = pd.to_numeric(c["other_load"], errors="coerce")
    worst = load.groupby([c[k] for k in TIMED_KEY]).max()
    keys = rows[TIMED_KEY].assign(allocator=rows["allocator"].fillna(""))
    return pd.Series([worst.get(tuple(k), np.nan) for k in keys.itertuples(index=False)], index=rows.index,
                     dtype=float)


def recompiles(res: Results) -> pd.DataFrame:
    c = res.checks
    rows = c[(c["suite"] == Suite.SPEED) & (c["check"] == Check.RECOMPILES)] if len(c) else c
    cols = ["adapter", "recompiles", "distinct lengths", "calls", "message", "machine"]
    if not len(rows):
        return pd.DataFrame(columns=cols)
    rows = rows.drop_duplicates(["run", "adapter"])  # counted once per run
    return pd.DataFrame({
        "adapter": rows["adapter"],
        "recompiles": rows["facts"].apply(lambda f: f.get("recompiles")),
        "distinct lengths": rows["facts"].apply(lambda f: len(set(f.get("lengths", [])))),
        "calls": rows["facts"].apply(lambda f: len(f.get("lengths", []))),
        "message": rows["message"], "machine": rows["machine"],
    }).reset_index(drop=True)


# ---------------------------------------------------------------- allocators and repeats

ALLOCATOR_ORDER = ("system", *(name for name in alloc.MEANINGS if name != "system"))  # the baseline first


def allocator_rank(name) -> int:
    """Sort key: system (the baseline), then normbench's known settings, then preloaded libraries."""
    return ALLOCATOR_ORDER.index(name) if name in ALLOCATOR_ORDER else len(ALLOCATOR_ORDER)


def allocator_order(names) -> list[str]:
    return sorted({n for n in names if isinstance(n, str)}, key=lambda n: (allocator_rank(n), n))


def allocator_meaning(res: Results, name: str) -> str:
    """What a setting means: normbench's own words for a known one, else what its files recorded."""
    if name in alloc.MEANINGS:
        return alloc.MEANINGS[name]
    envs = res.environments
    if "allocator_meaning" in envs:
        recorded = envs.loc[envs["allocator"] == name, "allocator_meaning"].dropna()
        if len(recorded):
            return str(recorded.iloc[0])
    return ""
