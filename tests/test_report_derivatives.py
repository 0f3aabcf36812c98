"""The derivatives and mixed-precision section of the reports, rendered from a real run of the
derivative and mixed-precision checks on the numpy reference and three meta-test adapters: one
correct, one whose second order misses the terms through the scale (its jvp is right), one that
rounds its reductions to the half-precision input dtype on its mixed path. The report must say
which is which, as the records do."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest

from normbench.reports import derivatives as deriv
from normbench.reports import markdown, mixed, model, sections
from normbench.reports.formatting import sig3
from normbench.reports.html import page as html_page

from .helpers import browser_dom, run_cli, section

ADAPTERS = ("numpy,tests.meta_adapters:Independent,tests.meta_adapters:SecondOrderFrozenScale,"
            "tests.meta_adapters:DowncastBeforeReduction")
CORRECT, FROZEN, DOWNCAST = "meta-independent", "meta-second-order-frozen-scale", "meta-downcast-before-reduction"
OPS = ["LayerNorm", "BatchNorm", "RMSNorm", "GroupNorm", "InstanceNorm"]
LINK = "https://example.org/jvp-issue"


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("derivatives") / "r"
    proc = run_cli("verify", "--suites", "agreement,train_eval", "--adapters", ADAPTERS, "-o", str(out),
                   "--", "-k", "jvp or second_order or mixed")
    path = out / "results.jsonl"
    assert path.is_file() and " failed" in proc.stdout, proc.stdout[-3000:] + proc.stderr[-3000:]  # the planted bugs
    return path


@pytest.fixture(scope="module")
def records(results) -> list[dict]:
    return [r for r in map(json.loads, results.read_text().splitlines()) if r.get("type") != "environment"]


@pytest.fixture(scope="module")
def res(results) -> model.Results:
    return model.load(results)


@pytest.fixture(scope="module")
def page(res) -> str:
    return html_page.render(res)


def derivatives_table(page: str) -> dict[str, list[tuple[str, str, str]]]:
    """adapter -> [(cell class, text, title)] of the derivatives heatmap, op by op, jvp / 2nd dx / 2nd dγ."""
    found = re.search(r'<table class="heatmap derivatives">(.*?)</table>', page, flags=re.S).group(1)
    body = found.split("</thead>")[1]
    return {adapter: [(cls, html.unescape(text), html.unescape(title)) for cls, title, text in
                      re.findall(r'<td class="([^"]*)" title="([^"]*)">([^<]*)</td>', cells)]
            for adapter, cells in re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', body, flags=re.S)}


def mixed_rows(page: str) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """(adapter, dtype) -> [(cell class, text)] of the mixed-precision matrix (the path cell first)."""
    found = re.search(r'<table class="matrix mixed-paths">(.*?)</table>', page, flags=re.S).group(1)
    out, adapter = {}, None
    for row in re.findall(r"<tr[^>]*>(.*?)</tr>", found.split("</thead>")[1], flags=re.S):
        group = re.match(r'<th scope="rowgroup"[^>]*>([^<]*)</th>', row)
        if group:
            adapter = group.group(1)
            continue
        cells = [(cls, html.unescape(re.sub("<[^>]+>", "", text)).strip()) for cls, text in
                 re.findall(r'<td(?: class="([^"]*)")?(?: title="[^"]*")?(?: colspan="\d+")?>(.*?)</td>', row, re.S)]
        out[(adapter, cells[1][1])] = cells
    return out


def test_derivative_cells_say_what_the_records_say(res, records):
    cells = deriv.cells(res).set_index(["adapter", "title", "check"])
    assert set(cells.index.get_level_values("title")) == set(OPS)
    for (adapter, op, check), c in cells.iterrows():
        raw = [r for r in records if (r["adapter"], r["check"], model.op_title(r["op"])) == (adapter, check, op)]
        worst = max(raw, key=lambda r: (model.SEVERITY[r["outcome"]], (r["max_abs_err"] or 0) / (r["tolerance"] or 1)))
        assert (c["outcome"], c["checks"], c["case"]) == (worst["outcome"], len(raw), worst["case"])
    frozen = cells.loc[FROZEN]
    assert set(frozen.xs("jvp", level="check")["outcome"]) == {"pass"}
    assert set(frozen.xs("second_order_dx", level="check")["outcome"]) == {"fail"}
    assert set(frozen.xs("second_order_dgamma", level="check")["outcome"]) == {"fail"}
    for correct in ("numpy", CORRECT, DOWNCAST):  # the downcast is on the mixed path only
        assert set(cells.loc[correct]["outcome"]) == {"pass"} and (cells.loc[correct]["ratio"] < 1).all()


def test_html_heatmap_fails_the_frozen_scale_second_order_and_nothing_else(page):
    table = derivatives_table(section(page, "derivatives"))
    assert set(table) == {"numpy", CORRECT, FROZEN, DOWNCAST}
    assert all(len(cells) == 3 * len(OPS) for cells in table.values())
    for adapter, cells in table.items():
        for i, (cls, text, title) in enumerate(cells):
            second_order = i % 3 > 0
            if adapter == FROZEN and second_order:
                assert cls == "h-fail"
                assert text.startswith("✗ ") and float(text[2:]) > 1 and "fail" in title
            else:
                assert "h-pass" in cls and float(text) < 1, (adapter, i, cls, text)
                assert re.search(r"worst case: \S+\n\d+ checks: \d+ pass$", title)
    head = re.search(r'<table class="heatmap derivatives">(.*?)</thead>', page, flags=re.S).group(1)
    assert re.findall(r'scope="colgroup" colspan="3">([^<]*)<', head) == OPS


def test_mixed_paths_say_which_path_keeps_float32_accumulation(res, records):
    paths = mixed.paths(res).set_index(["adapter", "dtype"])
    assert set(paths.index) == {(a, d) for a in (CORRECT, FROZEN, DOWNCAST) for d in ("bfloat16", "float16")} | {
        ("numpy", "bfloat16, float16")}
    for adapter in (CORRECT, FROZEN, DOWNCAST):
        for dtype in ("bfloat16", "float16"):
            p = paths.loc[(adapter, dtype)]
            raw = [r for r in records if r["adapter"] == adapter and r["dtype"] == dtype
                   and r["params"].get("precision") == "mixed"]
            facts = lambda key, raw=raw: {r["facts"][key] for r in raw if key in r["facts"]}  # noqa: E731
            assert p["how"] == "float32 arithmetic around half inputs" and p["ops"] == OPS and p["path"]
            assert (p["compute"], p["doc_link"]) == ("float32", "tests/meta_adapters.py") == (
                *facts("compute_documented"), *facts("precision_link"))
            assert p["output"] == dtype and facts("output_dtype") == {dtype}
            assert p["grads"] == f"{dtype}; float32" and facts("grad_dtype") == {dtype, "float32"}
            assert p["running"] == "float32 (BatchNorm)" and facts("running_dtype") == {"float32"}
            assert p["checks"] == len(raw)
            failed = [r for r in raw if r["outcome"] == "fail"]
            if adapter == DOWNCAST:
                worst = max(failed, key=lambda r: r["max_abs_err"] / r["tolerance"])
                assert p["float32_outcome"] == p["outcome"] == "fail" and p["check"] == worst["check"]
                assert p["float32"] == (f"no: {sig3(worst['max_abs_err'] / worst['tolerance'])}× "
                                        f"({model.op_title(worst['op'])} {worst['check']})")
            else:
                assert not failed and p["float32"] == mixed.YES and p["outcome"] == "pass" and p["ratio"] < 1
    numpy = paths.loc[("numpy", "bfloat16, float16")]
    assert not numpy["path"] and numpy["reason"] == "numpy has no mixed-precision path" and numpy["ops"] == OPS


def test_html_mixed_matrix_colours_the_downcast_and_says_no_path(page):
    rows = mixed_rows(section(page, "derivatives"))
    for adapter in (CORRECT, FROZEN):
        cells = rows[(adapter, "bfloat16")]
        assert cells[0] == ("how", "float32 arithmetic around half inputs" + "tests/meta_adapters.py")  # how, doc
        assert [t for _, t in cells[1:8]] == ["bfloat16", "all 5", "float32", "bfloat16", "float32 (BatchNorm)",
                                              "bfloat16; float32", mixed.YES]
        assert cells[7][0] == "verdict" and "h-pass" in cells[8][0] and len(cells) == 9
    downcast = rows[(DOWNCAST, "float16")]
    assert downcast[7][0] == "verdict o-fail" and downcast[7][1].startswith("no: ") and downcast[8][0] == "h-fail"
    assert rows[("numpy", "bfloat16, float16")] == [("none", "no path"), ("", "bfloat16, float16"), ("ops", "all 5"),
                                                    ("o-skip", "numpy has no mixed-precision path")]


def test_markdown_has_a_compact_table_of_each(res):
    md = markdown.render(res)
    part = md.split("### Derivatives", 1)[1].split("\n### ", 1)[0]
    rows = {line.split(" | ")[0].strip("| "): line.split(" | ")[1:] for line in part.splitlines()
            if line.startswith("| ") and not line.startswith("| adapter")}
    assert set(rows) == {"numpy", CORRECT, FROZEN, DOWNCAST}
    assert rows[FROZEN][0].startswith("✅ ")
    assert all(re.fullmatch(r"❌ [\d.e]+: fail on every op", c.strip(" |")) for c in rows[FROZEN][1:])
    assert all(c.strip(" |").startswith("✅ ") for a in ("numpy", CORRECT, DOWNCAST) for c in rows[a])
    part = md.split("### Mixed precision", 1)[1].split("\n### ", 1)[0]
    compact, every = part.split("<details>")
    ours = lambda text: [line for line in text.splitlines() if line.startswith(("| meta", "| numpy"))]  # noqa: E731
    assert len(ours(compact)) == len(ours(every)) == 7  # no adapter has more than one path per dtype
    for lines, path in ((ours(compact), ""), (ours(every), " `float32 arithmetic around half inputs` |")):
        assert any(f"| {CORRECT} |{path} bfloat16 | all 5 | float32 | bfloat16 | float32 (BatchNorm) | "
                   f"bfloat16; float32 | {mixed.YES} | ✅ 0." in line for line in lines)
        assert all("| ❌ no: " in line for line in lines if line.startswith(f"| {DOWNCAST} "))
    assert "| numpy | bfloat16, float16 | all 5 | no path: numpy has no mixed-precision path |" in compact
    assert "| numpy | no path | bfloat16, float16 | all 5 | numpy has no mixed-precision path |" in every


def test_known_skip_half_compute_and_differing_ops_are_said(res):
    """Planted in the real records as such runs write them: a known divergence with its link, a
    framework without forward mode (a skip), a path computing in bfloat16, one op returning float32."""
    c = res.checks.copy()
    known = (c["adapter"] == FROZEN) & (c["check"] == "second_order_dx") & (c["op"] == "layer_norm")
    c.loc[known, "outcome"] = "known"
    c.loc[known, "facts"] = c.loc[known, "facts"].apply(lambda f: {**f, "known": "frozen-scale", "link": LINK})
    skip = (c["adapter"] == "numpy") & (c["check"] == "jvp")
    c.loc[skip, ["outcome", "message", "max_abs_err", "tolerance", "err_eps"]] = [
        "skip", "numpy does not support jvp", None, None, None]
    half = (c["adapter"] == CORRECT) & (c["dtype"] == "bfloat16")
    c.loc[half, "facts"] = c.loc[half, "facts"].apply(
        lambda f: {**f, "compute_documented": "bfloat16"} if "compute_documented" in f else f)
    out32 = (c["adapter"] == FROZEN) & (c["dtype"] == "float16") & (c["op"] == "batch_norm")
    c.loc[out32, "facts"] = c.loc[out32, "facts"].apply(  # and its own path
        lambda f: {**f, "precision": "BatchNorm's path", **({"output_dtype": "float32"} if "output_dtype" in f else {})}
        if "precision" in f else f)
    planted = model.Results(c, res.environments)

    paths = mixed.paths(planted).set_index(["adapter", "dtype"])
    assert paths.loc[(CORRECT, "bfloat16"), "compute"] == "bfloat16"
    assert paths.loc[(CORRECT, "bfloat16"), "float32"] == "not judged: documents bfloat16 compute"
    own = paths.loc[(FROZEN, "float16")].set_index("how")
    assert own.loc["BatchNorm's path", "ops"] == ["BatchNorm"] and own.loc["BatchNorm's path", "output"] == "float32"
    assert own.loc["float32 arithmetic around half inputs", "output"] == "float16"
    compact = mixed.paths(planted, per_path=False).set_index(["adapter", "dtype"])
    assert pd.isna(compact.loc[(FROZEN, "float16"), "how"]) and compact.loc[(FROZEN, "float16"), "output"] == (
        "float16 (LayerNorm, RMSNorm, GroupNorm, InstanceNorm); float32 (BatchNorm)")
    summary = deriv.by_check(planted).set_index(["adapter", "check"])
    assert summary.loc[(FROZEN, "second_order_dx"), "by_outcome"] == {"fail": OPS[1:], "known": ["LayerNorm"]}

    part = section(html_page.render(planted), "derivatives")
    table = derivatives_table(part)
    assert table[FROZEN][1][0] == "h-known" and table[FROZEN][1][2].endswith("known divergence: frozen-scale")
    assert all(cls.endswith("h-skip") and text == "skip" and title.startswith("numpy does not support jvp")
               for cls, text, title in table["numpy"][::3])
    assert mixed_rows(part)[(CORRECT, "bfloat16")][7][0] == "verdict none"
    md = markdown.render(planted)
    assert f"❌ {sig3(summary.loc[(FROZEN, 'second_order_dx'), 'ratio'])}: fail on BatchNorm, RMSNorm, " \
           f"GroupNorm, InstanceNorm; known on LayerNorm ([`frozen-scale`]({LINK}))" in md
    assert "| numpy | skip: numpy does not support jvp |" in md


def test_derivative_and_mixed_records_stay_out_of_agreement_and_behaviour_but_count_everywhere_else(
        res, numpy_results):
    plain = model.load(numpy_results)
    both = model.load([numpy_results, res.checks["source"].iloc[0]])
    cells = model.agreement_cells(both)
    assert not cells["case"].str.endswith("-mixed").any() and not cells["check"].isin(model.DERIVATIVE_CHECKS).any()
    pd.testing.assert_frame_equal(model.agreement_cells(both), model.agreement_cells(plain))
    closest = model.closest(both)
    assert not closest["case"].str.endswith("-mixed").any() and not closest["check"].isin(model.DERIVATIVE_CHECKS).any()
    pd.testing.assert_frame_equal(model.behaviour(both), model.behaviour(plain))
    assert len(model.verification(both)) == len(model.verification(plain)) + len(res.checks)
    assert {FROZEN, DOWNCAST} <= set(model.failures(both)["adapter"])
    page = html_page.render(both)
    assert [s.key for s in sections.SECTIONS if f'<section aria-labelledby="{s.key}">' in page] == [
        "summary", "behaviour", "agreement", "derivatives", "coverage", "divergences"]
    assert 'href="#derivatives">a section of their own</a>' in section(page, "agreement")


def test_only_derivative_or_mixed_records_have_the_section(res, numpy_results):
    assert html_page.sections(res) == ["summary", "derivatives", "coverage", "divergences"]
    c = model.load(numpy_results).checks
    first_order = model.Results(c[~model.derivative(c) & ~model.mixed(c)], model.load(numpy_results).environments)
    assert "derivatives" not in html_page.sections(first_order)
    md = markdown.render(first_order)
    assert "### Derivatives" not in md and "### Mixed precision" not in md


def test_the_section_renders_in_chromium(page, tmp_path):
    dom = browser_dom(page, tmp_path)
    assert 'id="derivatives"' in dom and "mixed-paths" in dom
