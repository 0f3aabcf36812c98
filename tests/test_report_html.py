"""The HTML report, rendered from real results made here: numpy verification plus a quick benchmark.

The browser tests open the page in headless Chromium (skipped where it is not installed):
it must render, run its script without console errors, and screenshot as a real page.
"""

from __future__ import annotations

import html
import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from normbench import ops
from normbench.bench import allocator
from normbench.reports import html as report_html
from normbench.reports import markdown, model, sections
from normbench.reports.html import page as html_page
from normbench.verify.known import KNOWN

from .helpers import section
from .test_report_model import (
    PRELOADS,
    other_framework,
    per_allocator,
    planted,
    spread_repeats,
    system_faults,
    two_runs_of,
    unrecorded,
    with_envelopes,
)

# These need records of their own commands: tests/test_report_synchronized.py, tests/test_search.py and
# tests/test_head_to_head.py render those sections.
SECTION_IDS = [s.key for s in sections.SECTIONS if s.key not in ("synchronized", "search", "head-to-head", "modes")]


@pytest.fixture(scope="module")
def result_paths(numpy_results, quick_bench):
    """One verification run (numpy) and one quick benchmark (numpy, torch), as a user makes them."""
    return numpy_results, quick_bench


@pytest.fixture(scope="module")
def report(result_paths, tmp_path_factory):
    page = html_page.render(model.load(list(result_paths)))
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(page, encoding="utf-8")
    return path, page


@pytest.fixture(scope="module")
def verified_page(numpy_results):
    """numpy's verification with a known divergence and a failure planted: (results, page)."""
    res = planted(numpy_results)
    return res, html_page.render(res)


@pytest.fixture(scope="module")
def two_runs(numpy_results, quick_bench, tmp_path_factory):
    return two_runs_of(tmp_path_factory.mktemp("runs"), numpy_results, quick_bench)


class Outline(HTMLParser):
    """Per section (h2 id): how many tables, body rows and inline SVGs it holds."""

    def __init__(self):
        super().__init__()
        self.sections: dict[str, dict[str, int]] = {}
        self.current = None
        self.in_tbody = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "h2" and "id" in attrs:
            self.current = attrs["id"]
            self.sections[self.current] = {"table": 0, "row": 0, "svg": 0}
        elif self.current and tag in ("table", "svg"):
            self.sections[self.current][tag] += 1
        elif tag == "tbody":
            self.in_tbody = True
        elif self.current and tag == "tr" and self.in_tbody:
            self.sections[self.current]["row"] += 1

    def handle_endtag(self, tag):
        if tag == "tbody":
            self.in_tbody = False


def outline(page: str) -> dict[str, dict[str, int]]:
    parser = Outline()
    parser.feed(page)
    return parser.sections


def test_every_section_is_there_in_order_with_its_contents_link(report):
    _, page = report
    sections = outline(page)
    assert list(sections) == SECTION_IDS
    for key in SECTION_IDS:
        assert f'href="#{key}"' in page
    assert "<title>normbench report</title>" in page and "Generated " in page
    assert str(report[0].parent) not in page  # sources are the results files, not the report
    assert "results.jsonl" in page


def test_tables_have_rows_and_charts_are_inline_svg(report):
    _, page = report
    sections = outline(page)
    for key in ("summary", "behaviour", "agreement", "speed"):
        assert sections[key]["table"] >= 1 and sections[key]["row"] >= 2, (key, sections[key])
    assert "None: every check passed" in page  # divergences: numpy has neither known nor failures
    assert sections["agreement"]["svg"] == 0  # the heatmap is a table now
    assert sections["speed"]["svg"] == len(re.findall(r"<figure>", page))  # one sweep chart per swept op
    assert sections["speed"]["svg"] >= 2
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and "<img" not in page
    svgs = re.findall(r'<svg[^>]*>.*?</svg>', page, flags=re.S)
    ids = [i for svg in svgs for i in re.findall(r'\bid="([^"]+)"', svg)]
    assert len(ids) == len(set(ids)), "SVG ids must be unique across the page"
    assert all("<text" in svg for svg in svgs)  # chart labels are text, not glyph outlines


