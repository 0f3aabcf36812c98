"""The verification sections of the Markdown report: environment, verdicts, behaviour, derivatives,
mixed precision, synchronized BatchNorm, search, closest to tolerance, known divergences, failures."""

from __future__ import annotations

from ..results.kinds import Outcome
from . import derivatives as deriv
from . import mixed, model, search
from . import synchronized as sync
from .formatting import (
    MISSING,
    fmt_count,
    fmt_percent,
    fmt_seconds,
    fmt_value,
    missing,
    plural,
)
from .loading import Results
from .markdown_elements import (
    CLOSEST_ROWS,
    FACT_MARKS,
    MAX_FAILURES,
    OUTCOME_MARKS,
    cell,
    code,
    entry,
    short,
    table,
)


def environments(res: Results) -> str:
    """One column per run (a run's many results files summarised); fields every run shares listed once."""
    runs = model.runs(res)
    if not len(runs):
        return "No environment records."
    shared, differ = model.split_runs(runs)
    if len(runs) == 1:
        return table(["field", runs["run"].iloc[0]], [[cell(k), cell(v)] for k, v in shared.items()])
    out = []
    if len(differ):
        out.append(table(["field", *runs["run"]], [[cell(k), *(cell(v) for v in values)]
                                              for k, values in differ.iterrows()]))
    if shared:
        out.append("Same in every run:\n\n" + "\n".join(f"- {cell(k)}: {cell(v)}" for k, v in shared.items()))
    return "\n\n".join(out)


def verdict_table(res: Results) -> str:
    v = model.verdicts(res)
    suites = sorted(v["suite"].unique())
    rows = []
    for adapter, group in v.groupby("adapter", sort=True):
        by_suite = {r["suite"]: r for _, r in group.iterrows()}
        cells = []
        for suite in suites:
            r = by_suite.get(suite)
            if r is None:
                cells.append(MISSING)
                continue
            mark = "❌" if r["fail"] + r["error"] else "✅"
            order = (Outcome.FAIL, Outcome.ERROR, Outcome.PASS, Outcome.KNOWN, Outcome.SKIP)
            counts = ", ".join(f"{int(r[o])} {o}" for o in order if r[o])
            cells.append(f"{mark} {counts}")
        rows.append([cell(adapter), *cells])
    return table(["adapter", *suites], rows)


def _behaviour_rows(matrices, adapters: list[str], only_differing: bool) -> list[list[str]]:
    rows = []
    for title, facts in matrices:
        first = True
        for name, values in facts.reindex(columns=adapters).iterrows():
            shown = [cell(v) for v in values]
            if only_differing and len({s for s in shown if s != MISSING}) < 2:
                continue
            rows.append([cell(title) if first else "", cell(name), *shown])
            first = False
    return rows


def behaviour_table(res: Results) -> str | None:
    """Where adapters differ, openly; every measured property folded (a PR comment stays short)."""
    matrices = model.behaviour_matrices(res)
    if not matrices:
        return None
    adapters = sorted({a for _, facts in matrices for a in facts.columns})
    header = ["op", "property", *adapters]
    every = _behaviour_rows(matrices, adapters, only_differing=False)
    out = []
    broken = model.running_var_mismatches(res)
    for _, r in broken.iterrows():
        out.append(f"❌ {cell(r['adapter'])} {cell(r['title'])} stores {cell(r['running variance'])} running "
                   f"variance but declares {cell(r['declared running variance'])}.")
    if len(adapters) > 1:
        differ = _behaviour_rows(matrices, adapters, only_differing=True)
        out.append(f"Where adapters differ ({len(differ)} of {len(every)} measured properties):\n\n"
                   + table(header, differ) if differ else "Every adapter behaves the same on every measured property.")
    out.append("eps goes: inside the sqrt when the `eps0.1` case agrees with √(σ² + eps). Running var: biased "
               "divides by n, unbiased by n − 1.")
    out.append(f"<details><summary>Every measured property ({plural(len(matrices), 'op')} × "
               f"{plural(len(adapters), 'adapter')})</summary>\n\n{table(header, every)}\n\n</details>")
    return "\n\n".join(out)


def _fact_cell(f) -> str:
    text = cell(short(f["text"], 200))
    link = f" ({entry(f['known'], f['link'] if sync.given(f['link']) else None)})" if sync.given(f["known"]) else ""
    return FACT_MARKS.get(f["outcome"], "") + text + link


