"""The synchronized BatchNorm section of the reports, rendered from a real run of the suite on the
numpy reference and the meta-tests' replicated adapters: one correct, one averaging the replicas'
statistics unweighted, one never synchronizing. The report must say which is which."""

from __future__ import annotations

import html
import re
from pathlib import Path

import pandas as pd
import pytest

from normbench.reports import markdown, model, sections
from normbench.reports import synchronized as sync
from normbench.reports.html import page as html_page
from normbench.results.facts import conventions, says

from .helpers import browser_dom, run_cli, section
from .test_report_model import rewrite

ADAPTERS = ("numpy,tests.meta_replicas:Independent,tests.meta_replicas:UnweightedMean,"
            "tests.meta_replicas:LocalOnly")
CORRECT, UNWEIGHTED, LOCAL = "meta-sync-independent", "meta-sync-unweighted-mean", "meta-sync-local-only"
LINK = "https://example.org/sync-issue"


@pytest.fixture(scope="module")
def sync_results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sync") / "r"
    proc = run_cli("verify", "--suites", "synchronized", "--adapters", ADAPTERS, "-o", str(out))
    path = out / "results.jsonl"
    assert path.is_file() and " failed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]  # the planted bugs
    return path


@pytest.fixture(scope="module")
def res(sync_results) -> model.Results:
    return model.load(sync_results)


@pytest.fixture(scope="module")
def page(res) -> str:
    return html_page.render(res)


def facts_of(res: model.Results) -> dict[str, dict[str, str]]:
    f = sync.facts(res)
    return {a: dict(zip(g["fact"], g["text"], strict=True)) for a, g in f.groupby("adapter")}


def facts_table(page: str) -> dict[str, dict[str, tuple[str, str]]]:
    """adapter -> fact label -> (cell class, text) of the HTML facts table."""
    found = re.search(r'<table class="matrix sync-facts">(.*?)</table>', page, flags=re.S).group(1)
    head, body = found.split("</thead>")
    labels = [html.unescape(x) for x in re.findall(r'<th scope="col">([^<]*)</th>', head)[1:]]
    out = {}
    for adapter, cells in re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', body, flags=re.S):
        tds = re.findall(r'<td(?: class="([^"]*)")?(?: title="[^"]*")?>(.*?)</td>', cells)
        out[adapter] = {label: (cls, html.unescape(re.sub("<[^>]+>", "", text)))
                        for label, (cls, text) in zip(labels, tds, strict=True)}
    return out


def errors_table(page: str) -> tuple[list[str], list[tuple[str, str]]]:
    """(adapters, [(group or row label, the row's cells)]) of the error heatmap."""
    found = re.search(r'<table class="heatmap sync-errors">(.*?)</table>', page, flags=re.S).group(1)
    head, body = found.split("</thead>")
    adapters = re.findall(r'<th scope="col">([^<]*)</th>', head)[1:]
    return adapters, re.findall(r'<tr[^>]*><th scope="row(?:group)?"[^>]*>([^<]*)</th>(.*?)</tr>', body, flags=re.S)


def test_facts_say_which_adapter_weights_replicas_by_count_and_which_ignores_synchronization(res):
    facts = facts_of(res)
    assert set(facts) == {"numpy", CORRECT, UNWEIGHTED, LOCAL}
    for correct in ("numpy", CORRECT):
        assert facts[correct]["count_weighted"] == "yes"
        assert facts[correct]["masks"] == "honoured"
        assert facts[correct]["single_sample"] == "matches the global batch"
        assert facts[correct]["running_var"] == "biased"
    assert facts[UNWEIGHTED]["count_weighted"] == "no: unweighted average of the replicas"
    assert facts[UNWEIGHTED]["masks"].startswith("per replica only")
    assert facts[LOCAL]["count_weighted"] == "no: each replica normalizes with its own statistics"
    assert facts[LOCAL]["masks"] == "ignored: each replica normalizes with its own statistics"
    # equal single-sample splits pass under an unweighted mean (equal counts); the uneven one does not
    assert "matches the global batch (1+1, 1+1+1+1)" in facts[UNWEIGHTED]["single_sample"]
    assert re.search(r"fails \d+ of \d+ checks \(1\+3\+4\+8\)", facts[UNWEIGHTED]["single_sample"])
    assert "match neither" in facts[LOCAL]["running_var"]
    assert facts[CORRECT]["synchronizes"] == "4 simulated replicas, sum all-reduce"  # the widest case's engine
    # the meta adapters do not record how uneven shards were passed: a dash, not a guess
    assert facts["numpy"]["uneven"] == "as they are: each replica's own rows"
    assert {f["uneven"] for a, f in facts.items() if a != "numpy"} == {"—"}


