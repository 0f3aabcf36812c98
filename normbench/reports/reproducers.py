"""Reproducers beside a report: each known divergence's example record (per entry and adapter) and each
unexpected failure, written as a standalone script (``normbench.repro``: numpy and the framework only, exit 1
while the divergence exists), which the divergences section links."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from ..repro import default_name, script_for
from .divergences import failures, known, outside_known
from .loading import Results

FOLDER = "repro"
MOST = 200  # scripts per report: past them, `normbench repro FILE:LINE` writes any record's
NUMBERS = ("max_abs_err", "err_eps", "tolerance")  # NaN there is what the record measured


def _record(row: pd.Series) -> dict:
    """The record as its results file has it: a column another record filled is NaN here."""
    return {k: v for k, v in row.items()
            if k in NUMBERS or not (isinstance(v, float) and math.isnan(v))}


def _wanted(res: Results) -> list[tuple[str, str, str]]:
    """(adapter, case, check) of the records to write, known divergences first."""
    out = []
    for _, r in known(res).iterrows():
        if isinstance(r["example_case"], str):
            out.append((r["adapter"], r["example_case"], r["example_check"]))
    for table in (outside_known(res), failures(res)):
        out += [(r["adapter"], r["case"], str(r["check"])) for _, r in table.iterrows()]
    return list(dict.fromkeys(out))[:MOST]


def write(res: Results, out: Path) -> dict[tuple[str, str, str], str]:
    """Each wanted record's script in ``out/repro``; (adapter, case, check) -> its path relative to ``out``.
    A record with no standalone reproducer (synchronized, a third party's, a timing) gets none."""
    c, made = res.checks, {}
    if not len(c):
        return made
    for adapter, case, check in _wanted(res):
        rows = c[(c["adapter"] == adapter) & (c["case"] == case) & (c["check"].astype(str) == check)]
        text = script_for(_record(rows.iloc[0])) if len(rows) else None
        if text is None:
            continue
        folder = out / FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        name = default_name(_record(rows.iloc[0]))
        stem, n = name.removesuffix(".py"), 1
        while (folder / name).exists():
            n += 1
            name = f"{stem}_{n}.py"
        (folder / name).write_text(text, encoding="utf-8")
        made[(adapter, case, check)] = f"{FOLDER}/{name}"
    return made
