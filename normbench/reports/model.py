"""The data model of every report: results files merged into pandas DataFrames.

Each function derives one table from the records, so the HTML and Markdown renderers
(and notebooks) show the same numbers. Rows keep the file and machine they came from.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .. import known as known_divergences
from ..records import OUTCOMES, read


@dataclass
class Results:
    checks: pd.DataFrame  # one row per record, plus source and machine
    environments: pd.DataFrame  # one row per results file

    @property
    def adapters(self) -> list[str]:
        return sorted(self.checks["adapter"].unique()) if len(self.checks) else []


def load(paths: list[str | os.PathLike] | str | os.PathLike) -> Results:
    """Read and merge results files; a missing or corrupt one raises naming the path (and line)."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    envs, rows = [], []
    for path in (f for p in map(Path, paths) for f in _files(p)):
        env, checks = read(path)
        machine = f"{env.get('machine', '?')} ({env.get('cpu', '?')}, {env.get('cores', '?')} cores)"
        source = str(path)
        envs.append({"source": source, "run": run_name(path), "machine": machine, **_flat_env(env)})
        run = str(run_folder(path) or path)
        rows += [{**row, "source": source, "run": run, "machine": machine} for row in checks]
    checks = pd.DataFrame(rows)
    for column in ("facts", "params", "timing"):
        if column not in checks:
            checks[column] = [{} for _ in range(len(checks))]
    if len(checks):
        checks["facts"] = checks["facts"].apply(lambda v: v if isinstance(v, dict) else {})
        checks["params"] = checks["params"].apply(lambda v: v if isinstance(v, dict) else {})
    return Results(checks, pd.DataFrame(envs))


def run_folder(path: Path) -> Path | None:
    """The `normbench run` folder (it holds run.json) a results file lies in, if any."""
    return next((up for up in list(path.resolve().parents)[1:5] if (up / "run.json").is_file()), None)


def run_name(path: Path) -> str:
    """A short name for a results file: ``<run>/<phase>/<group>[/r<k>]`` inside a `normbench
    run` folder, else its folder's name (or the file's own)."""
    path = path.resolve()
    suffix = "" if path.name == "results.jsonl" else f" ({path.stem})"
    run = run_folder(path)
    if run is not None:
        return f"{run.name}/{path.parent.relative_to(run).as_posix()}{suffix}"
    return path.parent.name if not suffix and path.parent.name else path.name


def _files(path: Path) -> list[Path]:
    """A results file, or every results file under a folder (a `normbench run` folder holds
    one per process; a tox results folder one run per environment)."""
    if not path.is_dir():
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such results file")
        return [path]
    if (path / "results.jsonl").is_file():
        return [path / "results.jsonl"]
    found = sorted(path.rglob("*.jsonl"))
    if not found:
        raise FileNotFoundError(f"{path}: no results files (*.jsonl) in this folder")
    return found


def _flat_env(env: dict) -> dict:
    out = {k: env.get(k) for k in ("date", "python", "os", "cpu", "cores", "normbench_version", "git_commit")}
    out["versions"] = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())
    out["threads"] = ", ".join(f"{k}={v}" for k, v in (env.get("threads") or {}).items()) or "defaults"
    bw = env.get("memory_bandwidth") or {}
    out["bandwidth_gbps"] = bw.get("gbps")
    out["adapters_installed"] = ", ".join(
        name for name, info in (env.get("adapters") or {}).items() if info.get("installed"))
    out["adapters_missing"] = ", ".join(
        f"{name} ({info.get('install')})" for name, info in (env.get("adapters") or {}).items()
        if not info.get("installed"))
    return out


def verification(res: Results) -> pd.DataFrame:
    """Records of the verification suites (everything but benchmarks)."""
    c = res.checks
    return c[c["suite"] != "speed"] if len(c) else c


def verdicts(res: Results) -> pd.DataFrame:
    """Outcome counts per adapter and suite (verification suites only)."""
    c = verification(res)
    if not len(c):
        return pd.DataFrame(columns=["adapter", "suite", *OUTCOMES])
    table = c.groupby(["adapter", "suite", "outcome"]).size().unstack("outcome", fill_value=0)
    for outcome in OUTCOMES:
        if outcome not in table:
            table[outcome] = 0
    return table[list(OUTCOMES)].reset_index()


