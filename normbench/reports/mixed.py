"""Mixed-precision paths in the results model: what each adapter's path (half-precision inputs,
float32 parameters) does, one row per adapter, path and input dtype.

Apart from :mod:`model` because these records answer another question than the tested-dtype
tables (which leave them out): which dtype does the path compute, return and store in, and are its
statistics as accurate as float32 accumulation makes them? Every record on a path is judged
against the tolerance of the dtype the path documents its computation in, so where that is float32,
"every record passes" is what "consistent with float32 accumulation" means. Facts are read from
records; ops that differ are named.
"""

from __future__ import annotations

import re

import pandas as pd

from ..results.kinds import Check, Outcome
from .formatting import MISSING, number, sig3
from .model import Results, mixed, op_rank, op_title, ordered_ops, tally, verification, worst_of

FLOAT32 = "float32"
YES = "yes (within the float32 bound)"
NO_PATH = "no path"
DTYPE_ORDER = ("bfloat16", "float16")
COLUMNS = ["adapter", "how", "dtype", "ops", "compute", "output", "running", "grads", "float32", "float32_outcome",
           "outcome", "ratio", "err_eps", "max_abs_err", "tolerance", "check", "case", "checks", "tally", "known",
           "link", "message", "doc_link", "path", "reason", "reasons"]


def records(res: Results) -> pd.DataFrame:
    """The records of cases run on a mixed-precision path."""
    c = verification(res)
    return c[mixed(c)] if len(c) else c


def _text(v) -> str | None:
    return v if isinstance(v, str) and v else None


def _distinct(rows: pd.DataFrame, key: str, checks: tuple[str, ...] = ()) -> list[str]:
    """The distinct values of fact ``key`` in ``rows`` (of ``checks``, if given), first seen first."""
    if checks:
        rows = rows[rows["check"].isin(checks)]
    return list(dict.fromkeys(v for f in rows["facts"] if (v := _text(f.get(key)))))


def _fold(by_op: dict[str, str | None], titles: list[str]) -> str:
    """One fact over a row's ops: the value alone where every op has it, else each value with the
    ops it holds for ("bfloat16 (LayerNorm); float32 (BatchNorm)")."""
    said: dict[str, list[str]] = {}
    for title, value in by_op.items():
        if value:
            said.setdefault(value, []).append(title)
    if not said:
        return MISSING
    if len(said) == 1 and len(next(iter(said.values()))) == len(titles):
        return next(iter(said))
    return "; ".join(f"{v} ({', '.join(t)})" for v, t in said.items())


def _grads(rows: pd.DataFrame) -> str | None:
    dx, dgamma = _distinct(rows, "grad_dtype", (Check.GRAD_DX,)), _distinct(rows, "grad_dtype", (Check.GRAD_DGAMMA,))
    if not dx and not dgamma:
        return None
    return f"{' or '.join(dx) or MISSING}; {' or '.join(dgamma) or MISSING}"


def _ratio(r: pd.Series) -> float:
    """A record's error / tolerance, infinite where it measured none (a ratio to rank by)."""
    err, tol = number(r["max_abs_err"]), number(r["tolerance"])
    return err / tol if err is not None and tol else float("inf")


def _float32(rows: pd.DataFrame, compute: dict[str, str]) -> tuple[str, str | None]:
    """Whether the statistics are consistent with float32 accumulation, and the outcome that colours
    it: every record of the ops whose path documents float32 compute within its tolerance (yes), or
    the worst one that is not (no: its error / tolerance, op and check). Ops whose path computes in
    a half dtype were judged against that dtype's looser bound: not judged here."""
    ops32 = [t for t, c in compute.items() if c == FLOAT32]
    other: dict[str, list[str]] = {}
    for t, c in compute.items():
        if c != FLOAT32:
            other.setdefault(c, []).append(t)
    rest = "; ".join(f"not judged: documents {c} compute" + ("" if len(t) == len(compute) else f" ({', '.join(t)})")
                     for c, t in other.items())
    judged = rows[rows["title"].isin(ops32) & rows["outcome"].isin([Outcome.PASS, Outcome.FAIL, Outcome.KNOWN])]
    if not len(judged):
        return (rest or MISSING), (Outcome.SKIP if rest else None)
    bad = judged[judged["outcome"] != Outcome.PASS]
    if not len(bad):
        return "; ".join(x for x in (YES, rest) if x), Outcome.PASS
    worst = bad.loc[bad.apply(_ratio, axis=1).idxmax()]
    key = _text(worst["facts"].get("known"))
    where = f"{worst['title']} {worst['check']}" + (f", known: {key}" if key else "")
    fine = [t for t in ops32 if t not in set(bad["title"]) and t in set(judged["title"])]
    text = f"no: {sig3(_ratio(worst))}× ({where})" + (f"; within it on {', '.join(fine)}" if fine else "")
    outcome = Outcome.FAIL if (bad["outcome"] == Outcome.FAIL).any() else Outcome.KNOWN
    return "; ".join(x for x in (text, rest) if x), outcome


