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

from .. import ops
from ..bench import allocator as alloc
from ..bench import harness as bench
from ..ops.base import DTYPES
from ..results.records import OUTCOMES, read
from ..verify import known as known_divergences
from ..verify.synchronized import SUITE as SYNCHRONIZED
from .formatting import (
    MISSING,
    fmt_date,
    fmt_gbps,
    fmt_ratio,
    fmt_seconds,
    fmt_time_range,
    missing,
    number,
    plural,
    sig3,
    span,
)


@dataclass
class Results:
    checks: pd.DataFrame  # one row per record, plus source and machine
    environments: pd.DataFrame  # one row per results file

    @property
    def adapters(self) -> list[str]:
        return sorted(self.checks["adapter"].unique()) if len(self.checks) else []


def load(paths: list[str | os.PathLike] | str | os.PathLike, warn=None) -> Results:
    """Read and merge results files; a missing or corrupt one raises naming the path (and line).

    A file given twice (or once by name and once in a folder) is read once, with a warning
    through ``warn``. A file named that holds no check is an error; one found in a folder is
    skipped with a warning (a process killed as it started). No checks at all is an error.
    """
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    warn = warn or (lambda message: None)
    envs, rows, seen = [], [], {}
    for given in map(Path, paths):
        for path in _files(given):
            key = path.resolve()
            if key in seen:
                warn(f"{path} is given twice ({seen[key]} and {given}); reading it once")
                continue
            seen[key] = given
            env, checks = read(path)
            if not checks:
                problem = f"{path}: {'empty' if not env else 'an environment record but no checks'}"
                if given == path:
                    raise ValueError(problem + "; not a normbench results file (or from a run that wrote nothing)")
                warn(problem + "; skipped")
                continue
            machine = f"{env.get('machine', '?')} ({env.get('cpu', '?')}, {env.get('cores', '?')} cores)"
            source = str(path)
            by_allocator = _allocator_parent(path, env)
            envs.append({"source": source, "run": run_name(path, by_allocator), "machine": machine, **_flat_env(env)})
            run = str(run_folder(path) or by_allocator or path)
            named = _env_allocator(env).get("name")
            rows += [{**_with_allocator(row, named), "source": source, "run": run, "machine": machine}
                     for row in checks]
    if not rows:
        raise ValueError(f"no normbench results in {', '.join(map(str, paths))}")
    checks = pd.DataFrame(rows)
    for column in ("facts", "params", "timing"):
        if column not in checks:
            checks[column] = [{} for _ in range(len(checks))]
    checks["allocator"] = _allocator_names(checks)
    if len(checks):
        checks["facts"] = checks["facts"].apply(lambda v: v if isinstance(v, dict) else {})
        checks["params"] = checks["params"].apply(lambda v: v if isinstance(v, dict) else {})
    return Results(checks, pd.DataFrame(envs))


def run_folder(path: Path) -> Path | None:
    """The `normbench run` folder (it holds run.json) a results file lies in, if any."""
    return next((up for up in list(path.resolve().parents)[1:5] if (up / "run.json").is_file()), None)


def run_name(path: Path, by_allocator: Path | None = None) -> str:
    """A short name for a results file: ``<run>/<phase>/<group>[/r<k>]`` inside a `normbench
    run` folder, ``<folder>/<allocator>`` in a folder of per-allocator results (see
    :func:`_allocator_parent`), else its folder's name (or the file's own)."""
    path = path.resolve()
    suffix = "" if path.name == "results.jsonl" else f" ({path.stem})"
    run = run_folder(path) or by_allocator
    if run is not None:
        return f"{run.name}/{path.parent.relative_to(run).as_posix()}{suffix}"
    return path.parent.name if not suffix and path.parent.name else path.name


def _allocator_parent(path: Path, env: dict) -> Path | None:
    """The folder above a results file kept under a subfolder named for its allocator
    (``<out>/<allocator>[/r<k>[/<group>]]/results.jsonl``, what `normbench bench --allocators` writes):
    every allocator's files belong to that one run, so its timings are pooled per allocator
    and compared with the others' (see :func:`allocators`)."""
    name = _env_allocator(env).get("name")
    if path.name != "results.jsonl" or not name:
        return None
    return next((folder.parent for folder in path.resolve().parents[:3] if folder.name == name), None)


def _with_allocator(row: dict, named: str | None) -> dict:
    """A timing without an allocator of its own ran under its file's (None where neither says)."""
    if row.get("suite") == "speed" and not row.get("allocator") and named:
        return {**row, "allocator": named}
    return row


def _env_allocator(env: dict) -> dict:
    found = env.get("allocator")
    return found if isinstance(found, dict) else {}


