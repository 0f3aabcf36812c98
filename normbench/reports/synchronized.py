"""Synchronized BatchNorm in the results model: what each adapter's cross-replica BatchNorm does,
read from the ``synchronized`` suite's records, and its error per replica layout.

Apart from :mod:`model` because these records answer another question than the single-process
tables (which leave them out): does the framework weight replicas by their sample counts, honour
masks across replicas, survive a replica holding one sample. Every text here is derived from a
record; where no record says, the fact is "not run" or missing, never assumed.
"""

from __future__ import annotations

import pandas as pd

from ..results.facts import conventions, says
from ..results.kinds import Check, Outcome, Suite
from .behaviour import common_conventions
from .formatting import MISSING, plural
from .model import SEVERITY, Results, running_conventions, worst_of

SUPPORT = Check.SYNCHRONIZED  # the check of the one support record per adapter
NOT_RUN = "not run"
FACTS = {  # key: the column's label
    "synchronizes": "synchronizes?",
    "count_weighted": "count-weighted statistics?",
    "uneven": "uneven replicas passed as",
    "single_sample": "a replica holding one sample",
    "masks": "masks under synchronization",
    "running_var": "running variance stored",
}
FACT_COLUMNS = ["adapter", "fact", "label", "text", "outcome", "known", "link", "detail"]
CELL_COLUMNS = ["replicas", "split", "layout", "case", "adapter", "check", "dtype", "outcome", "err_eps",
                "max_abs_err", "tolerance", "ratio", "checks", "known", "link", "message"]
MESSAGE = 100  # characters of a framework's message kept in a fact

# What the forward output matched, strongest claim first: (statistics_match entry, count-weighted text,
# mask text). "global" wins where several match (one replica, or replicas holding equal counts).
MATCHES = (
    ("global", "yes", "honoured"),
    ("unweighted", "no: unweighted average of the replicas",
     "per replica only: the replicas' statistics averaged unweighted"),
    ("local", "no: each replica normalizes with its own statistics",
     "ignored: each replica normalizes with its own statistics"),
)
NEITHER = "matches none of the global, unweighted-average or per-replica statistics"


def given(v) -> bool:
    """A text field that holds something (pandas turns a missing one into None or NaN)."""
    return isinstance(v, str) and v != ""


def records(res: Results) -> pd.DataFrame:
    """The synchronized suite's records."""
    c = res.checks
    return c[c["suite"] == Suite.SYNCHRONIZED] if len(c) else c


def _split(row) -> tuple[int, ...]:
    return tuple(int(b) for b in (row["params"].get("replicas") or ()))


def _short(text, limit: int = MESSAGE) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _splits(rows: pd.DataFrame) -> str:
    return ", ".join(dict.fromkeys("+".join(map(str, _split(r))) for _, r in rows.iterrows()))


def _worst(outcomes) -> str | None:
    found = [o for o in outcomes if o in SEVERITY]
    return max(found, key=SEVERITY.get) if found else None


def _known(rows: pd.DataFrame) -> tuple[str | None, str | None]:
    """The first known divergence that explains one of ``rows``: (key, link)."""
    for _, r in rows[rows["outcome"] == Outcome.KNOWN].iterrows():
        if r["facts"].get("known"):
            return r["facts"]["known"], r["facts"].get("link")
    return None, None


def _fact(text: str, outcome: str | None = None, rows: pd.DataFrame | None = None, detail: str = "") -> dict:
    key, link = _known(rows) if rows is not None and len(rows) else (None, None)
    return {"text": text, "outcome": outcome, "known": key, "link": link, "detail": detail}


def _unjudged(rows: pd.DataFrame) -> dict | None:
    """The fact of rows that never compared anything (every one skipped or raised), else None."""
    if not len(rows):
        return _fact(NOT_RUN)
    if not rows["outcome"].isin([Outcome.SKIP, Outcome.ERROR]).all():
        return None
    first = rows[rows["outcome"] == _worst(rows["outcome"])].iloc[0]
    if first["outcome"] == Outcome.ERROR:
        return _fact(f"error: {_short(first['message'])}", Outcome.ERROR, rows, f"on {_splits(rows)}")
    return _fact(NOT_RUN, Outcome.SKIP, rows, _short(first["message"], 400))


def _matched(rows: pd.DataFrame, column: int) -> dict:
    """What forward_train ``rows`` matched, said as MATCHES' ``column`` (1: weighting, 2: masks),
    each different answer with the replica splits it came from."""
    unjudged = _unjudged(rows)
    if unjudged is not None:
        return unjudged
    judged = rows[~rows["outcome"].isin([Outcome.SKIP, Outcome.ERROR])]
    said: dict[str, list[str]] = {}
    for _, r in judged.iterrows():
        match = r["facts"].get("statistics_match") or []
        text = next((m[column] for m in MATCHES if m[0] in match), f"no: {NEITHER}" if column == 1 else NEITHER)
        said.setdefault(text, []).append("+".join(map(str, _split(r))))
    texts = list(said)
    text = texts[0] if len(texts) == 1 else "; ".join(f"{t} ({', '.join(dict.fromkeys(s))})" for t, s in said.items())
    skipped = len(rows) - len(judged)
    detail = f"from forward_train on {_splits(judged)}" + (f"; {skipped} not run" if skipped else "")
    return _fact(text, _worst(rows["outcome"]), rows, detail)