def test_the_running_variance_fact_reads_the_same_from_a_list_and_from_the_older_text(res, sync_results, tmp_path):
    """A results file from before the convention became a list ("biased or unbiased", "neither")
    gives the same facts, colours and details."""
    def as_older_text(row):
        if "running_var" in row.get("facts", {}):
            row["facts"]["running_var"] = says(conventions(row["facts"]["running_var"]))

    assert any(isinstance(f.get("running_var"), list) for f in res.checks["facts"])
    old = model.load(rewrite(sync_results, tmp_path / "old" / "results.jsonl", edit=as_older_text))
    assert any(isinstance(f.get("running_var"), str) for f in old.checks["facts"])
    pd.testing.assert_frame_equal(sync.facts(old), sync.facts(res))


def test_a_fact_without_records_is_not_run(res):
    c = res.checks
    no_masks = model.Results(c[~c["params"].apply(lambda p: bool(p.get("masked")))], res.environments)
    assert {f["masks"] for f in facts_of(no_masks).values()} == {sync.NOT_RUN}


def test_html_facts_table_colours_what_breaks_and_keeps_what_holds_plain(page):
    table = facts_table(section(page, "synchronized"))
    assert table[UNWEIGHTED]["count-weighted statistics?"] == ("o-fail", "no: unweighted average of the replicas")
    assert table[LOCAL]["masks under synchronization"][0] == "o-fail"
    assert table[CORRECT]["count-weighted statistics?"] == ("", "yes")
    assert table[CORRECT]["uneven replicas passed as"] == ("none", "—")
    assert table["numpy"]["uneven replicas passed as"] == ("", "as they are: each replica's own rows")


def test_error_table_groups_layouts_by_replica_count_with_agreement_cells(res, page):
    adapters, rows = errors_table(section(page, "synchronized"))
    assert adapters == sorted(["numpy", CORRECT, UNWEIGHTED, LOCAL])
    groups = [label for label, cells in rows if not cells]
    assert groups == ["1 replica", "2 replicas", "4 replicas"]
    body = {label: re.findall(r'<td class="([^"]*)" title="[^"]*">([^<]*)</td>', cells) for label, cells in rows
            if cells}
    assert len(body) == sync.cells(res)["case"].nunique()
    uneven = body["2+6 · 8×6 float32 normal"]
    by_adapter = dict(zip(adapters, uneven, strict=True))
    assert by_adapter[UNWEIGHTED][0] == "h-fail" and by_adapter[UNWEIGHTED][1].startswith("✗ ")
    assert by_adapter[LOCAL][0] == "h-fail" and by_adapter["numpy"][0].startswith("h-pass")
    assert "1+3+4+8 · 16×6 float64 normal" in body and "4+4 · 8×6×5 float32 normal channels-last masked" in body
    for label, cells in body.items():
        pass_cell = dict(zip(adapters, cells, strict=True))[CORRECT]
        assert pass_cell[0].startswith("h-pass"), label
        assert float(pass_cell[1]) < 1


def test_markdown_has_the_facts_and_a_worst_ratio_line_per_adapter(res):
    md = markdown.render(res)
    part = md.split("### Synchronized BatchNorm", 1)[1].split("\n### ", 1)[0]
    rows = {line.split(" | ")[0].strip("| "): line for line in part.splitlines() if line.startswith("| meta")}
    assert "❌ no: unweighted average of the replicas" in rows[UNWEIGHTED]
    assert "❌ ignored: each replica normalizes with its own statistics" in rows[LOCAL]
    lines = {m[0]: m[1] for m in re.findall(r"^- `([^`]+)`: (.*)$", part, flags=re.M)}
    assert set(lines) == {"numpy", CORRECT, UNWEIGHTED, LOCAL}
    assert re.fullmatch(r"1 replica ✅ [\d.e-]+ · 2 replicas ✅ [\d.e-]+ · 4 replicas ✅ [\d.e-]+", lines[CORRECT])
    assert re.search(r"2 replicas ❌ [\d.e]+ \(2\+6 · 8×6 float32 normal\)", lines[UNWEIGHTED])