def heatmap(page: str) -> tuple[list[str], list[tuple[str, list[tuple[str, str, str]]]]]:
    """The heatmap table: (adapters, [(case, [(cell class, title, text) per adapter])])."""
    found = re.search(r'<table class="heatmap">(.*?)</table>', page, flags=re.S).group(1)
    head, body = found.split("</thead>")
    adapters = re.findall(r'<th scope="col">([^<]*)</th>', head)[1:]
    rows = [(case, re.findall(r'<td class="([^"]*)"(?: title="([^"]*)")?>([^<]*)</td>', cells))
            for case, cells in re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', body, flags=re.S)]
    return adapters, rows


def test_agreement_heatmap_is_a_searchable_table_coloured_by_error_over_tolerance(verified_page):
    res, page = verified_page
    agreement = section(page, "agreement")
    assert "<svg" not in agreement and "<path" not in agreement
    adapters, rows = heatmap(agreement)
    assert adapters == ["numpy"]
    cells = model.agreement_cells(res)
    cases = list(dict.fromkeys(cells["case"]))
    assert [case for case, _ in rows] == cases[:report_html.HEATMAP_CASES]  # most telling first, capped
    outcomes = {cls.split()[0]: (title, text) for _, row in rows for cls, title, text in row}
    assert set(outcomes) == {"h-pass", "h-known", "h-fail"}  # three outcomes, three looks
    assert rows[0][1][0][0] == "h-fail" and rows[0][1][0][2].startswith("✗ ")  # failures first
    title, text = outcomes["h-known"]
    assert text == "K ∞" and "known" in title and "error / tolerance ∞" in title
    title, text = outcomes["h-pass"]
    assert "eps, max abs error" in title and "tolerance" in title
    shades = {cls for _, row in rows for cls, _, _ in row if cls.startswith("h-pass")}
    assert len(shades) >= 2, shades  # passes shaded by how close they come to their tolerance
    assert "known divergence" in agreement and "not compared" in agreement  # the legend, as text


def test_heatmap_rows_are_capped_and_the_cap_is_said(verified_page):
    res, page = verified_page
    cells = model.agreement_cells(res)
    assert report_html.heatmap_table(cells, limit=5).count('<tr><th scope="row">') == 5
    cases = cells["case"].nunique()
    assert cases > report_html.HEATMAP_CASES
    assert (f"{cases} cases compared against the reference; the {report_html.HEATMAP_CASES} most telling are shown"
            in section(page, "agreement"))


def test_heatmap_makes_the_page_small(report):
    _, page = report
    assert len(section(page, "agreement").encode()) < 80_000  # the SVG heatmap alone was ~300 KB on a full run
    assert len(page.encode()) < 300_000


def test_closest_to_tolerance_lists_only_passing_checks(verified_page):
    res, page = verified_page
    agreement = section(page, "agreement")
    assert "<h3>Closest to tolerance</h3>" in agreement and "Worst" not in agreement
    closest = agreement.split("<h3>Closest to tolerance</h3>", 1)[1]
    ratios = [float(v) for v in re.findall(r'data-v="([^"]*)">[^<]*</td></tr>', closest)]
    expected = model.closest(res)["ratio"].head(report_html.AGREEMENT_ROWS)
    assert ratios == pytest.approx(list(expected)) and all(r <= 1 for r in ratios)
    assert "o-known" not in closest and "o-fail" not in closest
    divergences = section(page, "divergences")
    assert "o-fail" in divergences and KNOWN[0].key in divergences  # they have tables of their own


def test_numbers_are_formatted_with_units(report):
    _, page = report
    assert re.search(r'<td class="num" data-v="[0-9.e-]+">[0-9.]+ (µs|ms)</td>', page)  # median time
    assert re.search(r'<td class="num" data-v="[0-9.e-]+">[0-9.]+%</td>', page)  # roofline
    assert re.search(r'<td class="[^"]*best[^"]*" data-v="1.0">1.00×</td>', page)  # the fastest of a case
    assert re.search(r'<td class="o-pass num" data-v="\d+(\.0)?">\d+</td>', page)  # verdict counts


def test_page_is_self_contained(report):
    _, page = report
    assert 'src="http' not in page and "<script src" not in page
    assert "<link" not in page and "@import" not in page and "url(http" not in page
    links = set(re.findall(r'href="(http[^"]*)"', page))
    assert links <= {entry.link for entry in KNOWN}, links


def test_known_divergence_links_and_failures_with_rerun_commands(result_paths):
    res = model.load(list(result_paths))
    checks = res.checks
    row = checks.index[checks["check"] == "forward_train"][0]
    entry = KNOWN[0]
    checks.loc[row, "outcome"] = "known"
    checks.at[row, "facts"] = {**checks.at[row, "facts"], "known": entry.key, "link": entry.link,
                               "reason": entry.reason}
    failed = checks.index[checks["check"] == "forward_eval"][0]
    checks.loc[failed, ["outcome", "message", "rerun"]] = ["fail", "<script>alert(1)</script> & off",
                                                           "pytest 'x.py::test[a<b]'"]
    page = html_page.render(res)
    assert f'<a href="{entry.link}"' in page and entry.key in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; off" in page
    assert "<code>pytest &#x27;x.py::test[a&lt;b]&#x27;</code>" in page
    assert 'class="headline bad"' in page


@pytest.mark.parametrize("which", ["verification", "speed", "nothing"])
def test_a_partial_report_shows_only_its_own_sections(result_paths, which):
    run, bench = result_paths
    if which == "nothing":
        res = model.load([run])
        res = model.Results(res.checks.iloc[0:0], res.environments)
    else:
        res = model.load([run] if which == "verification" else [bench])
    page = html_page.render(res)
    expected = {"verification": ["summary", "behaviour", "agreement", "derivatives", "coverage", "divergences"],
                "speed": ["summary", "speed"], "nothing": ["summary"]}[which]
    assert list(outline(page)) == expected
    nav = re.findall(r'<li><a href="#(\w+)">', page)
    assert nav == (expected if len(expected) > 1 else [])
    assert "No verification results" not in page and "No benchmark results" not in page
    headline = re.search(r'<p class="headline [a-z]+">(.*?)</p>', page).group(1)
    if which == "speed":
        assert re.fullmatch(r"\d+ timings of 2 adapters on 1 machine\.", headline), headline
    elif which == "verification":
        assert "checks on 1 adapter:" in headline and "timings" not in headline
    else:
        assert headline == "No results in these files." and page.count("No results") == 1


def environment_table(page: str) -> tuple[list[str], dict[str, list[tuple[str, str]]]]:
    """The environment table: (column headers, {field: [(td attributes, text)]})."""
    found = re.search(r'<table class="matrix environments">(.*?)</table>', page, flags=re.S).group(1)
    head, body = found.split("</thead>")
    rows = {field: re.findall(r"<td([^>]*)>([^<]*)</td>", cells)
            for field, cells in re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', body)}
    return re.findall(r'<th scope="col">([^<]*)</th>', head), rows


def test_environments_fold_each_run_into_one_column(two_runs):
    page = html_page.render(two_runs)
    head, rows = environment_table(page)
    assert head == ["run", "alpha", "beta"]  # four results files, two runs
    assert rows["results files"] == [("", "3"), ("", "1")]
    assert rows["date"][0][1] == "2024-05-01 10:02–10:40 UTC"  # first–last within the run
    assert rows["memory bandwidth"][0][1] == "23.1–43.0 GB/s" and rows["memory bandwidth"][1][1] == "—"
    assert len(rows["python"]) == 2 and rows["python"][1][1] == "3.12.1"  # differs: a cell per run
    (attrs, text), = rows["machine"]  # shared: one cell spanning both runs
    assert 'colspan="2"' in attrs and "cores" in text
    assert 'colspan="2"' in rows["versions"][0][0]


def test_a_single_run_gets_one_column_with_every_field(numpy_results):
    head, rows = environment_table(html_page.render(model.load(numpy_results)))
    assert len(head) == 2 and all(len(cells) == 1 for cells in rows.values())
    assert {"machine", "date", "python", "versions", "threads"} <= set(rows)


def test_warnings_sit_by_the_headline_and_other_load_is_a_column(two_runs):
    page = html_page.render(two_runs)
    summary = section(page, "summary")
    box = re.search(r'<div class="warnings" role="note">(.*?)</div>', summary, flags=re.S).group(1)
    assert summary.index('class="headline') < summary.index('class="warnings"') < summary.index("<h3>")
    items = re.findall(r"<li>(.*?)</li>", box)
    assert items[0].startswith("alpha: memory bandwidth varied 23.1–43.0 GB/s across this run&#x27;s processes")
    assert re.fullmatch(r"\d+ of \d+ timings overlapped other load \(up to 1\.3 cores busy with other "
                        r"processes\): the machine was not quiet\.", items[1]), items[1]
    speed = section(page, "speed")
    assert "other load (cores)" in speed and '<td class="loaded num" data-v="1.3">1.3</td>' in speed
    assert 'class="warnings"' not in html_page.render(model.load(two_runs.environments["source"].iloc[-1]))


def cells(row: str) -> list[str]:
    """A table row's cell texts, markup inside a cell (a mark, its tooltip) dropped; the fastest
    adapter's ratio cell (class "best") reads "fastest", since a near-tie also rounds to 1.00×."""
    return [("fastest" if "best" in (cls or "").split() else "") + html.unescape(re.sub(r"<[^>]+>", "", c))
            for cls, c in re.findall(r'<td(?: class="([^"]*)")?[^>]*>(.*?)</td>', row)]


def speed_tables(page: str) -> list[tuple[str, str, list[list[str]]]]:
    """(op title, 'default shapes' or 'sweep', rows of cell texts) for every speed table."""
    speed = section(page, "speed")
    found = []
    for op, body in re.findall(r'<h3 id="speed-\w+">(\w+)</h3>(.*?)(?=<h3)', speed, flags=re.S):
        pattern = r"(?:<h4>|<summary>)(default shapes|sweep)\b.*?(<div class=\"scroll\">.*?</table>)"
        for title, table in re.findall(pattern, body, flags=re.S):
            rows = [cells(row) for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]]
            found.append((op, title, rows))
    return found


def test_default_shapes_and_sweeps_are_separate_tables_each_with_its_fastest(report, result_paths):
    _, page = report
    tables = speed_tables(page)
    speed = model.speed(model.load(list(result_paths)))
    swept = set(speed.loc[speed["group"] == "sweep", "op"])
    assert [(op, title) for op, title, _ in tables] == [
        (o.title, title) for o in ops.all() for title in ("default shapes", "sweep")
        if title != "sweep" or o.name in swept]
    assert len(swept) >= 2  # the quick sweep times several ops
    titles = {o.title: o.name for o in ops.all()}
    for op, title, rows in tables:
        group = speed[(speed["op"] == titles[op]) & (speed["group"] == ("sweep" if title == "sweep" else "default"))]
        assert len(rows) == len(group)
        keys = {(r[0], r[1], r[2]) for r in rows}  # mode, shape, dtype
        best = [r for r in rows if "fastest1.00×" in r]
        assert len(best) == len(keys), (op, title)  # one fastest per case, within this table


def op_blocks(page: str) -> dict[str, dict[str, list[tuple[str, str]]]]:
    """The behaviour section's tables: {op title: {fact: [(cell class, text) per adapter]}}."""
    found = {}
    for title, body in re.findall(r'<div class="op-block"><h4>([^<]*)</h4>(.*?)</table>', section(page, "behaviour"),
                                  flags=re.S):
        found[title] = {fact: re.findall(r'<td(?: class="([^"]*)")?>([^<]*)</td>', cells)
                        for fact, cells in re.findall(r'<tr><th scope="row">([^<]*)</th>(.*?)</tr>', body)}
    return found


def test_behaviour_is_a_small_table_per_op_in_registry_order(numpy_results, tmp_path):
    res = model.load([numpy_results, other_framework(numpy_results, tmp_path / "o" / "results.jsonl")])
    blocks = op_blocks(html_page.render(res))
    assert list(blocks) == [op.title for op in ops.all()]
    assert "default momentum" in blocks["BatchNorm"] and "default momentum" not in blocks["LayerNorm"]
    assert "running stats by default" in blocks["InstanceNorm"]
    assert "running stats by default" not in blocks["BatchNorm"]
    assert blocks["BatchNorm"]["default momentum"] == [("none", "—"), ("", "0.99")]
    assert blocks["RMSNorm"]["default eps"][1] == ("", "machine eps of the input dtype")
    assert blocks["RMSNorm"]["eps goes"] == [("", "inside the sqrt"), ("", "differs")]
    # a measured running variance that breaks the declaration is marked a failure, where the op keeps one
    assert blocks["BatchNorm"]["running var (measured)"] == [("", "biased"), ("o-fail", "unbiased ✗")]
    assert blocks["BatchNorm"]["running var (declared)"] == [("", "biased"), ("", "biased")]
    assert "running var (measured)" not in blocks["GroupNorm"]
    assert blocks["LayerNorm"]["float16 in → out"] == [("", "float16"), ("", "float32")]


def test_records_outside_an_envelope_come_first_and_known_ones_show_their_envelope(numpy_results):
    res = with_envelopes(numpy_results)
    page = html_page.render(res)
    divergences = section(page, "divergences")
    alert = re.search(r'<div class="alert" role="alert">(.*?)</table></div></div>', divergences, flags=re.S).group(1)
    assert divergences.index('class="alert"') < divergences.index("<h3>Known divergences</h3>")
    assert "1 record fell outside a known divergence&#x27;s envelope" in alert
    assert '<td class="num" data-v="32000.0">3.2e4</td>' in alert
    assert '<td class="num" data-v="2500.0">2.5e3</td>' in alert
    assert f'<a href="{KNOWN[0].link}"' in alert and "<code>pytest &#x27;outside&#x27;</code>" in alert
    known = divergences.split("<h3>Known divergences</h3>", 1)[1].split("<h3>", 1)[0]
    cells = re.findall(r"<td[^>]*>([^<]*)</td>", known)
    assert cells[:7] == ["numpy", "3", "1", "400", "1e3", "40%", "1 raised"]  # closest to its envelope
    assert '<td class="o-fail num" data-v="1.0">1</td>' in known  # outside the envelope, counted as failures
    assert html.escape(KNOWN[0].reason, quote=True) in known  # the reason, folded under the table
    assert 'class="headline bad"' in page and "outside a known divergence" in section(page, "summary")


def test_numbers_and_booleans_read_the_same_in_html_and_markdown(numpy_results):
    res = model.load(numpy_results)
    page, md = html_page.render(res), markdown.render(res)
    behaviour = section(page, "behaviour")
    assert ">yes</td>" in behaviour and "| yes |" in md and "True" not in md and "True" not in behaviour
    closest = model.closest(res).head(10)
    for value in closest["max_abs_err"]:
        text = report_html.sig3(value)
        assert f">{text}</td>" in page and f"| {text} |" in md
    shown = re.sub(r"<[^>]+>", " ", page)  # what a reader sees (sort keys in attributes are raw floats)
    assert not re.search(r"\de[+-]0\d", shown + md)  # no 1.446e+03 / 1.2e-05 anywhere


def test_formatting():
    assert report_html.fmt_time(0.000531) == "531 µs"
    assert report_html.fmt_time(0.00109) == "1.09 ms"
    assert report_html.fmt_time(0.02496) == "25.0 ms"
    assert report_html.fmt_time(2.5e-8) == "25.0 ns"
    assert report_html.fmt_time(1.5) == "1.50 s"
    assert report_html.fmt_time(None) == report_html.fmt_time(math.nan) == "—"
    assert report_html.fmt_gbps(48.3647) == "48.4" and report_html.fmt_gbps(0.0004) == "<0.1"
    assert report_html.fmt_percent(1.7449) == "174%" and report_html.fmt_percent(0.0371) == "3.7%"
    assert report_html.sig3(2.428567e13) == "2.43e13" and report_html.sig3(0.52279) == "0.523"
    assert report_html.sig3(math.inf) == "∞" and report_html.sig3(1e-6) == "1e-6"
    assert report_html.fmt_ratio(1.0) == "1.00×" and report_html.fmt_ratio(46.98) == "47.0×"
    assert report_html.fmt_value(True) == "yes" and report_html.fmt_value(None) == "—"


# ---------------------------------------------------------------- in a real browser

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")
CONSOLE = re.compile(r'CONSOLE[(:]\d*\)?\]\s*"(?P<message>.*)", source: (?P<source>\S*)')


@pytest.fixture(scope="module")
def chromium():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium not installed")
    return browser


def browse(browser: str, page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, page.resolve().as_uri()],
        capture_output=True, text=True, timeout=120,
    )