def _allocator_names(checks: pd.DataFrame) -> pd.Series:
    """Each record's allocator, None where not recorded (older files, verification records)."""
    if "allocator" not in checks:
        return pd.Series(None, index=checks.index, dtype=object)
    names = checks["allocator"]
    return names.where(names.apply(lambda v: isinstance(v, str) and v != ""), None).astype(object)


def _files(path: Path) -> list[Path]:
    """A results file, or every results file under a folder (a `normbench run` folder holds
    one per process; a tox results folder one run per environment)."""
    if not path.is_dir():
        if not path.exists():
            raise FileNotFoundError(f"{path}: no such results file")
        return [path]
    if (path / "results.jsonl").is_file():
        return [path / "results.jsonl"]
    found = sorted(p for p in path.rglob("*.jsonl") if p.is_file())
    if not found:
        raise FileNotFoundError(f"{path}: no results files (*.jsonl) in this folder")
    return found


def _flat_env(env: dict) -> dict:
    out = {k: env.get(k) for k in ("date", "python", "os", "cpu", "cores", "normbench_version", "git_commit")}
    out["versions"] = ", ".join(f"{k} {v}" for k, v in (env.get("versions") or {}).items())
    out["threads"] = ", ".join(f"{k}={v}" for k, v in (env.get("threads") or {}).items()) or "defaults"
    pinned = env.get("pinned_cpus")
    if pinned:  # the benchmark process kept fewer CPUs than it had (threads.pin)
        out["threads"] += f"; pinned to CPU {', '.join(map(str, pinned))} (XLA sizes its pool by the affinity mask)"
    bw = env.get("memory_bandwidth") or {}
    out["bandwidth_gbps"] = bw.get("gbps")
    probe = env.get("cpu_probe") or {}
    out["cpu_probe_s"] = probe.get("seconds")
    allocator = _env_allocator(env)
    out["allocator"] = allocator.get("name")
    settings = allocator.get("settings") if isinstance(allocator.get("settings"), dict) else {}
    out["allocator_settings"] = " ".join(f"{k}={v}" for k, v in settings.items())
    out["allocator_meaning"] = allocator.get("meaning")
    out["allocator_probe_faults_per_mb"] = allocator.get("probe_faults_per_mb")
    out["allocator_preload_mapped"] = allocator.get("preload_mapped")
    lock = env.get("machine_lock") if isinstance(env.get("machine_lock"), dict) else {}
    out["lock_mode"] = lock.get("mode")
    out["lock_waited_s"] = lock.get("waited_s")
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


DERIVATIVE_CHECKS = ("jvp", "second_order_dx", "second_order_dgamma")  # forward mode and second order


def derivative(c: pd.DataFrame) -> pd.Series:
    """Which records check forward-mode or second-order derivatives."""
    return c["check"].isin(DERIVATIVE_CHECKS)


def mixed(c: pd.DataFrame) -> pd.Series:
    """Which records ran on a framework's mixed-precision path (half inputs, float32 parameters)."""
    return c["params"].apply(lambda p: isinstance(p, dict) and p.get("precision") == "mixed").astype(bool)


def _own_section(c: pd.DataFrame) -> pd.Series:
    return (c["suite"] == SYNCHRONIZED) | derivative(c) | mixed(c)


def single_process(res: Results) -> pd.DataFrame:
    """Verification records of one layer in one process, first-order at the tested dtype: what the
    behaviour and agreement tables compare. Synchronized BatchNorm's replicated runs, derivatives
    and mixed-precision paths have a section of their own: their cases repeat the plain ones under
    the same or similar names, and would paint a plain case with a second-order failure or put a
    half-precision path's output dtype in the behaviour tables' float16 row."""
    c = verification(res)
    return c[~_own_section(c)] if len(c) else c


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
    """The report's first words: what was verified and timed, and the verdict."""
    return " ".join(headlines(res))


def headlines(res: Results) -> list[str]:
    """One sentence for the verification and one for the benchmarks, whichever these files hold."""
    lines = []
    c = verification(res)
    if len(c):
        counts = c["outcome"].value_counts()
        parts = ", ".join(f"{int(counts.get(o, 0)):,} {o}" for o in OUTCOMES)
        bad = int(counts.get("fail", 0) + counts.get("error", 0))
        verdict = ("all agree or diverge only as known" if bad == 0
                   else plural(bad, "unexpected failure"))
        outside = int(c["facts"].apply(lambda f: bool(f.get("outside_known"))).sum())
        if outside:
            verdict += f" ({outside} outside a known divergence's envelope)"
        lines.append(f"{plural(len(c), 'check')} on {plural(c['adapter'].nunique(), 'adapter')}: {parts} — {verdict}.")
    s = speed(res)
    if len(s):
        broken = timed_rows(res)
        broken = int(broken["outcome"].isin(["fail", "error"]).sum()) if len(broken) else 0
        lines.append(f"{plural(len(s), 'timing')} of {plural(s['adapter'].nunique(), 'adapter')} on "
                     f"{plural(s['machine'].nunique(), 'machine')}"
                     + (f"; {plural(broken, 'benchmark')} failed or errored." if broken else "."))
    return lines or ["No results in these files."]


