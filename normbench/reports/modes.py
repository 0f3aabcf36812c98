"""The Execution modes section: each adapter's other modes (``torch+inductor``) against its default,
judged by the same oracle. Per adapter, mode and op: what its checks found, the worst error over
tolerance in the mode and in the default on the same cases, the same on the stress inputs (where a
change of variance algorithm shows as cancellation), and its speed against the default, timed head
to head, with the interval."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..numerics.divergence import STRESS
from ..results.kinds import Check, Outcome
from .formatting import fmt_count, fmt_time, sig3
from .html_elements import Col, esc, table
from .loading import Results
from .markdown_elements import cell
from .markdown_elements import table as md_table
from .rows import field_of, verification

STRESS_FACTOR = 10.0  # a mode whose worst error on the stress inputs is this many times its default's


def _moded(c: pd.DataFrame) -> pd.Series:
    return c["mode"].notna() if "mode" in c else pd.Series(False, index=c.index)


def present(res: Results) -> bool:
    return bool(len(res.checks)) and bool(_moded(res.checks).any())


def _worst(c: pd.DataFrame) -> float:
    err, tol = (pd.to_numeric(c[k], errors="coerce") for k in ("max_abs_err", "tolerance"))
    ratio = (err / tol).replace([np.inf, -np.inf], np.nan).dropna()
    return float(ratio.max()) if len(ratio) else float("nan")


def verified(res: Results) -> pd.DataFrame:
    """One row per adapter in a mode and op that ran a check: its outcomes; how close its passing
    records came to their tolerances, beside its default's on the cases both ran; and its worst error
    over tolerance on the stress inputs (the training-mode output), failures included, beside its default's."""
    c = verification(res)
    moded = c[_moded(c)]
    rows = []
    for (adapter, mode, op), own in moded.groupby(["adapter", "mode", "op"], sort=True):
        base = adapter.rpartition("+")[0]
        default = c[(c["adapter"] == base) & (c["op"] == op) & ~_moded(c) & c["case"].isin(own["case"])]
        passed, base_passed = (d[d["outcome"] == Outcome.PASS] for d in (own, default))
        # the output alone: where a change of variance algorithm shows first, unmasked by a derivative's divergence
        stress, base_stress = (d[d["input"].isin(STRESS) & (d["check"] == Check.FORWARD_TRAIN)] for d in (own, default))
        counts = own["outcome"].value_counts()
        row = {"adapter": base, "mode": mode, "op": op, "how": (own["facts"].iloc[0] or {}).get("mode_settings"),
               **{o.value: int(counts.get(o, 0)) for o in (Outcome.PASS, Outcome.KNOWN, Outcome.FAIL, Outcome.ERROR,
                                                           Outcome.SKIP)},
               "worst": _worst(passed), "default_worst": _worst(base_passed),
               "stress_worst": _worst(stress), "default_stress_worst": _worst(base_stress)}
        if row["pass"] + row["known"] + row["fail"] + row["error"] == 0:
            continue  # every check a skip: the mode does not build this op
        changed = row["stress_worst"] > STRESS_FACTOR * max(row["default_stress_worst"], 1e-3)
        row["variance"] = "changes: cancels on stress inputs" if changed else ""
        rows.append(row)
    return pd.DataFrame(rows)