def page_errors(stderr: str) -> list[str]:
    """What the page said on its console (any message, uncaught exceptions included)."""
    found = [m["message"] for m in CONSOLE.finditer(stderr)]
    return found + [line for line in stderr.splitlines() if "Uncaught" in line and "CONSOLE" not in line]


def console_run(browser: str, page: Path, profile: Path) -> subprocess.CompletedProcess:
    return browse(browser, page, profile, "--enable-logging=stderr", "--v=0", "--dump-dom")


def test_console_error_detector_catches_a_deliberate_error(chromium, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><h2 id="x">x</h2>'
                    '<script>throw new Error("deliberate failure")</script></body></html>')
    proc = console_run(chromium, page, tmp_path / "profile")
    assert 'id="x"' in proc.stdout, proc.stderr
    errors = page_errors(proc.stderr)
    assert any("Uncaught" in e and "deliberate failure" in e for e in errors), proc.stderr


def test_report_renders_in_chromium_without_console_errors(chromium, report, tmp_path):
    path, _ = report
    proc = console_run(chromium, path, tmp_path / "profile")
    assert proc.returncode == 0, proc.stderr
    dom = proc.stdout
    for key in SECTION_IDS:
        assert f'id="{key}"' in dom
    assert "sortable js-sort" in dom and re.search(r'<th [^>]*tabindex="0"', dom)  # the script ran
    assert page_errors(proc.stderr) == [], proc.stderr