def _worst_cell(r) -> str:
    """"4 replicas ❌ 7.46e5 (2+6 · 8×6 float32 normal)": the worst case's error / tolerance."""
    count = plural(int(r["replicas"]), "replica")
    if r["outcome"] == Outcome.SKIP:
        return f"{count} skipped"
    value = "error" if r["outcome"] == Outcome.ERROR and missing(r["ratio"]) else fmt_value(r["ratio"])
    where = f" ({r['layout']})" if r["outcome"] != Outcome.PASS else ""
    return f"{count} {OUTCOME_MARKS.get(r['outcome'], '')} {value}{where}"


def synchronized_section(res: Results) -> str | None:
    """Cross-replica BatchNorm: the behaviour facts per adapter, then each adapter's worst error /
    tolerance per number of replicas (the heatmap of every case is in the HTML report)."""
    facts = sync.facts(res)
    if not len(facts):
        return None
    rows = [[cell(adapter), *(_fact_cell(r) for _, r in g.set_index("fact").loc[list(sync.FACTS)].iterrows())]
            for adapter, g in facts.groupby("adapter", sort=True)]
    out = [table(["adapter", *sync.FACTS.values()], rows)]
    worst = sync.by_replicas(res)
    if len(worst):
        lines = [f"- {code(adapter)}: " + " · ".join(_worst_cell(r) for _, r in g.iterrows())
                 for adapter, g in worst.groupby("adapter", sort=True)]
        out.append("Worst error / tolerance against the global batch, per number of replicas:\n\n" + "\n".join(lines))
    return "\n\n".join(out)


def _ratio(outcome: str, ratio) -> str:
    value = "error" if outcome == Outcome.ERROR and missing(ratio) else fmt_value(ratio)
    return f"{OUTCOME_MARKS.get(outcome, '')} {value}".strip()


def _derivative_cell(r) -> str:
    """"❌ 4.97e13: fail on LayerNorm, RMSNorm; known on BatchNorm (`key`)": the worst error /
    tolerance over the ops, and the ops that did not pass, by outcome."""
    if r["outcome"] == Outcome.SKIP:
        return cell(f"skip: {short(r['message'], 80)}")
    every = sum(len(t) for t in r["by_outcome"].values())
    said = [f"{o} on {'every op' if len(t) == every else ', '.join(t)}" for o, t in r["by_outcome"].items()
            if o != Outcome.PASS]
    head = _ratio(r["outcome"], r["ratio"])
    if head.endswith(" error") and said:  # an exception: no ratio to show, the ops say it
        head = head.removesuffix(" error")
    text = cell(head) + (f"{':' if head != OUTCOME_MARKS['error'] else ''} {cell('; '.join(said))}" if said else "")
    return text + (f" ({entry(r['known'], r['link'])})" if sync.given(r["known"]) else "")


def derivatives_section(res: Results) -> str | None:
    """Forward-mode and second-order derivatives: per adapter, the worst error / tolerance of each
    derivative over its ops and cases (the heatmap per op is in the HTML report)."""
    found = deriv.by_check(res)
    if not len(found):
        return None
    checks = [c for c in deriv.LABELS if c in set(found["check"])]
    rows = [[cell(adapter), *(_derivative_cell(by.loc[c]) if c in by.index else MISSING for c in checks)]
            for adapter, by in ((a, g.set_index("check")) for a, g in found.groupby("adapter", sort=True))]
    return ("Worst error / tolerance over every op and case, against the analytic float64 derivative: jvp by "
            "forward-mode AD, second order as ∂⟨dx, v⟩/∂x and ∂⟨dx, v⟩/∂γ through the framework's own backward "
            "pass.\n\n" + table(["adapter", *(deriv.LABELS[c] for c in checks)], rows))


def _path(r) -> str:
    how = code(r["how"]) if sync.given(r["how"]) else MISSING
    url = r["doc_link"]
    return f"[{how}]({url})" if sync.given(url) and url.startswith(("http://", "https://")) else how


MIXED_HEADER = ["compute", "output", "running stats", "dx; dγ", "float32 accumulation?", "worst error / tolerance"]


def _mixed_row(r, every: list[str], path: bool, reason: str) -> list[str]:
    """One path (or its ops without one) as cells: adapter, [path,] dtype, ops, then MIXED_HEADER."""
    head = [cell(r["adapter"]), *([_path(r) if r["path"] else "no path"] if path else []), cell(r["dtype"]),
            cell(mixed.ops_label(r["ops"], every))]
    if not r["path"]:
        return [*head, cell(reason), *[""] * (len(MIXED_HEADER) - 1)]
    worst = cell(_ratio(r["outcome"], r["ratio"])) + (f" ({entry(r['known'], r['link'])})" if sync.given(r["known"])
                                                      else "")
    return [*head, *(cell(r[k]) for k in ("compute", "output", "running", "grads")),
            FACT_MARKS.get(r["float32_outcome"], "") + cell(r["float32"]), worst]