def _widest_engine(cases: pd.DataFrame) -> str | None:
    """The engine of the case that ran on the most replicas (the support case runs on two)."""
    ran = cases[~cases["outcome"].isin([Outcome.SKIP, Outcome.ERROR])
                & cases["facts"].apply(lambda f: bool(f.get("engine")))]
    if not len(ran):
        return None
    return ran.loc[ran["_split"].apply(len).idxmax(), "facts"]["engine"]


def _synchronizes(support: pd.DataFrame, cases: pd.DataFrame) -> dict:
    """The support record's verdict: the engine it runs on (as the widest case ran it), or the
    refusal with its fallbacks. A refusal is shown muted (skip) while its documented fallbacks
    hold, as a failure where one does not."""
    engine = _widest_engine(cases)
    if not len(support):
        return _fact(engine, None, detail="no support record; engine from the cases") if engine else _fact(NOT_RUN)
    r = support.iloc[0]
    facts = r["facts"]
    if facts.get("synchronized") == "runs":
        return _fact(engine or facts.get("engine") or _short(r["message"]), Outcome.PASS)
    if facts.get("synchronized") == "refused":
        fallbacks = facts.get("fallbacks") or {}
        checked = ", ".join(f"{name} {'✓' if held else '✗'}" for name, held in fallbacks.items())
        text = f"refused: {_short(facts.get('refusal'), 160)}" + (f" (fallbacks: {checked})" if checked else "")
        return _fact(text, Outcome.SKIP if all(fallbacks.values()) else Outcome.FAIL, detail=facts.get("engine") or "")
    word = "error" if r["outcome"] == Outcome.ERROR else "not run"
    return _fact(f"{word}: {_short(r['message'])}", r["outcome"])


def _uneven(rows: pd.DataFrame, uneven_cases: pd.DataFrame) -> dict:
    given = [f["uneven"] for f in rows["facts"] if f.get("uneven")]
    if given:
        return _fact(given[0])
    ran = uneven_cases[~uneven_cases["outcome"].isin([Outcome.SKIP, Outcome.ERROR])]
    return _fact(MISSING, detail="the adapter records no uneven fact") if len(ran) else _fact(NOT_RUN)


def _verdict(rows: pd.DataFrame) -> str:
    """What the checks of one replica split did: their worst outcome, in words."""
    worst = _worst(rows["outcome"])
    bad = rows[rows["outcome"] == worst]
    if worst == Outcome.PASS:
        return "matches the global batch"
    if worst in (Outcome.ERROR, Outcome.SKIP) and (worst == Outcome.ERROR or len(bad) == len(rows)):
        return f"{'error' if worst == 'error' else 'skipped'}: {_short(bad['message'].iloc[0])}"
    word = {Outcome.FAIL: "fails", Outcome.KNOWN: "known divergence on"}.get(worst, worst)
    return f"{word} {len(bad)} of {plural(len(rows), 'check')}"


def _single_sample(rows: pd.DataFrame) -> dict:
    """Every check of the cases whose split gives a replica one sample, per split (an even split
    of ones tells the single sample apart from uneven weighting): the worst outcome in words."""
    if not len(rows):
        return _fact(NOT_RUN)
    said: dict[str, list[str]] = {}
    for split, g in rows.groupby(rows["_split"].apply(lambda b: "+".join(map(str, b))), sort=False):
        said.setdefault(_verdict(g), []).append(split)
    texts = list(said)
    text = texts[0] if len(texts) == 1 else "; ".join(f"{t} ({', '.join(s)})" for t, s in said.items())
    bad = rows[rows["outcome"].isin([Outcome.FAIL, Outcome.ERROR, Outcome.KNOWN])]
    detail = f"{plural(len(rows), 'check')} on {_splits(rows)}" + (
        f"; not passing: {', '.join(dict.fromkeys(bad['check']))}" if len(bad) else "")
    return _fact(text, _worst(rows["outcome"]), rows, detail)