SORT_CHECK = """<script>
(function () {
  function key(cell) {
    var v = cell.getAttribute("data-v");
    return v === null ? cell.textContent.trim().toLowerCase() : (v === "" ? NaN : parseFloat(v));
  }
  function ordered(a, b, sign) {
    if (typeof a === "number") { return isNaN(b) || (!isNaN(a) && sign * (b - a) >= 0); }
    return sign * a.localeCompare(b, undefined, {numeric: true}) <= 0;
  }
  var bad = [];
  document.querySelectorAll("table.sortable").forEach(function (table, t) {
    Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, col) {
      [1, -1].forEach(function (sign) {
        th.click();
        var want = sign > 0 ? "ascending" : "descending";
        var keys = Array.prototype.map.call(table.tBodies[0].rows, function (r) { return key(r.cells[col]); });
        for (var i = 1; i < keys.length; i++) {
          if (!ordered(keys[i - 1], keys[i], sign)) { bad.push(t + ":" + col + ":" + want); break; }
        }
        if (th.getAttribute("aria-sort") !== want) { bad.push(t + ":" + col + ":aria"); }
      });
    });
  });
  document.body.setAttribute("data-sort-check", bad.length ? bad.join(",") : "ok");
})();
</script>"""


def test_clicking_headers_sorts_every_table(chromium, report, tmp_path):
    path, page = report
    checked = tmp_path / "sorted.html"
    checked.write_text(page.replace("</body>", SORT_CHECK + "</body>"), encoding="utf-8")
    proc = console_run(chromium, checked, tmp_path / "profile")
    assert 'data-sort-check="ok"' in proc.stdout, re.findall(r'data-sort-check="[^"]*"', proc.stdout)
    assert page_errors(proc.stderr) == [], proc.stderr