def mixed_section(res: Results) -> str | None:
    """Mixed-precision paths: one row per adapter and input dtype (its paths folded, ops that differ
    named), then every path with how it is asked for and its documentation, folded."""
    compact, paths = mixed.paths(res, per_path=False), mixed.paths(res)
    if not len(paths):
        return None
    every = list(dict.fromkeys(t for ops in paths["ops"] for t in ops if "(" not in t))
    rows = [_mixed_row(r, every, False, "" if r["path"] else "no path (each op's reason below)" if r["reasons"] > 1
                       else f"no path: {short(r['reason'], 120)}") for _, r in compact.iterrows()]
    full = [_mixed_row(r, every, True, short(r["reason"], 200) if not r["path"] else "") for _, r in paths.iterrows()]
    return ("Half-precision inputs, float32 parameters. Compute: the dtype the path documents (its tolerance is "
            "derived for it); output, running statistics and gradients: the dtypes returned. float32 "
            "accumulation: every record of a path documenting float32 compute within that bound.\n\n"
            + table(["adapter", "dtype", "ops", *MIXED_HEADER], rows)
            + f"\n\n<details><summary>Every path ({len(paths[paths['path']])}): how it is asked for, where it is "
            f"documented</summary>\n\n{table(['adapter', 'path', 'dtype', 'ops', *MIXED_HEADER], full)}\n\n</details>")


def search_section(res: Results) -> str | None:
    """Per adapter and op, the worst case the search found: failures first, then known divergences, then
    the passes closest to their tolerance, each with the command that reruns it."""
    found = search.worst(res)
    if not len(found):
        return None
    rows = [[cell(r["adapter"]), cell(r["op"]), f"{OUTCOME_MARKS.get(r['outcome'], '')} {cell(r['outcome'])}".strip(),
             cell(r["case"]), cell(r["check"]), cell(r["ratio"]), cell(r["examples"]),
             code(r["rerun"]) if r["rerun"] else MISSING] for _, r in found.iterrows()]
    tally = ", ".join(f"{n} {o}" for o, n in search.counts(found).items() if n)
    covered = [[cell(r["adapter"]), cell(r["op"]), fmt_count(r["examples"]), fmt_count(r["shapes"]), cell(r["dtypes"]),
                fmt_seconds(r["seconds"]), fmt_seconds(r["budget_s"]), cell(r["ended"]), cell(r["reached_ratio"]),
                cell(r["reached_case"]), cell(r["reached_check"])] for _, r in found.iterrows()]
    return (f"Hypothesis searched {plural(len(found), 'adapter × op pair')} ({tally}) for the input with the largest "
            "error / tolerance; a failure is shrunk to a minimal case, otherwise the row is the passing example "
            "closest to its tolerance.\n\n"
            + table(["adapter", "op", "outcome", "case", "check", "error / tolerance", "examples", "rerun"], rows)
            + "\n\nWhat each search covered: cases run (shrink candidates included), distinct shapes, dtypes, "
            "time against its share of the adapter's budget, what ended it, and the largest error / tolerance it "
            "reached.\n\n"
            + table(["adapter", "op", "examples", "shapes", "dtypes", "time", "budget share", "ended by",
                     "largest error / tolerance", "on case", "check"], covered))


def closest_table(res: Results, n: int = CLOSEST_ROWS) -> str | None:
    """The passing checks that come closest to their tolerance (known divergences and failures have
    tables of their own); which run each came from when there are several."""
    closest = model.closest(res)
    if not len(closest):
        return None
    a, runs = closest.head(n), closest["run"].nunique() > 1
    rows = [[cell(r["adapter"]), cell(r["case"]), cell(r["check"]), cell(r["err_eps"]), cell(r["max_abs_err"]),
             cell(r["tolerance"]), cell(r["ratio"]), *([cell(r["run"])] if runs else [])] for _, r in a.iterrows()]
    header = ["adapter", "case", "check", "error (eps)", "max abs error", "tolerance", "error / tolerance"]
    return table([*header, *(["run"] if runs else [])], rows)


def known_table(res: Results) -> str | None:
    """Per entry and adapter: records explained, records outside the envelope, and the record closest
    to its envelope (error / tolerance against the envelope, both in multiples of the tolerance)."""
    k = model.known(res)
    if not len(k):
        return None
    rows = [[entry(r["divergence"], r["link"]), cell(r["adapter"]), cell(r["records"]),
             f"❌ {r['outside']}" if r["outside"] else "0", cell(r["ratio"]), cell(r["envelope"]),
             cell(fmt_percent(r["used"])), cell(r["how"] or MISSING)] for _, r in k.iterrows()]
    return ("Error / tolerance of the record closest to its entry's envelope (the largest error / tolerance the "
            "cause explains); reasons in the HTML report.\n\n"
            + table(["divergence", "adapter", "records", "outside envelope", "error / tolerance", "envelope",
                     "of envelope", "not a ratio"], rows))