def _path_row(adapter: str, how: str | None, dtype: str, rows: pd.DataFrame) -> dict:
    titles = [op_title(o) for o in ordered_ops(rows["op"])]
    per_op = {t: g for t, g in rows.groupby("title", sort=False)}
    per_op = {t: per_op[t] for t in titles}
    compute = {t: (_distinct(g, "compute_documented") or [MISSING])[0] for t, g in per_op.items()}
    float32, float32_outcome = _float32(rows, compute)
    worst = worst_of(rows, ["adapter"]).iloc[0]
    return {
        "adapter": adapter, "how": how, "dtype": dtype, "ops": titles,
        "compute": _fold(compute, titles),
        "output": _fold({t: " or ".join(_distinct(g, "output_dtype")) for t, g in per_op.items()}, titles),
        "running": _fold({t: " or ".join(_distinct(g, "running_dtype")) for t, g in per_op.items()}, titles),
        "grads": _fold({t: _grads(g) for t, g in per_op.items()}, titles),
        "float32": float32, "float32_outcome": float32_outcome,
        **{k: worst[k] for k in ("outcome", "ratio", "err_eps", "max_abs_err", "tolerance", "check", "case",
                                 "checks", "message")},
        "tally": tally(rows["outcome"]), "known": _text(worst["facts"].get("known")),
        "link": _text(worst["facts"].get("link")), "doc_link": (_distinct(rows, "precision_link") or [None])[0],
        "path": True, "reason": None,
    }


def _reason(row: pd.Series) -> str:
    """A skip reason without the op and dtype it names (the row lists those)."""
    text = str(row["message"] or NO_PATH)
    return re.sub(rf" for {re.escape(str(row['op']))} on {re.escape(str(row['dtype']))}( inputs)?", "", text)


def _no_path_row(adapter: str, rows: pd.DataFrame) -> dict:
    """Ops and dtypes without a path, each op qualified by its dtypes where it has a path on others."""
    dtypes = sorted(rows["dtype"].unique(), key=_dtype_rank)
    ops = []
    for name in ordered_ops(rows["op"]):
        on = sorted(rows.loc[rows["op"] == name, "dtype"].unique(), key=_dtype_rank)
        ops.append(op_title(name) + ("" if on == dtypes else f" ({', '.join(on)})"))
    reasons = list(dict.fromkeys(rows["_reason"]))
    return {**dict.fromkeys(COLUMNS), "adapter": adapter, "dtype": ", ".join(dtypes), "ops": ops,
            "outcome": Outcome.SKIP, "checks": len(rows), "tally": tally(rows["outcome"]), "path": False,
            "reason": "; ".join(reasons), "reasons": len(reasons)}


def ops_label(ops: list[str], every: list[str]) -> str:
    """A row's ops: "all 5" where it covers every op these records ran on a mixed path."""
    return f"all {len(every)}" if len(every) > 1 and set(ops) == set(every) else ", ".join(ops)


def _dtype_rank(dtype: str) -> tuple[int, str]:
    return (DTYPE_ORDER.index(dtype), "") if dtype in DTYPE_ORDER else (len(DTYPE_ORDER), dtype)


def paths(res: Results, per_path: bool = True) -> pd.DataFrame:
    """One row per adapter, path (``how``: how it is asked for) and input dtype: the ops it covers,
    the compute dtype it documents, the output, running-statistics and gradient (dx; dγ) dtypes
    measured, the float32-accumulation verdict (see :func:`_float32`), the record that speaks for it
    (:func:`model.worst_of`) and the path's documentation. Ops and dtypes without a path (every
    record skipped, none naming a path) are rows with ``path`` False, one per skip reason. Records
    of a path's op that name none (the train/eval suite's, errors) join the path the op's other
    records name.

    ``per_path`` False folds an adapter's paths into one row per input dtype (``how`` only where
    they share one) and its ops without a path into one row: the compact table of a PR comment."""
    m = records(res)
    if not len(m):
        return pd.DataFrame(columns=COLUMNS)
    m = m.assign(title=m["op"].map(op_title), _rank=m["op"].map(lambda o: op_rank(o)[0]))
    named = m["facts"].apply(lambda f: _text(f.get("precision")))
    key = list(zip(m["adapter"], m["op"], m["dtype"], strict=True))
    how: dict[tuple, str] = {}
    for k, name in zip(key, named, strict=True):
        if name:
            how.setdefault(k, name)
    m = m.assign(how=[how.get(k) for k in key])
    skipped = m.groupby(["adapter", "op", "dtype"])["outcome"].transform(lambda o: (o == Outcome.SKIP).all())
    no_path = m["how"].isna() & skipped
    m = m.assign(_reason=[_reason(r) if gone else None for gone, (_, r) in zip(no_path, m.iterrows(), strict=True)])
    out = []
    for adapter in sorted(m["adapter"].unique()):
        a = m[(m["adapter"] == adapter) & ~no_path].assign(_how=lambda d: d["how"].fillna(MISSING))
        if per_path:  # ops in registry order, then how, then dtype
            groups = sorted(a.groupby(["_how", "dtype"], sort=False),
                            key=lambda kv: (kv[1]["_rank"].min(), kv[0][0], _dtype_rank(kv[0][1])))
        else:
            groups = sorted(a.groupby(["dtype"], sort=False), key=lambda kv: _dtype_rank(kv[0][0]))
        for _, rows in groups:
            hows = list(dict.fromkeys(rows["how"].dropna()))
            out.append(_path_row(adapter, hows[0] if len(hows) == 1 else None, rows["dtype"].iloc[0], rows))
        gone = m[(m["adapter"] == adapter) & no_path]
        if len(gone):
            out += [_no_path_row(adapter, rows) for _, rows in (gone.groupby("_reason", sort=False) if per_path
                                                                 else [(None, gone)])]
    return pd.DataFrame(out, columns=COLUMNS)