def headline(res: Results) -> str:
    """One line: how many checks, how they came out, and the verdict."""
    c = verification(res)
    if not len(c):
        return "No verification results in these files."
    counts = c["outcome"].value_counts()
    parts = ", ".join(f"{int(counts.get(o, 0))} {o}" for o in OUTCOMES)
    bad = int(counts.get("fail", 0) + counts.get("error", 0))
    verdict = "all agree or diverge only as known" if bad == 0 else f"{bad} unexpected failures"
    return f"{len(c)} checks on {c['adapter'].nunique()} adapters: {parts} — {verdict}."


def _fact(rows: pd.DataFrame, key: str):
    for facts in rows["facts"]:
        if key in facts:
            return facts[key]
    return None


def behaviour(res: Results) -> pd.DataFrame:
    """What each adapter measurably does, read from the records' facts (nothing hand-written)."""
    c = res.checks
    out = []
    for adapter in res.adapters:
        a = c[c["adapter"] == adapter]

        def rows(check, op=None, dtype=None, _a=a):
            sel = _a[_a["check"] == check]
            if op:
                sel = sel[sel["op"] == op]
            if dtype:
                sel = sel[sel["dtype"] == dtype]
            return sel

        ln_defaults = rows("defaults", "layer_norm")
        bn_defaults = rows("defaults", "batch_norm")
        steps = rows("running_mean_steps")
        masked = a[a["params"].apply(lambda p: bool(p.get("masked")))]
        fp16 = {op: _fact(rows("forward_train", op, "float16"), "output_dtype") for op in ("layer_norm", "batch_norm")}
        out.append({
            "adapter": adapter,
            "LN default eps": _fact(ln_defaults, "default_eps"),
            "BN default eps": _fact(bn_defaults, "default_eps"),
            "BN default momentum": _fact(bn_defaults, "default_momentum"),
            "momentum means weight of": _fact(bn_defaults, "momentum_convention"),
            "running variance stored": _fact(steps, "running_var"),
            "BN train, one value per channel": _fact(rows("train_one_value_per_channel"), "behaviour"),
            "mask support": ("yes" if (masked["outcome"] != "skip").any() else "no") if len(masked) else None,
            "LN train == eval": _fact(rows("train_equals_eval"), "identical"),
            "float16 in → LN out": fp16["layer_norm"],
            "float16 in → BN out": fp16["batch_norm"],
        })
    table = pd.DataFrame(out)
    if len(table):
        table["momentum means weight of"] = table["momentum means weight of"].map(
            {"new": "new batch", "old": "old value"}).fillna(table["momentum means weight of"])
    return table


def agreement(res: Results) -> pd.DataFrame:
    """Compared checks, worst first by error relative to tolerance."""
    c = verification(res)
    c = c[c["max_abs_err"].notna() & c["tolerance"].notna()] if len(c) else c
    if not len(c):
        return pd.DataFrame(columns=["adapter", "case", "check", "outcome", "err_eps", "max_abs_err", "tolerance"])
    c = c.assign(
        max_abs_err=pd.to_numeric(c["max_abs_err"], errors="coerce"),
        tolerance=pd.to_numeric(c["tolerance"], errors="coerce"),
        err_eps=pd.to_numeric(c["err_eps"], errors="coerce"),
    )
    c = c.assign(ratio=c["max_abs_err"] / c["tolerance"].where(c["tolerance"] > 0))
    cols = ["adapter", "suite", "case", "check", "dtype", "input", "outcome", "err_eps", "max_abs_err",
            "tolerance", "ratio", "machine"]
    return c.sort_values("ratio", ascending=False, na_position="first")[cols].reset_index(drop=True)


def agreement_matrix(res: Results) -> pd.DataFrame:
    """Worst error in epsilons per case (rows) and adapter (columns), for the heatmap."""
    a = agreement(res)
    if not len(a):
        return pd.DataFrame()
    return a.pivot_table(index="case", columns="adapter", values="err_eps", aggfunc="max")


def known(res: Results) -> pd.DataFrame:
    """Known divergences seen in these results, with reason, link and where they showed."""
    c = res.checks
    rows = c[c["outcome"] == "known"] if len(c) else c
    out = []
    for entry in known_divergences.KNOWN:
        hits = rows[rows["facts"].apply(lambda f, k=entry.key: f.get("known") == k)] if len(rows) else rows
        if len(hits):
            out.append({"divergence": entry.key, "reason": entry.reason, "link": entry.link,
                        "adapters": ", ".join(sorted(hits["adapter"].unique())), "records": len(hits),
                        "example": hits.iloc[0]["case"] + " " + hits.iloc[0]["check"]})
    return pd.DataFrame(out, columns=["divergence", "reason", "link", "adapters", "records", "example"])