def outside_table(res: Results) -> str | None:
    """Records a known divergence matched whose error its envelope does not cover: failures."""
    o = model.outside_known(res)
    if not len(o):
        return None
    rows = [[cell(r["adapter"]), entry(r["divergence"], r["link"]), cell(r["case"]), cell(r["check"]),
             cell(r["ratio"]), cell(r["envelope"]), code(r["rerun"]) if r["rerun"] else MISSING]
            for _, r in o.head(MAX_FAILURES).iterrows()]
    out = ("❌ A known cause matched these records but does not explain their error: they fail.\n\n"
           + table(["adapter", "divergence", "case", "check", "error / tolerance", "envelope", "rerun"], rows))
    if len(o) > MAX_FAILURES:
        out += f"\n\n… and {len(o) - MAX_FAILURES:,} more in the HTML report."
    return out


def failures_section(res: Results) -> str:
    f = model.failures(res)
    if not len(f):
        return "none"
    runs = f["run"].nunique() > 1
    rows = [[cell(r["adapter"]), cell(r["case"]), cell(r["check"]), cell(r["outcome"]),
             cell(short(str(r["message"]).split("\n")[0], 120)), code(r["rerun"]) if r["rerun"] else MISSING,
             *([cell(r["run"])] if runs else [])]
            for _, r in f.head(MAX_FAILURES).iterrows()]
    out = table(["adapter", "case", "check", "outcome", "message", "rerun", *(["run"] if runs else [])], rows)
    if len(f) > MAX_FAILURES:
        out += f"\n\n… and {len(f) - MAX_FAILURES:,} more in the HTML report."
    return out


def headline(res: Results) -> str:
    """The headline sentences, one per line."""
    return "  \n".join(model.headlines(res))


def warnings_block(res: Results) -> str | None:
    """The report warnings as quoted lines under the headline: easy to spot in a PR comment."""
    found = model.report_warnings(res)
    return "\n>\n".join(f"> ⚠️ {cell(w)}" for w in found) if found else None


# ---- each registered section's Markdown (see reports.sections): its lines, headings included


def summary_md(res: Results) -> list[str]:
    """Headline, warnings and environment; with verification records, the verdicts and the records a
    known cause does not explain, where a reader of a pull-request comment looks first."""
    parts = [headline(res), ""]
    alerts = warnings_block(res)
    parts += [alerts, ""] if alerts else []
    parts += ["## Environment", "", environments(res), ""]
    if len(model.verification(res)):
        parts += ["## Verification", "", verdict_table(res), ""]
        outside = outside_table(res)
        parts += ["### Outside known divergences' envelopes", "", outside, ""] if outside else []
    return parts


def behaviour_md(res: Results) -> list[str]:
    return ["### Behaviour", "", behaviour_table(res) or "none", ""]


def agreement_md(res: Results) -> list[str]:
    return [f"### Closest to tolerance ({CLOSEST_ROWS} passing checks with the largest error / tolerance)", "",
            closest_table(res) or "none", ""]


def derivatives_md(res: Results) -> list[str]:
    parts = []
    for title, found in (("Derivatives", derivatives_section(res)), ("Mixed precision", mixed_section(res))):
        parts += [f"### {title}", "", found, ""] if found else []
    return parts


def synchronized_md(res: Results) -> list[str]:
    return ["### Synchronized BatchNorm", "", synchronized_section(res) or "none", ""]


def search_md(res: Results) -> list[str]:
    return ["### Search: worst inputs", "", search_section(res) or "none", ""]


def divergences_md(res: Results) -> list[str]:
    """Known divergences and failures under Verification; without verification records (benchmarks
    that failed or errored), the failures alone under a heading of their own."""
    if not len(model.verification(res)):
        return ["## Failures", "", failures_section(res), ""]
    scripts = [f"- `{adapter}` {case} {check}: [{path}]({path})"
               for (adapter, case, check), path in res.reproducers.items()]
    made = (["Standalone reproducers beside this report (numpy and the framework only; each exits 1 while its "
             "divergence exists):", "", *scripts, ""] if scripts else [])
    return ["### Known divergences", "", known_table(res) or "none", "", "### Failures", "", failures_section(res), "",
            *made]