def test_report_screenshot(chromium, report, tmp_path):
    from PIL import Image

    path, _ = report
    shot = tmp_path / "shot.png"
    proc = browse(chromium, path, tmp_path / "profile", f"--screenshot={shot}", "--window-size=1400,3000")
    assert proc.returncode == 0 and shot.exists(), proc.stderr
    assert shot.stat().st_size > 50_000
    with Image.open(shot) as image:
        assert image.size == (1400, 3000)
        colours = image.convert("RGB").resize((350, 750)).getcolors(maxcolors=1 << 16)
    assert colours is None or len(colours) > 200, "the screenshot looks blank"


# ---------------------------------------------------------------- allocators and repeats


@pytest.fixture(scope="module")
def allocator_page(quick_bench, tmp_path_factory):
    """The quick benchmark under system, warm and tcmalloc, every repeat 1 ms but one case's
    second at 1.5 ms; under system that case takes twice as long and page-faults: (results, page)."""
    def edit(name, row):
        spread_repeats(row)
        system_faults(name, row)

    res = model.load(per_allocator(tmp_path_factory.mktemp("alloc"), quick_bench, ("system", "warm", "tcmalloc"),
                                   edit))
    return res, html_page.render(res)


def h3_block(page: str, key: str) -> str:
    """From an h3 (by id) to the next heading."""
    return re.search(rf'<h3 id="{key}">.*?(?=<h[23])', page, flags=re.S).group(0)


