"""Known divergences (which entry explained which records, inside or outside its envelope) and
unexpected failures."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..results.kinds import Outcome
from .loading import Results
from .rows import run_labels, with_ratio

KNOWN_COLUMNS = ["divergence", "reason", "link", "adapter", "records", "outside", "ratio", "envelope", "used",
                 "how", "example", "example_case", "example_check"]


def _envelope_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Records a known divergence matched, with error / tolerance, their envelope (in multiples of
    their tolerance) and the share of it used."""
    raised = rows["max_abs_err"].isna()  # an exception: no error was measured (inf or nan would be)
    rows = with_ratio(rows)
    envelope = pd.to_numeric(rows["facts"].apply(lambda f: f.get("envelope")), errors="coerce")
    nonfinite = ~raised & ~np.isfinite(rows["max_abs_err"])
    ratio = rows["ratio"].where(~nonfinite, np.inf).where(~raised)
    return rows.assign(ratio=ratio, envelope=envelope, used=ratio / envelope.where(envelope > 0), raised=raised,
                       nonfinite=nonfinite)


def _how(g: pd.DataFrame) -> str:
    """What the records that are not a number against an envelope did: raised, or overflowed."""
    raised = int(g["raised"].sum())
    nonfinite = int(g["nonfinite"].sum())
    parts = [f"{raised} raised" if raised else "", f"{nonfinite} non-finite" if nonfinite else ""]
    return ", ".join(p for p in parts if p)


def _entries(rows: pd.DataFrame) -> dict[str, tuple[str, str]]:
    """Each entry the records name, with its reason and link as the records carry them (the report
    reads records, not the registry: results from another normbench version name their own)."""
    found: dict[str, tuple[str, str]] = {}
    for entry, facts in zip(rows.get("entry", []), rows.get("facts", []), strict=True):
        if entry not in found or not found[entry][0]:
            found[entry] = (facts.get("reason") or "", facts.get("link") or "")
    return found


def known(res: Results) -> pd.DataFrame:
    """Known divergences seen in these results, one row per entry and adapter (entries in known.py's
    order): how many records it explained, how many fell outside its envelope (those fail), and the
    record that came closest to the envelope: its error / tolerance, the envelope (the largest ratio
    the cause explains) and the share of it used. ``how`` counts records that raised or overflowed,
    which an envelope does not measure."""
    c = res.checks
    if not len(c):
        return pd.DataFrame(columns=KNOWN_COLUMNS)
    key = c["facts"].apply(lambda f: f.get("known") or None)
    # entries selected with their rows: a Series assigned to an empty frame would bring back its whole index
    explained = (c["outcome"] == Outcome.KNOWN) & key.notna()
    inside = c[explained].assign(entry=key[explained])
    outside_key = c["facts"].apply(lambda f: f.get("outside_known"))
    outside = c[outside_key.notna()].assign(entry=outside_key[outside_key.notna()])
    out = []
    for key, (reason, link) in _entries(pd.concat([inside, outside])).items():
        hits = _envelope_rows(inside[inside["entry"] == key]) if len(inside) else inside
        out_hits = outside[outside["entry"] == key] if len(outside) else outside
        for adapter in sorted(set(hits["adapter"]) | set(out_hits["adapter"])):
            g = hits[hits["adapter"] == adapter] if len(hits) else hits
            row = {"divergence": key, "reason": reason, "link": link, "adapter": adapter,
                   "records": len(g), "outside": int((out_hits["adapter"] == adapter).sum()), "ratio": None,
                   "envelope": None, "used": None, "how": _how(g) if len(g) else "", "example": None,
                   "example_case": None, "example_check": None}
            if len(g):
                scored = g.dropna(subset=["used"])
                scored = scored[np.isfinite(scored["used"])]  # overflows are counted under "how"
                worst = (scored.loc[scored["used"].idxmax()] if len(scored)
                         else g.sort_values("ratio", ascending=False, na_position="last").iloc[0])
                row.update(ratio=worst["ratio"], envelope=worst["envelope"], used=worst["used"],
                           example=f"{worst['case']} {worst['check']}", example_case=worst["case"],
                           example_check=str(worst["check"]))
            out.append(row)
    return pd.DataFrame(out, columns=KNOWN_COLUMNS)


OUTSIDE_COLUMNS = ["adapter", "divergence", "case", "check", "ratio", "envelope", "within_envelope", "link",
                   "message", "rerun", "machine", "run"]


def outside_known(res: Results) -> pd.DataFrame:
    """Records a known divergence matched but whose error exceeded its envelope (or that raised what
    the cause does not, or overflowed where it does not): failures the known cause does not explain."""
    c = res.checks
    rows = c[c["facts"].apply(lambda f: bool(f.get("outside_known")))] if len(c) else c
    if not len(rows):
        return pd.DataFrame(columns=OUTSIDE_COLUMNS)
    rows = _envelope_rows(rows)
    facts = rows["facts"]
    rows = rows.assign(divergence=facts.apply(lambda f: f["outside_known"]),
                       within_envelope=facts.apply(lambda f: f.get("within_envelope")).where(
                           ~(np.isfinite(rows["ratio"]) & rows["envelope"].notna())),  # the numbers say it
                       link=facts.apply(lambda f: f.get("link")), run=run_labels(res, rows))
    rows = rows.sort_values("used", ascending=False, na_position="last", kind="stable")
    return rows[OUTSIDE_COLUMNS].reset_index(drop=True)


def failures(res: Results) -> pd.DataFrame:
    """Unexpected failures and errors, with the command that reruns each."""
    c = res.checks
    rows = c[c["outcome"].isin([Outcome.FAIL, Outcome.ERROR])] if len(c) else c
    cols = ["adapter", "suite", "case", "check", "outcome", "message", "rerun", "machine", "run"]
    if not len(rows):
        return pd.DataFrame(columns=cols)
    return rows.assign(run=run_labels(res, rows))[cols].reset_index(drop=True)