def failures(res: Results) -> pd.DataFrame:
    """Unexpected failures and errors, with the command that reruns each."""
    c = res.checks
    rows = c[c["outcome"].isin(["fail", "error"])] if len(c) else c
    cols = ["adapter", "suite", "case", "check", "outcome", "message", "rerun", "machine"]
    return rows[cols].reset_index(drop=True) if len(rows) else pd.DataFrame(columns=cols)


def _pool(group: pd.DataFrame) -> pd.Series:
    """One case's repeats as one measurement: pooled per-round samples where recorded."""
    first = group.sort_values("repeat").iloc[0]
    samples = [x for s in group["samples_s"] if isinstance(s, list) for x in s]
    if samples:
        q1, median, q3 = np.percentile(samples, [25, 50, 75])
        iqr = q3 - q1
    else:
        median, iqr = float(group["median_s"].median()), float(group["iqr_s"].median())
    row = first.copy()
    row["median_s"], row["iqr_s"], row["min_s"] = median, iqr, float(group["min_s"].min())
    row["samples_s"], row["rounds"], row["repeats"] = samples or None, int(group["rounds"].sum()), len(group)
    row["repeat_medians_s"] = [float(m) for m in group.sort_values("repeat")["median_s"]]
    row["gbps"] = first["bytes"] / median / 1e9
    if "faults_per_call" in group:
        row["faults_per_call"] = pd.to_numeric(group["faults_per_call"], errors="coerce").mean()
    row["roofline_frac"] = row["gbps"] / first["bandwidth_gbps"] if first.get("bandwidth_gbps") else None
    return row  # compile_s and first_call_s stay repeat 0's: later repeats reuse its compilation


def timed_rows(res: Results) -> pd.DataFrame:
    """Benchmark records, each case's repeats pooled into one row (outcome from the worst)."""
    c = res.checks
    rows = c[(c["suite"] == "speed") & (c["check"] != "recompiles")] if len(c) else c
    if not len(rows):
        return rows
    rows = rows.assign(**{col: None for col in ("repeat", "samples_s", "median_s") if col not in rows})
    rows = rows.assign(repeat=rows["repeat"].fillna(0))
    key = ["run", "adapter", "case"]  # one run's repeats, whichever processes timed them
    ok = (rows["outcome"] == "pass") & rows["median_s"].notna()
    # A case is timed only if every repeat was; one failed or errored repeat makes it broken.
    whole = ok.groupby([rows[k] for k in key]).transform("all")
    pooled = [_pool(g) for _, g in rows[whole].groupby(key, sort=False)]
    broken = rows[~whole & ~ok].drop_duplicates(key)
    return pd.concat([pd.DataFrame(pooled), broken], ignore_index=True)


def speed(res: Results) -> pd.DataFrame:
    """Timed benchmarks with GB/s, roofline and the ratio to the fastest adapter of each case."""
    rows = timed_rows(res)
    rows = rows[rows["outcome"] == "pass"] if len(rows) else rows
    cols = ["op", "mode", "shape", "dtype", "group", "adapter", "median_s", "iqr_s", "min_s", "gbps",
            "roofline_frac", "faults_per_call", "compile_s", "elements", "machine", "vs_fastest"]
    if not len(rows) or "median_s" not in rows:
        return pd.DataFrame(columns=cols)
    rows = rows.assign(**{"faults_per_call": None} if "faults_per_call" not in rows else {})
    rows = rows.assign(
        mode=rows["check"],
        shape=rows["params"].apply(lambda p: "×".join(map(str, p.get("logical_shape", [])))),
        group=rows["params"].apply(lambda p: p.get("group")),
        elements=rows["params"].apply(lambda p: int(pd.Series(p.get("logical_shape", [0])).prod())),
    )
    key = ["machine", "op", "mode", "shape", "dtype"]
    rows = rows.assign(vs_fastest=rows["median_s"] / rows.groupby(key)["median_s"].transform("min"))
    return rows[cols].sort_values(["op", "mode", "elements", "dtype", "median_s"]).reset_index(drop=True)


def recompiles(res: Results) -> pd.DataFrame:
    c = res.checks
    rows = c[(c["suite"] == "speed") & (c["check"] == "recompiles")] if len(c) else c
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


def tidy(res: Results) -> pd.DataFrame:
    """Every record as one flat row (dict fields as JSON), for results.csv."""
    import json

    c = res.checks.copy()
    for column in c.columns:
        if c[column].apply(lambda v: isinstance(v, (dict, list))).any():
            c[column] = c[column].apply(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
    return c