def test_speed_tables_show_the_primary_allocator_and_say_it_once(allocator_page, quick_bench, tmp_path):
    res, page = allocator_page
    old = html_page.render(model.load(unrecorded(quick_bench, tmp_path / "old" / "results.jsonl")))
    shapes = [(op, title, len(rows)) for op, title, rows in speed_tables(page)]
    assert shapes == [(op, title, len(rows)) for op, title, rows in speed_tables(old)]  # one allocator's rows
    notes = re.findall(r'<p class="allocator">(.*?)</p>', page)
    assert notes == [html.escape(model.allocator_note(res), quote=True)]
    assert notes[0].startswith("Allocator: warm — glibc with tunables")
    assert notes[0].endswith("Also timed under system, tcmalloc: see Allocator effect.")
    assert 'class="allocator"' not in old and "allocator-effect" not in old  # nothing recorded: nothing said


def test_unsteady_repeats_show_their_range_beside_the_median(allocator_page):
    _, page = allocator_page
    pattern = r'<td class="num" data-v="[0-9.e-]+">([^<]+) <span class="spread" title="([^"]+)">([^<]+)</span>'
    tables = section(page, "speed").split('<h3 id="timing-stability">')[0]
    marks = re.findall(pattern, tables)
    assert len(marks) == 1  # only the primary allocator's tables, and one case spread
    median, title, shown = marks[0]
    assert shown == "⚠ repeats 1.00–1.50 ms" and median.endswith("ms")
    assert html.unescape(title) == "3 repeats' medians: 1.00 ms, 1.50 ms, 1.00 ms; slowest / fastest 1.50×"
    rows = next(rows for op, title, rows in speed_tables(page) if op == "LayerNorm" and title == "default shapes")
    assert any(r[1:4] == ["64×32", "float32", "torch"] and "⚠ repeats 1.00–1.50 ms" in r[4] for r in rows)
    assert "more than ±10%" in section(page, "speed")


