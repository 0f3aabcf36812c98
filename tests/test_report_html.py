"""The HTML report, rendered from real results made here: numpy verification plus a quick benchmark.

The browser tests open the page in headless Chromium (skipped where it is not installed):
it must render, run its script without console errors, and screenshot as a real page.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from normbench.known import KNOWN
from normbench.reports import html as report_html
from normbench.reports import model

SECTION_IDS = [key for key, _ in report_html.SECTIONS]


@pytest.fixture(scope="module")
def result_paths(numpy_results, quick_bench):
    """One verification run (numpy) and one quick benchmark (numpy, torch), as a user makes them."""
    return numpy_results, quick_bench


@pytest.fixture(scope="module")
def report(result_paths, tmp_path_factory):
    page = report_html.render(model.load(list(result_paths)))
    path = tmp_path_factory.mktemp("html") / "report.html"
    path.write_text(page, encoding="utf-8")
    return path, page


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
    assert sections["agreement"]["svg"] == 1  # the heatmap
    assert sections["speed"]["svg"] == 2  # one sweep chart per op
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page and "<img" not in page
    svg_ids = re.findall(r'<svg[^>]*>.*?</svg>', page, flags=re.S)
    ids = [i for svg in svg_ids for i in re.findall(r'\bid="([^"]+)"', svg)]
    assert len(ids) == len(set(ids)), "SVG ids must be unique across the page"


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
    checks.at[row, "facts"] = {**checks.at[row, "facts"], "known": entry.key}
    failed = checks.index[checks["check"] == "forward_eval"][0]
    checks.loc[failed, ["outcome", "message", "rerun"]] = ["fail", "<script>alert(1)</script> & off",
                                                           "pytest 'x.py::test[a<b]'"]
    page = report_html.render(res)
    assert f'<a href="{entry.link}"' in page and entry.key in page
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; off" in page
    assert "<code>pytest &#x27;x.py::test[a&lt;b]&#x27;</code>" in page
    assert 'class="headline bad"' in page


@pytest.mark.parametrize("which", ["verification", "speed", "nothing"])
def test_any_subset_renders(result_paths, which):
    run, bench = result_paths
    if which == "nothing":
        res = model.load([run])
        res = model.Results(res.checks.iloc[0:0], res.environments)
    else:
        res = model.load([run] if which == "verification" else [bench])
    page = report_html.render(res)
    assert list(outline(page)) == SECTION_IDS
    if which != "speed":
        assert "No benchmark results in these files (run <code>normbench bench</code>)" in page
    if which != "verification":
        assert "No verification results in these files (run <code>normbench</code>)" in page


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