def unexpected(res: Results) -> int:
    """Failed and errored records in any suite: what makes a report bad news."""
    c = res.checks
    return int(c["outcome"].isin(["fail", "error"]).sum()) if len(c) else 0


def _fact(rows: pd.DataFrame, key: str):
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


def _op(name):
    try:
        return ops.get(name)
    except ValueError:
        return None


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


def running_conventions(rows: pd.DataFrame) -> str | None:
    """The running-variance convention every record agrees on: "biased or unbiased" where no record
    could tell them apart, "neither" where a record matched none, "varies by case" if records
    disagree (tf_keras: its fused 4-D kernel keeps unbiased, its other paths biased). Records that
    passed speak for the convention; one a known divergence explains (a stress input whose
    statistics are off for a documented reason) matches neither, and says nothing about which one
    the layer keeps, unless no record passed."""
    passed = rows[rows["outcome"] == "pass"]
    rows = passed if len(passed) else rows
    found = [f["running_var"] for f in rows["facts"] if isinstance(f.get("running_var"), str)]
    if not found:
        return None
    sets = [set(v.split(" or ")) - {"neither"} for v in found]
    if any(not s for s in sets):
        return "neither"
    common = set.intersection(*sets)
    return " or ".join(sorted(common)) if common else "varies by case"


def _eps_placement(rows: pd.DataFrame) -> str | None:
    outcomes = set(rows["outcome"])
    if "fail" in outcomes:
        return "differs"
    if "known" in outcomes:
        return "differs (known divergence)"
    return "inside the sqrt" if "pass" in outcomes else None


