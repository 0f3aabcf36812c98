"""Which records each table reads (verification, single-process, derivatives, mixed precision), ops
by registry order, and the worst-of helpers every section's table uses."""

from __future__ import annotations

import pandas as pd

from .. import ops
from ..results.counts import NOT_INSTALLED
from ..results.kinds import DERIVATIVE_CHECKS, Outcome, Suite
from .formatting import missing
from .loading import Results, run_of


def ran(c: pd.DataFrame) -> pd.Series:
    """Which records come from an adapter that ran: not the skips a run writes for a framework it
    could not start (those list the adapter as missing; they are no check of it). ``not_installed``
    over the columns: row by row it took ~1.6 s of a full run's report, read 28 times."""
    return ~((c["outcome"] == Outcome.SKIP) & (c["framework_version"] == NOT_INSTALLED))


def verification(res: Results) -> pd.DataFrame:
    """Records of the verification suites (everything but benchmarks) of adapters that ran."""
    c = res.checks
    return c[(c["suite"] != Suite.SPEED) & ran(c)] if len(c) else c




def field_of(value) -> str:
    """The side field a record's ``head_to_head`` (a timing) or ``facts`` (a process's memory) names; "" for
    the main field."""
    return (value.get("field") or "") if isinstance(value, dict) else ""


def side_field(c: pd.DataFrame) -> pd.Series:
    """Benchmark records of a side field (``bench --field``): `normbench run` times the compiled modes it
    adds beside their default modes in a pass of their own. Only the Execution modes section reads them:
    their ratios to the fastest are within that small field, and the default modes are timed in the main
    pass as well, where the speed tables take them from."""
    named = pd.Series(False, index=c.index, dtype=bool)
    for column in ("head_to_head", "facts"):
        if column in c:
            named |= c[column].map(field_of).astype(bool)
    return named


def derivative(c: pd.DataFrame) -> pd.Series:
    """Which records check forward-mode or second-order derivatives."""
    return c["check"].isin(DERIVATIVE_CHECKS)


def mixed(c: pd.DataFrame) -> pd.Series:
    """Which records ran on a framework's mixed-precision path (half inputs, float32 parameters)."""
    return c["params"].apply(lambda p: isinstance(p, dict) and p.get("precision") == "mixed").astype(bool)


def own_section(c: pd.DataFrame) -> pd.Series:
    return (c["suite"] == Suite.SYNCHRONIZED) | derivative(c) | mixed(c)


def single_process(res: Results) -> pd.DataFrame:
    """Verification records of one layer in one process, first-order at the tested dtype: what the
    behaviour and agreement tables compare. Synchronized BatchNorm's replicated runs, derivatives
    and mixed-precision paths have a section of their own: their cases repeat the plain ones under
    the same or similar names, and would paint a plain case with a second-order failure or put a
    half-precision path's output dtype in the behaviour tables' float16 row."""
    c = verification(res)
    return c[~own_section(c)] if len(c) else c


def first_fact(rows: pd.DataFrame, key: str):
    for facts in rows["facts"]:
        if key in facts:
            return facts[key]
    return None


# ---------------------------------------------------------------- ops


def op_title(name) -> str:
    """How people write an op ("RMSNorm"); an op this normbench does not know keeps its name."""
    try:
        return ops.get(name).title
    except ValueError:
        return str(name)


def op_rank(name) -> tuple[int, str]:
    """Sort key: registry order, then ops this normbench does not know, by name."""
    order = ops.names()
    return (order.index(name), "") if name in order else (len(order), str(name))


def ordered_ops(names) -> list[str]:
    return sorted(dict.fromkeys(n for n in names if not missing(n)), key=op_rank)


def op_or_none(name):
    try:
        return ops.get(name)
    except ValueError:
        return None


SEVERITY = {Outcome.ERROR: 3, Outcome.FAIL: 2, Outcome.KNOWN: 1, Outcome.PASS: 0,  # which check speaks for a cell
            Outcome.SKIP: -1}


def with_ratio(c: pd.DataFrame) -> pd.DataFrame:
    """Errors and tolerances as numbers, and ratio = max abs error / tolerance (NaN where undefined)."""
    c = c.assign(
        max_abs_err=pd.to_numeric(c["max_abs_err"], errors="coerce"),
        tolerance=pd.to_numeric(c["tolerance"], errors="coerce"),
        err_eps=pd.to_numeric(c["err_eps"], errors="coerce"),
    )
    return c.assign(ratio=c["max_abs_err"] / c["tolerance"].where(c["tolerance"] > 0))


def run_labels(res: Results, rows: pd.DataFrame) -> pd.Series:
    """The run each record came from, by the name the environment table gives it (see :func:`run_of`)."""
    envs = res.environments
    if "source" not in rows or not len(envs) or "source" not in envs:
        return pd.Series(None, index=rows.index, dtype=object)
    return rows["source"].map(dict(zip(envs["source"], run_of(envs["run"]), strict=True)))


def tally(outcomes: pd.Series) -> str:
    """"3 fail, 12 pass": how many records a group holds, by outcome, the worst first."""
    counts = outcomes.value_counts()
    return ", ".join(f"{int(counts[o])} {o}" for o in sorted(counts.index, key=lambda o: -SEVERITY.get(o, 0)))


def worst_of(c: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of ``keys``, the record that speaks for it: the most severe outcome (SEVERITY),
    then the highest error / tolerance; ``checks`` counts the group's records, ``severity`` ranks it."""
    c = with_ratio(c).assign(severity=lambda d: d["outcome"].map(SEVERITY).fillna(0))
    c = c.sort_values(["severity", "ratio"], ascending=False, na_position="last", kind="stable")
    worst = c.groupby(keys, sort=False).head(1).set_index(keys)
    worst["checks"] = c.groupby(keys).size()
    return worst.reset_index()