def _running_var(rows: pd.DataFrame) -> dict:
    unjudged = _unjudged(rows)
    if unjudged is not None:
        return unjudged
    judged = rows[~rows["outcome"].isin([Outcome.SKIP, Outcome.ERROR])]
    measured = running_conventions(judged) or MISSING
    declared = next((f["declared_running_var"] for f in judged["facts"] if f.get("declared_running_var")), None)
    neither = says(())
    broken = bool(declared) and declared not in (common_conventions(judged) or ())
    text = measured + (f" (declares {declared})" if broken else "")
    off = judged[judged["facts"].apply(lambda f: "running_var" in f and not conventions(f["running_var"]))]
    if len(off) and measured != neither:
        known = int((off["outcome"] == Outcome.KNOWN).sum())
        text += f"; {len(off)} of {plural(len(judged), 'case')} match neither" + (f", {known} known" if known else "")
    if any(f.get("replicas_agree") is False for f in rows["facts"]):
        text += "; replicas' copies differ"
    if judged["_split"].apply(len).max() == 1:
        text += " (on one replica only)"
    outcome = Outcome.FAIL if broken or measured == neither else _worst(judged["outcome"])
    return _fact(text, outcome, rows, f"after {judged['facts'].iloc[0].get('steps', '?')} steps, on {_splits(judged)}")


def facts(res: Results) -> pd.DataFrame:
    """One row per adapter and fact (FACTS, in order): its text, an outcome that colours it (None:
    plain), the known divergence that explains it with its link, and a detail for a tooltip.

    Count-weighting is read from forward_train on unmasked cases whose replicas hold different
    counts; masks from forward_train on masked cases; "a replica with one sample" from every check
    of the cases whose split holds a 1."""
    s = records(res)
    if not len(s):
        return pd.DataFrame(columns=FACT_COLUMNS)
    s = s.assign(_split=[_split(r) for _, r in s.iterrows()],
                 _masked=s["params"].apply(lambda p: bool(p.get("masked"))))
    out = []
    for adapter in sorted(s["adapter"].unique()):
        a = s[s["adapter"] == adapter]
        support, cases = a[a["check"] == SUPPORT], a[a["check"] != SUPPORT]
        uneven = cases[cases["_split"].apply(lambda b: len(set(b)) > 1) & ~cases["_masked"]]
        forward = cases["check"] == Check.FORWARD_TRAIN
        found = {
            "synchronizes": _synchronizes(support, cases),
            "count_weighted": _matched(uneven[uneven["check"] == Check.FORWARD_TRAIN], 1),
            "uneven": _uneven(a, uneven),
            "single_sample": _single_sample(cases[cases["_split"].apply(lambda b: 1 in b)]),
            "masks": _matched(cases[forward & cases["_masked"]], 2),
            "running_var": _running_var(cases[cases["check"] == Check.RUNNING_VAR]),
        }
        out += [{"adapter": adapter, "fact": key, "label": FACTS[key], **found[key]} for key in FACTS]
    return pd.DataFrame(out, columns=FACT_COLUMNS)


def layout_label(row) -> str:
    """A case's replica split and what each replica holds: "1+3+4+8 · 16×6 float32 normal"."""
    p = row["params"]
    shape = "×".join(map(str, row["shape"] or ()))
    extras = [x for x in (row["input"], "channels-last" if p.get("layout") == "channels_last" else "",
                          "masked" if p.get("masked") else "") if x]
    return f"{'+'.join(map(str, _split(row)))} · {shape} {row['dtype']} {' '.join(extras)}".rstrip()


def cells(res: Results) -> pd.DataFrame:
    """One row per replica case and adapter: the check that speaks for it (model.worst_of: the most
    severe outcome, then the highest error / tolerance; a case every check of which skipped is a
    skip, with its reason). Cases by number of replicas, then as the suite ran them."""
    s = records(res)
    s = s[s["check"] != SUPPORT] if len(s) else s
    if not len(s):
        return pd.DataFrame(columns=CELL_COLUMNS)
    split = [_split(r) for _, r in s.iterrows()]
    s = s.assign(split=["+".join(map(str, b)) for b in split], replicas=[len(b) for b in split],
                 layout=[layout_label(r) for _, r in s.iterrows()],
                 known=s["facts"].apply(lambda f: f.get("known")), link=s["facts"].apply(lambda f: f.get("link")))
    order = {case: i for i, case in enumerate(dict.fromkeys(s["case"]))}
    out = worst_of(s, ["case", "adapter"])
    out = out.assign(_order=out["case"].map(order)).sort_values(["replicas", "_order", "adapter"], kind="stable")
    return out[CELL_COLUMNS].reset_index(drop=True)


def by_replicas(res: Results) -> pd.DataFrame:
    """Per adapter and number of replicas, the worst of its cells (as :func:`cells` picks them) and
    how many cases it covers: what a one-line summary says."""
    c = cells(res)
    cols = ["adapter", "replicas", "outcome", "ratio", "case", "layout", "cases", "known"]
    if not len(c):
        return pd.DataFrame(columns=cols)
    worst = worst_of(c, ["adapter", "replicas"]).rename(columns={"checks": "cases"})
    return worst.sort_values(["adapter", "replicas"])[cols].reset_index(drop=True)