def speed(res: Results) -> pd.DataFrame:
    """Each case a mode was timed on head to head with its default: the ratio (mode / default) and its
    interval, and each one's first call (compile included) and steady time."""
    c = res.checks
    if "head_to_head" not in c:
        return pd.DataFrame()
    rows = []
    for _, r in c[_moded(c) & c["head_to_head"].notna()].iterrows():
        versus = (r["head_to_head"] or {}).get("versus_default")
        if not versus:
            continue
        field = field_of(r["head_to_head"])  # the default's record from the same rounds (a run times it twice)
        base = c[(c["adapter"] == versus["default"]) & (c["case"] == r["case"]) & (c["check"] == r["check"])
                 & (c["head_to_head"].map(field_of) == field)]
        rows.append({"adapter": versus["default"], "mode": r["mode"], "op": r["op"], "case": r["case"],
                     "call": str(r["check"]), "ratio": versus["ratio"], "low": versus["ratio_ci"][0],
                     "high": versus["ratio_ci"][1], "verdict": versus["verdict"], "median_s": r.get("median_s"),
                     "default_median_s": base["median_s"].iloc[0] if len(base) else None,
                     "first_call_s": r.get("first_call_s"),
                     "default_first_call_s": base["first_call_s"].iloc[0] if len(base) else None})
    out = pd.DataFrame(rows)
    if len(out):
        out["pays_back_after"] = out.apply(pays_back, axis=1)
    return out


def pays_back(row: pd.Series) -> float:
    """Calls after which compiling has paid for itself: the extra first-call time over the steady saving,
    only where the mode is faster (its interval below 1), else NaN. A tied mode's medians differ by noise:
    their difference once made a tied row say "pays back after 573,319 calls"."""
    if row["verdict"] != "faster" or not row["default_median_s"] or row["default_median_s"] <= row["median_s"]:
        return float("nan")
    return max(row["first_call_s"] - row["default_first_call_s"], 0.0) / (row["default_median_s"] - row["median_s"])


def _interval(row) -> str:
    return f"{row['ratio']:.2f}× [{row['low']:.2f}–{row['high']:.2f}] {row['verdict']}"


def _calls(row: pd.Series) -> str:
    v = row["pays_back_after"]
    if v == v and v is not None:
        return f"{fmt_count(int(np.ceil(v)))} calls" if v >= 1 else "at once"
    return "unknown: tied" if row["verdict"] == "tied" else "never"


VERIFIED = [Col("adapter", cls="nowrap"), Col("mode", cls="nowrap"), Col("op", cls="nowrap"),
            Col("pass", fmt=fmt_count, numeric=True), Col("known", fmt=fmt_count, numeric=True),
            Col("fail", fmt=fmt_count, numeric=True), Col("error", fmt=fmt_count, numeric=True),
            Col("skip", fmt=fmt_count, numeric=True),
            Col("worst", "passes' worst err/tol", fmt=sig3, numeric=True),
            Col("default_worst", "default's", fmt=sig3, numeric=True),
            Col("stress_worst", "stress inputs", fmt=sig3, numeric=True),
            Col("default_stress_worst", "default's", fmt=sig3, numeric=True), Col("variance", "variance algorithm")]
SETTINGS = [Col("name", "mode", cls="nowrap"), Col("how", "what ran")]
SPEED = [Col("adapter", cls="nowrap"), Col("mode", cls="nowrap"), Col("case", cls="case"), Col("call", cls="nowrap"),
         Col("ratio", "mode / default [95 %]", numeric=True, show=_interval), Col("median_s", "mode", fmt=fmt_time,
                                                                                  numeric=True),
         Col("default_median_s", "default", fmt=fmt_time, numeric=True),
         Col("first_call_s", "first call", fmt=fmt_time, numeric=True),
         Col("default_first_call_s", "default's first", fmt=fmt_time, numeric=True),
         Col("pays_back_after", "compiling pays back after", numeric=True, show=_calls)]

NOTE = ("Each adapter's other execution modes, named <code>adapter+mode</code>, are verified against the same float64 "
        "oracle with the same derived tolerances as its default mode, never against the default's output. "
        "<em>passes' worst err/tol</em> is how close its passing records came to their tolerances, beside the "
        "default mode's on the same cases; <em>stress inputs</em> is the largest error over tolerance of the "
        "training-mode output, failures and known divergences included, on inputs far from zero against their "
        "spread (offsets 10²–10⁴, tiny variance, constant rows), where a mode that changes the variance algorithm "
        f"to one pass cancels (said where it is over {STRESS_FACTOR:g}× its default's).")
