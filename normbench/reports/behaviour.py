"""What each adapter measurably does with each op (defaults, eps placement, running-variance
convention, …), read from the records' facts."""

from __future__ import annotations

import pandas as pd

from ..results.facts import conventions, says
from ..results.kinds import Check, Outcome
from .loading import Results, once_per_results
from .rows import first_fact, op_or_none, op_title, ordered_ops, own_section

# ---------------------------------------------------------------- behaviour

EPS_CASE = "-eps0.1"  # the case whose eps is large enough to tell where it goes
BEHAVIOUR_FACTS = {  # column: its label as a row of the per-op tables (the reports' notes explain them)
    "default eps": "default eps",
    "default momentum": "default momentum",
    "momentum as weight of new batch": "… as weight of the new batch",
    "affine by default": "affine by default",
    "running stats by default": "running stats by default",
    "float16 in → out": "float16 in → out",
    "eps": "eps goes",
    "running variance": "running var (measured)",
    "declared running variance": "running var (declared)",
    "one value per statistic": "one value per statistic",
    "train == eval": "train == eval",
    "mask support": "honours a mask",
}


def measured_conventions(rows: pd.DataFrame) -> list[frozenset[str]]:
    """The running-variance conventions each record matched (an empty set: neither), read from
    this format's list or an older file's "biased or unbiased" text. Records that passed speak for
    the convention; one a known divergence explains (a stress input whose statistics are off for a
    documented reason) matches neither, and says nothing about which one the layer keeps, unless
    no record passed; one whose stored variance overflowed never speaks for a convention."""
    passed = rows[rows["outcome"] == Outcome.PASS]
    rows = passed if len(passed) else rows
    # an overflowed (inf/NaN) running variance matches neither convention, and says nothing about either
    return [conventions(f["running_var"]) for f in rows["facts"]
            if f.get("running_var") is not None and not f.get("running_var_nonfinite")]


def common_conventions(rows: pd.DataFrame) -> frozenset[str] | None:
    """The conventions every record matched (None where no record measured one)."""
    found = measured_conventions(rows)
    return frozenset.intersection(*found) if found else None


def running_conventions(rows: pd.DataFrame) -> str | None:
    """The running-variance convention every record agrees on, in words: "biased or unbiased" where
    no record could tell them apart, "neither" where a record matched none, "varies by case" if
    records disagree (tf_keras: its fused 4-D kernel keeps unbiased, its other paths biased)."""
    found = measured_conventions(rows)
    if not found:
        return None
    if any(not s for s in found):
        return says(())
    common = frozenset.intersection(*found)
    return says(common) if common else "varies by case"


def _eps_placement(rows: pd.DataFrame) -> str | None:
    outcomes = set(rows["outcome"])
    if Outcome.FAIL in outcomes:
        return "differs"
    if Outcome.KNOWN in outcomes:
        return "differs (known divergence)"
    return "inside the sqrt" if Outcome.PASS in outcomes else None


@once_per_results
def behaviour(res: Results) -> pd.DataFrame:
    """What each adapter measurably does with each op, one row per adapter × op (ops in registry
    order), read from the records' facts (nothing hand-written). A fact an op cannot have (momentum
    where it keeps no running statistics) is missing, not "no"; ``running variance mismatch`` says
    where the measured convention breaks the adapter's declaration (those records fail)."""
    c = res.checks
    c = c[~own_section(c)] if len(c) else c
    cols = ["adapter", "op", "title", *BEHAVIOUR_FACTS, "running variance mismatch"]
    if not len(c):
        return pd.DataFrame(columns=cols)
    out = []
    for adapter in res.adapters:
        a = c[c["adapter"] == adapter]
        for name in ordered_ops(a["op"]):
            on = a[a["op"] == name]
            op = op_or_none(name)

            def rows(check, dtype=None, _on=on):
                sel = _on[_on["check"] == check]
                return sel[sel["dtype"] == dtype] if dtype else sel

            defaults = rows(Check.DEFAULTS)
            stateful = op is None or op.running_stats != "never"
            momentum = first_fact(defaults, "default_momentum") if stateful else None
            new_weight = first_fact(defaults, "default_momentum_new_weight") if stateful else None
            optional = op is None or op.running_stats == "optional"
            tracks = first_fact(defaults, "default_track_running_stats") if optional else None
            running = pd.concat([rows(Check.RUNNING_VAR), rows(Check.RUNNING_MEAN_STEPS)]) if stateful else on.iloc[0:0]
            measured = running_conventions(running)
            declared = next((f["declared_running_var"] for f in running["facts"]
                             if f.get("declared_running_var")), None)
            if declared is None and measured is not None:
                declared = "not declared"
            masked = on[on["params"].apply(lambda p: bool(p.get("masked")))]
            eps_rows = rows(Check.FORWARD_TRAIN)
            eps_rows = eps_rows[eps_rows["case"].str.contains(EPS_CASE, regex=False)]
            out.append({
                "adapter": adapter, "op": name, "title": op_title(name),
                "default eps": first_fact(defaults, "default_eps"),
                "default momentum": momentum,
                "momentum as weight of new batch": new_weight,
                "affine by default": first_fact(defaults, "default_affine"),
                "running stats by default": tracks,
                "float16 in → out": first_fact(rows(Check.FORWARD_TRAIN, "float16"), "output_dtype"),
                "eps": _eps_placement(eps_rows),
                "running variance": measured,
                "declared running variance": declared,
                "one value per statistic": first_fact(rows(Check.TRAIN_ONE_VALUE_PER_CHANNEL), "behaviour"),
                "train == eval": first_fact(rows(Check.TRAIN_EQUALS_EVAL), "identical"),
                "mask support": ("yes" if (masked["outcome"] != Outcome.SKIP).any() else "no") if len(masked) else None,
                "running variance mismatch": bool(
                    measured and declared not in (None, "not declared")
                    and declared not in (common_conventions(running) or ())),
            })
    return pd.DataFrame(out, columns=cols)


def behaviour_matrices(res: Results) -> list[tuple[str, pd.DataFrame]]:
    """Per op (registry order): (its title, a table of facts (rows, labelled as BEHAVIOUR_FACTS
    says) × adapters (columns)). A fact no adapter measured for the op is no row; an op with no
    measured fact is left out."""
    table = behaviour(res)
    out = []
    for name in ordered_ops(table["op"]):
        part = table[table["op"] == name].set_index("adapter")
        facts = part[list(BEHAVIOUR_FACTS)]
        facts = facts.loc[:, facts.notna().any()].T
        if len(facts):
            out.append((op_title(name), facts.rename(index=BEHAVIOUR_FACTS)))
    return out


def running_var_mismatches(res: Results) -> pd.DataFrame:
    """Adapter × op where the measured running variance breaks the declared convention."""
    table = behaviour(res)
    return table[table["running variance mismatch"]][["adapter", "title", "running variance",
                                                      "declared running variance"]].reset_index(drop=True)