def test_known_divergences_refusals_and_skips_are_said_with_their_link_and_reason(res):
    """A framework that refuses (its fallbacks checked) skips every case; a declared divergence
    shows as known, with its link: planted in the real records, as such runs write them."""
    c = res.checks.copy()
    known = (c["adapter"] == UNWEIGHTED) & (c["outcome"] == "fail")
    c.loc[known, "outcome"] = "known"
    c.loc[known, "facts"] = c.loc[known, "facts"].apply(lambda f: {**f, "known": "unweighted-pmean", "link": LINK})
    refuser = c[c["adapter"] == "numpy"].copy().assign(adapter="refuser")
    support = refuser["check"] == sync.SUPPORT
    refuser.at[refuser.index[support][0], "facts"] = {
        "synchronized": "refused", "refusal": "ValueError: no process group",
        "fallbacks": {"eval mode": True, "no process group": True}}
    cases = refuser[~support].drop_duplicates("case").assign(
        check="forward_train", outcome="skip", max_abs_err=None, tolerance=None, err_eps=None,
        message="refuses: ValueError: no process group")
    cases["facts"] = [{} for _ in range(len(cases))]
    planted = model.Results(pd.concat([c, refuser[support], cases], ignore_index=True), res.environments)

    facts = sync.facts(planted).set_index(["adapter", "fact"])
    assert facts.loc[("refuser", "synchronizes"), "text"] == (
        "refused: ValueError: no process group (fallbacks: eval mode ✓, no process group ✓)")
    assert facts.loc[("refuser", "synchronizes"), "outcome"] == "skip"
    assert facts.loc[("refuser", "count_weighted"), "text"] == sync.NOT_RUN
    assert facts.loc[("refuser", "single_sample"), "text"] == "skipped: refuses: ValueError: no process group"
    weighted = facts.loc[(UNWEIGHTED, "count_weighted")]
    assert (weighted["outcome"], weighted["known"], weighted["link"]) == ("known", "unweighted-pmean", LINK)

    page = html_page.render(planted)
    part = section(page, "synchronized")
    assert facts_table(part)[UNWEIGHTED]["count-weighted statistics?"] == (
        "o-known", "no: unweighted average of the replicas (unweighted-pmean)")
    assert f'<a href="{LINK}"' in part
    assert re.search(r'<td class="h-skip" title="refuses: ValueError: no process group">skip</td>', part)
    assert re.search(r'<td class="h-known" title="[^"]*known divergence: unweighted-pmean">K ', part)
    md = markdown.render(planted)
    assert f"[`unweighted-pmean`]({LINK})" in md and "- `refuser`: 1 replica skipped" in md


def test_synchronized_records_stay_out_of_agreement_and_behaviour_but_count_everywhere_else(res, numpy_results):
    both = model.load([numpy_results, res.checks["source"].iloc[0]])
    synced = sync.records(both)
    cells = model.agreement_cells(both)
    assert len(synced) and not cells["case"].str.contains("replicas").any()
    pd.testing.assert_frame_equal(model.behaviour(both), model.behaviour(model.load(numpy_results)))
    assert len(model.verification(both)) == len(model.verification(model.load(numpy_results))) + len(synced)
    assert set(model.failures(both)["suite"]) == {"synchronized"}
    page = html_page.render(both)
    assert [s.key for s in sections.SECTIONS if f'<section aria-labelledby="{s.key}">' in page] == [
        "summary", "behaviour", "agreement", "derivatives", "synchronized", "coverage", "divergences"]
    assert f"{len(model.verification(both)):,}</b><span>checks" in page


def test_only_synchronized_records_have_the_section(res, numpy_results):
    assert html_page.sections(res) == ["summary", "synchronized", "coverage", "divergences"]
    numpy_only = model.load(numpy_results)
    assert "synchronized" not in html_page.sections(numpy_only)
    assert "Synchronized BatchNorm" not in markdown.render(numpy_only)


def test_the_section_renders_in_chromium(page, tmp_path):
    dom = browser_dom(page, tmp_path)
    assert 'id="synchronized"' in dom and "sync-errors" in dom