# Measured: in a fresh process, torch.compile of LayerNorm 2048×768 took 10.7 s, then 2048×1024 1.05 s.
FIRST_CALL_NOTE = ("A process's first compile also pays its compiler's one-time set-up (Inductor's: seconds), so the "
                   "first case a mode timed shows a longer first call than its compile alone.")
SPEED_NOTE = ("Timed head to head with the default mode in the same rounds: the ratio is the mode's time over the "
              "default's, with its 95 % bootstrap interval. The first call includes compiling, in the adapter's first "
              "process, which starts with empty compile caches (JAX's, XLA's and Inductor's are the benchmark's own, "
              "not ones an earlier run left); compiling pays back once the steady saving has covered the extra "
              "first-call time, where the mode is faster; never where it is slower; unknown where the two are tied. "
              + FIRST_CALL_NOTE)


def _tally(s: pd.DataFrame) -> str:
    """Per adapter and mode: on how many cases it was faster than its default, tied, slower."""
    parts = []
    for (adapter, mode), own in s.groupby(["adapter", "mode"], sort=True):
        counts = own["verdict"].value_counts()
        parts.append(f"{adapter}+{mode} " + ", ".join(f"{int(counts.get(v, 0))} {v}" for v in ("faster", "tied",
                                                                                               "slower")))
    return "; ".join(parts)


def settings(v: pd.DataFrame) -> pd.DataFrame:
    """What each mode ran, once per adapter and mode: it is the same for every op, and a column of it
    repeated per op pushed the table past the page's width."""
    if not len(v):
        return pd.DataFrame(columns=["name", "how"])
    first = v.groupby(["adapter", "mode"], sort=True)["how"].first().dropna()
    return pd.DataFrame({"name": [f"{a}+{m}" for a, m in first.index], "how": first.to_numpy()})


def html(res: Results) -> str:
    v, s = verified(res), speed(res)
    body = ""
    if len(v):
        body = f'<p class="note">{NOTE}</p>' + table(v, VERIFIED)
        if len(ran := settings(v)):
            body += f'<div class="fit">{table(ran, SETTINGS, sortable=False)}</div>'
    if len(s):
        body += (f'<h3>Speed against the default mode</h3><p class="note">{esc(SPEED_NOTE)} Of '
                 f"{len(s)} cases: {esc(_tally(s))}.</p>" + table(s, SPEED))
    return body


def markdown(res: Results) -> list[str]:
    v, s = verified(res), speed(res)
    out = ["### Execution modes", ""]
    if len(v):
        rows = [[cell(r["adapter"]), cell(r["mode"]), cell(r["op"]),
                 cell(f"{r['pass']} pass, {r['known']} known, {r['fail']} fail, {r['error']} error"),
                 cell(f"{sig3(r['worst'])} ({sig3(r['default_worst'])})"),
                 cell(f"{sig3(r['stress_worst'])} ({sig3(r['default_stress_worst'])})"), cell(r["variance"])]
                for _, r in v.iterrows()]
        out += [md_table(["adapter", "mode", "op", "checks", "passes' worst err/tol (default's)",
                          "stress inputs (default's)", "variance algorithm"], rows), ""]
        if len(ran := settings(v)):
            out += ["What each mode ran: " + "; ".join(f"`{r['name']}`: {r['how']}" for _, r in ran.iterrows()) + ".",
                    ""]
    if len(s):
        rows = [[cell(r["adapter"]), cell(r["mode"]), cell(r["case"]), cell(r["call"]), cell(_interval(r)),
                 cell(f"{fmt_time(r['first_call_s'])} ({fmt_time(r['default_first_call_s'])})")]
                for _, r in s.iterrows()]
        out += [f"Timed head to head with the default mode (mode / default, with its 95 % interval), of {len(s)} "
                f"cases: {_tally(s)}. {FIRST_CALL_NOTE}", "",
                f"<details><summary>Every case ({len(s)})</summary>\n\n"
                + md_table(["adapter", "mode", "case", "call", "mode / default [95 %]", "first call (default's)"], rows)
                + "\n\n</details>", ""]
    return out