def test_timing_stability_gives_the_spread_and_the_worst_cases_repeats(allocator_page):
    res, page = allocator_page
    block = h3_block(page, "timing-stability")
    summary, worst = model.stability_text(model.stability(res))
    assert html.escape(summary, quote=True) in block and html.escape(worst, quote=True) in block
    rows = [cells(r) for r in re.findall(r"<tr>(.*?)</tr>", block)]
    assert rows[0] == [] and [r[:2] for r in rows[1:]] == [["0", "1.00 ms"], ["1", "1.50 ms"], ["2", "1.00 ms"]]
    assert [r[3] for r in rows[1:]] == ["0", "900", "0"]  # page faults per call of each repeat
    assert float(rows[2][2]) == pytest.approx(float(rows[1][2]) / 2, abs=0.1)  # its process's bandwidth


def test_allocator_effect_is_a_row_per_case_largest_effect_first(allocator_page, quick_bench, tmp_path):
    res, page = allocator_page
    block = h3_block(page, "allocator-effect")
    head = re.findall(r'<th[^>]*scope="col">([^<]*)</th>', block)
    assert head[-4:] == ["slowest / fastest", "system: time (faults/call)", "warm: time (faults/call)",
                         "tcmalloc: time (faults/call)"]
    rows = [cells(r) for r in re.findall(r"<tr>(.*?)</tr>", block)[1:]]
    assert len(rows) == len(model.primary_speed(res))  # every case, each timed under the three
    first = rows[0]
    assert first[:6] == ["LayerNorm", "forward", "64×32", "float32", "torch", "2.00×"]
    assert re.fullmatch(r"2\.\d\d ms ⚠ \(4,096\)", first[6])  # the baseline: no ratio
    assert all(re.fullmatch(r"1\.\d\d ms ⚠ \([\d,]+\) 0\.500×", c) for c in first[7:9]), first
    assert '<span class="spread" title="repeats 2.00–3.00 ms">⚠</span>' in block  # system's repeats, spread
    assert all("⚠" not in c for row in rows[1:] for c in row)  # the other cases' repeats agree
    for name in ("system", "warm", "tcmalloc"):
        assert f"<dt>{name}</dt><dd>{html.escape(allocator.KNOWN[name].meaning, quote=True)}</dd>" in block
    assert "preloading tcmalloc or jemalloc" in block
    capped = report_html.speed.allocator_effect(res, limit=5)
    assert capped.count("<tr>") == 6 and f"The 5 cases with the largest effect, of {len(rows)}." in capped
    single = html_page.render(model.load(per_allocator(tmp_path, quick_bench, ("warm",))))
    assert "allocator-effect" not in single and '<p class="allocator">Allocator: warm — ' in single


def test_environment_shows_each_allocator_its_settings_and_probe(allocator_page):
    _, rows = environment_table(allocator_page[1])
    (_, text), = rows["allocator"]
    assert text.startswith("system; tcmalloc (LD_PRELOAD=" + PRELOADS["tcmalloc"] + "); warm (GLIBC_TUNABLES=")
    assert rows["allocator probe"] == [("", "system 61.5; tcmalloc 0.2; warm 0 page faults/MiB")]