def behaviour(res: Results) -> pd.DataFrame:
    """What each adapter measurably does with each op, one row per adapter × op (ops in registry
    order), read from the records' facts (nothing hand-written). A fact an op cannot have (momentum
    where it keeps no running statistics) is missing, not "no"; ``running variance mismatch`` says
    where the measured convention breaks the adapter's declaration (those records fail)."""
    c = res.checks
    c = c[~_own_section(c)] if len(c) else c
    cols = ["adapter", "op", "title", *BEHAVIOUR_FACTS, "running variance mismatch"]
    if not len(c):
        return pd.DataFrame(columns=cols)
    out = []
    for adapter in res.adapters:
        a = c[c["adapter"] == adapter]
        for name in ordered_ops(a["op"]):
            on = a[a["op"] == name]
            op = _op(name)

            def rows(check, dtype=None, _on=on):
                sel = _on[_on["check"] == check]
                return sel[sel["dtype"] == dtype] if dtype else sel

            defaults = rows("defaults")
            stateful = op is None or op.running_stats != "never"
            momentum = _fact(defaults, "default_momentum") if stateful else None
            new_weight = _fact(defaults, "default_momentum_new_weight") if stateful else None
            tracks = _fact(defaults, "default_track_running_stats") if op is None or op.running_stats == "optional" \
                else None
            running = pd.concat([rows("running_var"), rows("running_mean_steps")]) if stateful else on.iloc[0:0]
            measured = running_conventions(running)
            declared = next((f["declared_running_var"] for f in running["facts"]
                             if f.get("declared_running_var")), None)
            if declared is None and measured is not None:
                declared = "not declared"
            masked = on[on["params"].apply(lambda p: bool(p.get("masked")))]
            eps_rows = rows("forward_train")
            eps_rows = eps_rows[eps_rows["case"].str.contains(EPS_CASE, regex=False)]
            out.append({
                "adapter": adapter, "op": name, "title": op_title(name),
                "default eps": _fact(defaults, "default_eps"),
                "default momentum": momentum,
                "momentum as weight of new batch": new_weight,
                "affine by default": _fact(defaults, "default_affine"),
                "running stats by default": tracks,
                "float16 in → out": _fact(rows("forward_train", "float16"), "output_dtype"),
                "eps": _eps_placement(eps_rows),
                "running variance": measured,
                "declared running variance": declared,
                "one value per statistic": _fact(rows("train_one_value_per_channel"), "behaviour"),
                "train == eval": _fact(rows("train_equals_eval"), "identical"),
                "mask support": ("yes" if (masked["outcome"] != "skip").any() else "no") if len(masked) else None,
                "running variance mismatch": bool(
                    measured and declared not in (None, "not declared")
                    and declared not in measured.split(" or ")),
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


AGREEMENT_COLUMNS = ["adapter", "suite", "case", "check", "dtype", "input", "outcome", "err_eps", "max_abs_err",
                     "tolerance", "ratio", "machine", "run"]
SEVERITY = {"error": 3, "fail": 2, "known": 1, "pass": 0, "skip": -1}  # which check speaks for a heatmap cell


def _with_ratio(c: pd.DataFrame) -> pd.DataFrame:
    """Errors and tolerances as numbers, and ratio = max abs error / tolerance (NaN where undefined)."""
    c = c.assign(
        max_abs_err=pd.to_numeric(c["max_abs_err"], errors="coerce"),
        tolerance=pd.to_numeric(c["tolerance"], errors="coerce"),
        err_eps=pd.to_numeric(c["err_eps"], errors="coerce"),
    )
    return c.assign(ratio=c["max_abs_err"] / c["tolerance"].where(c["tolerance"] > 0))


def agreement(res: Results, records: pd.DataFrame | None = None) -> pd.DataFrame:
    """Compared checks (of ``records``, default every verification record), worst first by error
    relative to tolerance."""
    c = verification(res) if records is None else records
    c = c[c["max_abs_err"].notna() & c["tolerance"].notna()] if len(c) and "tolerance" in c else c.iloc[0:0]
    if not len(c):
        return pd.DataFrame(columns=AGREEMENT_COLUMNS)
    c = _with_ratio(c).assign(run=run_labels(res, c))
    return c.sort_values("ratio", ascending=False, na_position="first")[AGREEMENT_COLUMNS].reset_index(drop=True)


def run_labels(res: Results, rows: pd.DataFrame) -> pd.Series:
    """The run each record came from, by the name the environment table gives it (see :func:`run_of`)."""
    envs = res.environments
    if "source" not in rows or not len(envs) or "source" not in envs:
        return pd.Series(None, index=rows.index, dtype=object)
    return rows["source"].map(dict(zip(envs["source"], run_of(envs["run"]), strict=True)))


def closest(res: Results) -> pd.DataFrame:
    """Passing checks, closest to their tolerance first: how much headroom agreement has. Derivatives
    and mixed-precision paths are left out: their section shades each op's and path's worst, and
    their bounds would crowd the first-order checks out of the list."""
    c = verification(res)
    a = agreement(res, c[~(derivative(c) | mixed(c))] if len(c) else c)
    a = a[(a["outcome"] == "pass") & a["ratio"].notna()]
    return a.sort_values("ratio", ascending=False, kind="stable").reset_index(drop=True)


def tally(outcomes: pd.Series) -> str:
    """"3 fail, 12 pass": how many records a group holds, by outcome, the worst first."""
    counts = outcomes.value_counts()
    return ", ".join(f"{int(counts[o])} {o}" for o in sorted(counts.index, key=lambda o: -SEVERITY.get(o, 0)))


def worst_of(c: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Per group of ``keys``, the record that speaks for it: the most severe outcome (SEVERITY),
    then the highest error / tolerance; ``checks`` counts the group's records, ``severity`` ranks it."""
    c = _with_ratio(c).assign(severity=lambda d: d["outcome"].map(SEVERITY).fillna(0))
    c = c.sort_values(["severity", "ratio"], ascending=False, na_position="last", kind="stable")
    worst = c.groupby(keys, sort=False).head(1).set_index(keys)
    worst["checks"] = c.groupby(keys).size()
    return worst.reset_index()


def agreement_cells(res: Results) -> pd.DataFrame:
    """One row per case and adapter, for the heatmap: the check that speaks for the cell (the most
    severe outcome, then the highest error / tolerance), with how many checks the cell holds.

    Cases come most interesting first: any failure or error, then the highest ratio. Failures and
    errors without an error value (an exception) are cells too: they are what a reader looks for.
    """
    cols = ["case", "adapter", "check", "dtype", "outcome", "err_eps", "max_abs_err", "tolerance", "ratio", "checks"]
    c = single_process(res)
    if not len(c) or "tolerance" not in c:
        return pd.DataFrame(columns=cols)
    c = c[(c["max_abs_err"].notna() & c["tolerance"].notna()) | c["outcome"].isin(["fail", "error"])]
    if not len(c):
        return pd.DataFrame(columns=cols)
    cells = worst_of(c, ["case", "adapter"])
    by_case = cells.groupby("case").agg(bad=("severity", lambda s: bool((s >= 2).any())),
                                        top=("ratio", lambda r: r.max() if r.notna().any() else -1.0))
    order = by_case.sort_values(["bad", "top"], ascending=False, kind="stable").index
    cells["case"] = pd.Categorical(cells["case"], categories=order, ordered=True)
    cells = cells.sort_values(["case", "adapter"], kind="stable")
    return cells.assign(case=cells["case"].astype(str))[cols].reset_index(drop=True)


def agreement_matrix(res: Results) -> pd.DataFrame:
    """Error / tolerance per case (rows, most interesting first) and adapter (columns)."""
    cells = agreement_cells(res)
    if not len(cells):
        return pd.DataFrame()
    matrix = cells.pivot(index="case", columns="adapter", values="ratio")
    return matrix.loc[list(dict.fromkeys(cells["case"]))]


KNOWN_COLUMNS = ["divergence", "reason", "link", "adapter", "records", "outside", "ratio", "envelope", "used",
                 "how", "example"]


def _envelope_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """Records a known divergence matched, with error / tolerance, their envelope (in multiples of
    their tolerance) and the share of it used."""
    raised = rows["max_abs_err"].isna()  # an exception: no error was measured (inf or nan would be)
    rows = _with_ratio(rows)
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
    inside = c[(c["outcome"] == "known") & key.notna()].assign(entry=key)
    outside_key = c["facts"].apply(lambda f: f.get("outside_known"))
    outside = c[outside_key.notna()].assign(entry=outside_key)
    out = []
    for entry in known_divergences.KNOWN:
        hits = _envelope_rows(inside[inside["entry"] == entry.key]) if len(inside) else inside
        out_hits = outside[outside["entry"] == entry.key] if len(outside) else outside
        for adapter in sorted(set(hits["adapter"]) | set(out_hits["adapter"])):
            g = hits[hits["adapter"] == adapter] if len(hits) else hits
            row = {"divergence": entry.key, "reason": entry.reason, "link": entry.link, "adapter": adapter,
                   "records": len(g), "outside": int((out_hits["adapter"] == adapter).sum()), "ratio": None,
                   "envelope": None, "used": None, "how": _how(g) if len(g) else "", "example": None}
            if len(g):
                scored = g.dropna(subset=["used"])
                scored = scored[np.isfinite(scored["used"])]  # overflows are counted under "how"
                worst = (scored.loc[scored["used"].idxmax()] if len(scored)
                         else g.sort_values("ratio", ascending=False, na_position="last").iloc[0])
                row.update(ratio=worst["ratio"], envelope=worst["envelope"], used=worst["used"],
                           example=f"{worst['case']} {worst['check']}")
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
    rows = c[c["outcome"].isin(["fail", "error"])] if len(c) else c
    cols = ["adapter", "suite", "case", "check", "outcome", "message", "rerun", "machine", "run"]
    if not len(rows):
        return pd.DataFrame(columns=cols)
    return rows.assign(run=run_labels(res, rows))[cols].reset_index(drop=True)


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
        gbps=gbps, roofline_frac=gbps / first["bandwidth_gbps"] if first.get("bandwidth_gbps") else None)
    if "faults_per_call" in group:
        row["faults_per_call"] = pd.to_numeric(group["faults_per_call"], errors="coerce").mean()
    return row


TIMED_KEY = ["run", "adapter", "case", "check", "allocator"]  # one run's repeats of a case under one allocator
NOT_TIMINGS = ("recompiles", "self_check")  # speed-suite checks that time no case: never pooled as one


def timed_rows(res: Results) -> pd.DataFrame:
    """Benchmark records, each case's repeats under one allocator pooled into one row (outcome from
    the worst); ``primary`` marks the rows of each run's primary allocator (:func:`primary_allocator`)."""
    c = res.checks
    rows = c[(c["suite"] == "speed") & ~c["check"].isin(NOT_TIMINGS)] if len(c) else c
    if not len(rows):
        return rows
    rows = rows.assign(**{col: None for col in ("repeat", "samples_s", "median_s") if col not in rows},
                       allocator=_allocator_names(rows))
    rows = rows.assign(repeat=rows["repeat"].fillna(0))
    ok = (rows["outcome"] == "pass") & rows["median_s"].notna()
    # A case is timed only if every repeat was; one failed or errored repeat makes it broken.
    whole = ok.groupby([rows[k] for k in TIMED_KEY], dropna=False).transform("all")
    pooled = [_pool(g) for _, g in rows[whole].groupby(TIMED_KEY, sort=False, dropna=False)]
    broken = rows[~whole & ~ok].drop_duplicates(TIMED_KEY)
    out = pd.concat([pd.DataFrame(pooled), broken], ignore_index=True)
    out["allocator"] = _allocator_names(out)
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
                 "min_s", "gbps", "roofline_frac", "faults_per_call", "other_load", "compile_s", "elements", "case",
                 "repeats", "repeat_ids", "repeat_medians_s", "repeat_spread", "repeat_bandwidth_gbps",
                 "repeat_faults_per_call", "machine", "run", "vs_fastest"]


def speed(res: Results) -> pd.DataFrame:
    """Timed benchmarks with GB/s, roofline and the ratio to the fastest adapter of each case.

    The ratio compares adapters within a shape group (default shapes, sweep) and under one
    allocator, so each table a report shows has its own fastest. ``other_load`` is the worst of
    a case's repeats. Every allocator's rows are here; ``primary`` marks what the main tables show.
    """
    rows = timed_rows(res)
    rows = rows[rows["outcome"] == "pass"] if len(rows) else rows
    if not len(rows) or "median_s" not in rows:
        return pd.DataFrame(columns=SPEED_COLUMNS)
    rows = rows.assign(**{"faults_per_call": None} if "faults_per_call" not in rows else {})
    rows = rows.assign(
        mode=rows["check"],
        shape=rows["params"].apply(lambda p: "×".join(map(str, p.get("logical_shape", [])))),
        group=rows["params"].apply(lambda p: p.get("group")),
        elements=rows["params"].apply(lambda p: int(pd.Series(p.get("logical_shape", [0])).prod())),
        other_load=_other_load(res, rows),
        run_label=run_labels(res, rows),
    )
    key = ["machine", "group", "allocator", "op", "mode", "shape", "dtype"]
    fastest = rows.groupby(key, dropna=False)["median_s"].transform("min")
    rows = rows.assign(vs_fastest=rows["median_s"] / fastest, run=rows["run_label"])
    rows = rows.assign(_op=rows["op"].map(lambda n: op_rank(n)[0]),
                       _mode=[_rank(getattr(_op(o), "bench_modes", ()), m) for o, m in zip(rows["op"], rows["mode"],
                                                                                         strict=True)],
                       _dtype=rows["dtype"].map(lambda d: _rank(DTYPES, d)),
                       _allocator=rows["allocator"].map(allocator_rank))
    return (rows.sort_values(["_op", "op", "_mode", "mode", "elements", "_dtype", "_allocator", "median_s"])
            [SPEED_COLUMNS].reset_index(drop=True))


def primary_speed(res: Results) -> pd.DataFrame:
    """What the main speed tables and charts show: each run's primary allocator only."""
    s = speed(res)
    return s[s["primary"].astype(bool)].reset_index(drop=True) if len(s) else s


def spread_note(row: pd.Series) -> str:
    """"repeats 1.10–1.52 ms" where a case's repeats disagree by more than SPREAD_NOTE, else ""."""
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
    c = c[c["suite"] == "speed"]
    c = c.assign(allocator=_allocator_names(c).fillna(""))
    load = pd.to_numeric(c["other_load"], errors="coerce")
    worst = load.groupby([c[k] for k in TIMED_KEY]).max()
    keys = rows[TIMED_KEY].assign(allocator=rows["allocator"].fillna(""))
    return pd.Series([worst.get(tuple(k), np.nan) for k in keys.itertuples(index=False)], index=rows.index,
                     dtype=float)


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


# ---------------------------------------------------------------- allocators and repeats

ALLOCATOR_ORDER = ("system", *(name for name in alloc.KNOWN if name != "system"))  # the baseline first


def allocator_rank(name) -> int:
    """Sort key: system (the baseline), then normbench's known settings, then preloaded libraries."""
    return ALLOCATOR_ORDER.index(name) if name in ALLOCATOR_ORDER else len(ALLOCATOR_ORDER)


def allocator_order(names) -> list[str]:
    return sorted({n for n in names if isinstance(n, str)}, key=lambda n: (allocator_rank(n), n))


def allocator_meaning(res: Results, name: str) -> str:
    """What a setting means: normbench's own words for a known one, else what its files recorded."""
    if name in alloc.KNOWN:
        return alloc.KNOWN[name].meaning
    envs = res.environments
    if "allocator_meaning" in envs:
        recorded = envs.loc[envs["allocator"] == name, "allocator_meaning"].dropna()
        if len(recorded):
            return str(recorded.iloc[0])
    return ""


def self_checks(res: Results) -> pd.DataFrame:
    """Each benchmark process's self-check (``bench.self_check``): harness against a bare timeit
    loop of the same call, interleaved in that process (and, for bench --self-check, a fresh one)."""
    cols = ["adapter", "run", "repeat", "outcome", "ratio", "fresh_ratio", "case_vs_bare", "allocator", "message"]
    c = res.checks
    rows = c[(c["suite"] == "speed") & (c["check"] == "self_check")] if len(c) else c
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
    n, passed = len(found), int((found["outcome"] == "pass").sum())
    busy = int((found["outcome"] == "skip").sum())
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


def run_of(labels: pd.Series) -> pd.Series:
    """The run a results file belongs to: its label up to the first "/" (``<run>/<phase>/<group>``
    inside a `normbench run` folder, the file's folder name outside one)."""
    return labels.astype(str).str.split("/").str[0]


def _distinct(values: pd.Series) -> str:
    shown = [str(v) for v in dict.fromkeys(values) if not missing(v) and str(v) != ""]
    return "; ".join(shown) or MISSING


def _union(values: pd.Series) -> str:
    """Comma-separated lists (adapters per process) merged, first seen first."""
    items = [item.strip() for v in values if isinstance(v, str) for item in v.split(", ") if item.strip()]
    return ", ".join(dict.fromkeys(items)) or MISSING


def _dates(values: pd.Series) -> str:
    stamps = pd.to_datetime(values, errors="coerce", utc=True).dropna()
    if not len(stamps):
        return MISSING
    first, last = fmt_date(stamps.min()), fmt_date(stamps.max())
    if first[:10] == last[:10] and first != last:  # same day: 2024-05-01 10:02–10:40 UTC
        return f"{first[:16]}–{last[11:]}"
    return span(first, last)


def _bandwidth(values: pd.Series) -> str:
    gbps = pd.to_numeric(values, errors="coerce").dropna()
    return MISSING if not len(gbps) else span(fmt_gbps(gbps.min()), fmt_gbps(gbps.max())) + " GB/s"


def _lock(g: pd.DataFrame) -> str:
    """The lock modes a run's processes held the machine in, and the longest wait for it."""
    modes = _distinct(g["lock_mode"]) if "lock_mode" in g else MISSING
    waited = pd.to_numeric(g["lock_waited_s"], errors="coerce").max() if "lock_waited_s" in g else np.nan
    if modes == MISSING and missing(waited):
        return MISSING
    return modes if missing(waited) or waited < 0.05 else f"{modes}, waited up to {fmt_seconds(waited)}"


def _allocator_label(env: pd.Series) -> str | None:
    """"warm (GLIBC_TUNABLES=…)": a process's allocator and the settings it ran under, flagged where
    the library it preloads was not mapped into it (the setting did not take effect)."""
    name = env.get("allocator")
    if missing(name) or not name:
        return None
    settings = env.get("allocator_settings")
    text = f"{name} ({settings})" if isinstance(settings, str) and settings else str(name)
    mapped = env.get("allocator_preload_mapped")
    return text + (" — ⚠ preloaded library not mapped" if not missing(mapped) and not mapped else "")


def _probe(g: pd.DataFrame) -> str:
    """Page faults per MiB of a freed and reallocated 16 MiB block, per allocator (lowest–highest):
    near zero where freed memory stays mapped."""
    faults = pd.to_numeric(g["allocator_probe_faults_per_mb"], errors="coerce")
    found = g.assign(_faults=faults).dropna(subset=["_faults"])
    if not len(found):
        return MISSING
    parts = [(name, span(sig3(f.min()), sig3(f.max()))) for name, f in
             found.groupby(found["allocator"].fillna("?"), sort=False)["_faults"]]
    text = parts[0][1] if len(parts) == 1 else "; ".join(f"{name} {value}" for name, value in parts)
    return f"{text} page faults/MiB"


def _normbench(g: pd.DataFrame) -> str:
    pairs = [" ".join(str(x)[:10] for x in (v, c) if not missing(x) and x)
             for v, c in zip(g.get("normbench_version", [None] * len(g)), g.get("git_commit", [None] * len(g)),
                             strict=True)]
    return _distinct(pd.Series(pairs, dtype=object))


RUN_FIELDS = {  # label: how a run's files are summarised into one value
    "results files": lambda g: str(len(g)),
    "machine": lambda g: _distinct(g["machine"]),
    "date": lambda g: _dates(g["date"]),
    "python": lambda g: _distinct(g["python"]),
    "normbench": _normbench,
    "os": lambda g: _distinct(g["os"]),
    "versions": lambda g: _distinct(g["versions"]),
    "threads": lambda g: _distinct(g["threads"]),
    "memory bandwidth": lambda g: _bandwidth(g["bandwidth_gbps"]),
    "allocator": lambda g: _distinct(pd.Series([_allocator_label(r) for _, r in g.iterrows()], dtype=object)),
    "allocator probe": _probe,
    "machine lock": _lock,
    "adapters installed": lambda g: _union(g["adapters_installed"]),
    "adapters missing (install with)": lambda g: _union(g["adapters_missing"]).replace(MISSING, "none"),
}


def runs(res: Results) -> pd.DataFrame:
    """One row per run (a `normbench run` folder holds a results file per process), each environment
    field summarised over the run's files: dates first–last, bandwidth min–max, else distinct values."""
    envs = res.environments
    if not len(envs):
        return pd.DataFrame(columns=["run", *RUN_FIELDS])
    envs = envs.assign(**{k: None for k in ("machine", "date", "python", "os", "versions", "threads",
                                            "bandwidth_gbps", "adapters_installed", "adapters_missing", "allocator",
                                            "allocator_settings", "allocator_probe_faults_per_mb",
                                            "allocator_preload_mapped")
                          if k not in envs})
    rows = [{"run": run, **{label: summarise(g) for label, summarise in RUN_FIELDS.items()}}
            for run, g in envs.groupby(run_of(envs["run"]), sort=False)]
    return pd.DataFrame(rows)


def split_runs(table: pd.DataFrame) -> tuple[dict[str, str], pd.DataFrame]:
    """(fields every run shares, with their value; the fields that differ, one column per run).

    A field no run measured is left out. With one run every field is 'shared'."""
    shared, differ = {}, {}
    for field in RUN_FIELDS:
        values = list(table[field]) if field in table else []
        if not values or all(v == MISSING for v in values):
            continue
        if len(set(values)) == 1:
            shared[field] = values[0]
        else:
            differ[field] = values
    return shared, pd.DataFrame(differ, index=list(table["run"])).T


BANDWIDTH_SPREAD = 1.5  # max / min memory bandwidth across one run's processes worth a warning
WAIT_WARNING_S = 1.0  # a benchmark process that waited longer than this for the machine lock


def report_warnings(res: Results) -> list[str]:
    """What makes these timings less trustworthy, read from the records: a run whose memory bandwidth
    moved between processes, benchmarks that waited for or overlapped other load."""
    return [*_bandwidth_warnings(res), *_lock_warnings(res), *_load_warnings(res)]


def _bandwidth_warnings(res: Results) -> list[str]:
    envs = res.environments
    if not len(envs) or "bandwidth_gbps" not in envs:
        return []
    out = []
    gbps = pd.to_numeric(envs["bandwidth_gbps"], errors="coerce")
    for run, g in gbps.groupby(run_of(envs["run"]), sort=False):
        g = g.dropna()
        if len(g) > 1 and g.min() > 0 and g.max() / g.min() > BANDWIDTH_SPREAD:
            out.append(f"{run}: memory bandwidth varied {fmt_gbps(g.min())}–{fmt_gbps(g.max())} GB/s across this "
                       "run's processes: timings from different processes may not be comparable.")
    return out


def _lock_warnings(res: Results) -> list[str]:
    envs, c = res.environments, res.checks
    if not len(envs) or "lock_waited_s" not in envs or not len(c):
        return []
    benchmarked = set(c.loc[c["suite"] == "speed", "source"])
    waited = pd.to_numeric(envs["lock_waited_s"], errors="coerce")
    waited = waited[envs["source"].isin(benchmarked) & (waited > WAIT_WARNING_S)]
    if not len(waited):
        return []
    return [f"{plural(len(waited), 'benchmark process', 'benchmark processes')} waited for the machine lock "
            f"(up to {fmt_seconds(waited.max())}) while other work held it: the machine was busy around "
            "these timings."]


def _load_warnings(res: Results) -> list[str]:
    s = speed(res)
    loaded = pd.to_numeric(s["other_load"], errors="coerce") if len(s) else pd.Series(dtype=float)
    loaded = loaded[loaded >= bench.OVERLAP_CORES]
    if not len(loaded):
        return []
    return [f"{len(loaded)} of {plural(len(s), 'timing')} overlapped other load (up to {sig3(loaded.max())} "
            f"{'core' if loaded.max() == 1 else 'cores'} busy with other processes): the machine was not quiet."]


def tidy(res: Results) -> pd.DataFrame:
    """Every record as one flat row (dict fields as JSON), for results.csv."""
    import json

    c = res.checks.copy()
    for column in c.columns:
        if c[column].apply(lambda v: isinstance(v, (dict, list))).any():
            c[column] = c[column].apply(lambda v: json.dumps(v) if isinstance(v, (dict, list)) else v)
    return c
