"""The Markdown report: valid GitHub tables, every section, small enough for a PR comment."""

from __future__ import annotations

import json
import re

import pytest

from normbench import ops
from normbench.reports import load, markdown, model
from normbench.verify.known import KNOWN

from .test_report_model import (
    other_framework,
    per_allocator,
    planted,
    spread_repeats,
    system_faults,
    two_runs_of,
    unrecorded,
    with_envelopes,
)

LIMIT = 60_000
SEPARATOR = re.compile(r"^\|(\s*:?-+:?\s*\|)+$")


def columns(line: str) -> int:
    """Cells in a table row: pipes not escaped with a backslash separate them."""
    return len(re.split(r"(?<!\\)\|", line.strip())) - 2


def tables(md: str) -> list[list[str]]:
    """Every GFM table (a run of lines starting with a pipe), checked to be well formed."""
    found, block = [], []
    for line in [*md.splitlines(), ""]:
        if line.startswith("|"):
            block.append(line)
            continue
        if block:
            found.append(block)
            block = []
    for block in found:
        assert len(block) >= 2 and SEPARATOR.match(block[1]), block[:2]
        width = columns(block[0])
        assert width >= 1 and all(columns(row) == width for row in block), block
        assert all(row.endswith("|") and not row.endswith("\\|") for row in block), block
    return found


def headings(md: str) -> list[str]:
    return [line for line in md.splitlines() if line.startswith("#")]


def test_full_report_has_every_section_as_valid_tables(numpy_results, quick_bench):
    md = markdown.render(load([numpy_results, quick_bench]), html_name="report.html")
    assert len(md.encode()) < LIMIT
    assert {"# normbench report", "## Environment", "## Verification", "### Behaviour",
            "### Closest to tolerance (10 passing checks with the largest error / tolerance)",
            "### Known divergences", "### Failures", "## Speed", "### Recompiles"} <= set(headings(md))
    found = tables(md)
    header = {block[0] for block in found}
    assert any(h.startswith("| adapter | agreement |") for h in header)  # verdicts: adapter × suite
    assert any(h.startswith("| op | property | numpy |") for h in header)  # behaviour, folded
    speed = next(block for block in found if block[0].startswith("| op | mode | shape |"))
    assert "numpy" in speed[0] and "torch" in speed[0]
    assert all("×" in row for row in speed[2:]) and "sweep" not in "".join(speed)
    assert all(re.search(r"\d (ns|µs|ms|s) \(\d", row) for row in speed[2:])  # times with units, as in HTML
    failures = md.split("### Failures", 1)[1].split("##", 1)[0]
    assert failures.strip() == "none"
    assert md.rstrip().splitlines()[-1].startswith("Charts and full tables: `report.html`")


def test_verification_only_has_no_speed_sections(numpy_results):
    md = markdown.render(load(numpy_results))
    tables(md)
    assert "## Speed" not in headings(md) and "### Recompiles" not in headings(md)
    assert "No speed results" not in md
    assert md.splitlines()[2].startswith(tuple("0123456789")) and " checks on 1 adapter: " in md


def test_speed_only_has_no_verification_sections(quick_bench):
    md = markdown.render(load(quick_bench))
    tables(md)
    assert "## Verification" not in headings(md) and "### Behaviour" not in headings(md)
    assert "No verification results" not in md and "### Recompiles" in headings(md)
    assert re.fullmatch(r"\d+ timings of 2 adapters on 1 machine\.", md.splitlines()[2]), md.splitlines()[2]


def test_nothing_says_so_once(numpy_results):
    res = load(numpy_results)
    md = markdown.render(model.Results(res.checks.iloc[0:0], res.environments))
    assert headings(md) == ["# normbench report", "## Environment"]
    assert md.count("No results in these files.") == 1 and "No " not in md.replace("No results", "")


def test_closest_to_tolerance_lists_only_passing_checks(numpy_results):
    res = planted(numpy_results)
    md = markdown.render(res)
    section = md.split("### Closest to tolerance", 1)[1].split("###", 1)[0]
    rows = next(block for block in tables(section))[2:]
    assert len(rows) == markdown.CLOSEST_ROWS
    closest = model.closest(res).head(markdown.CLOSEST_ROWS)
    assert [row.split(" | ")[-1].rstrip(" |") for row in rows] == [markdown.cell(r) for r in closest["ratio"]]
    assert "known" not in section and "fail" not in section and "∞" not in section
    assert KNOWN[0].key in md.split("### Known divergences", 1)[1]
    assert "| fail |" in md.split("### Failures", 1)[1]


def test_environment_has_a_column_per_run_and_shared_fields_once(numpy_results, quick_bench, tmp_path):
    md = markdown.render(two_runs_of(tmp_path, numpy_results, quick_bench))
    env = md.split("## Environment", 1)[1].split("\n## ", 1)[0]
    table = tables(env)[0]
    assert table[0] == "| field | alpha | beta |"
    rows = {row.split(" | ")[0].lstrip("| "): row for row in table[2:]}
    assert rows["results files"] == "| results files | 3 | 1 |"
    assert "| 2024-05-01 10:02–10:40 UTC |" in rows["date"] and "| 23.1–43.0 GB/s | — |" in rows["memory bandwidth"]
    shared = env.split("Same in every run:", 1)[1]
    assert "- machine: " in shared and "- versions: " in shared and "machine" not in rows
    assert "| error / tolerance | run |" in md  # which run a check came from, now that there are two


def test_single_run_environment_is_one_column(numpy_results):
    env = markdown.render(load(numpy_results)).split("## Environment", 1)[1].split("\n## ", 1)[0]
    table = tables(env)[0]
    assert table[0] == "| field | results |" and "Same in every run" not in env
    assert {row.split(" | ")[0].lstrip("| ") for row in table[2:]} >= {"machine", "date", "python", "versions"}


def test_warnings_come_under_the_headline(numpy_results, quick_bench, tmp_path):
    md = markdown.render(two_runs_of(tmp_path, numpy_results, quick_bench))
    top = md.split("## Environment", 1)[0]
    warnings = [line for line in top.splitlines() if line.startswith("> ⚠️ ")]
    assert warnings[0] == ("> ⚠️ alpha: memory bandwidth varied 23.1–43.0 GB/s across this run's processes: "
                           "timings from different processes may not be comparable.")
    assert "overlapped other load (up to 1.3 cores busy with other processes)" in warnings[1]
    assert "> ⚠️" not in markdown.render(load(numpy_results))


def test_failures_are_escaped_capped_and_rerunnable(numpy_results, tmp_path):
    lines = numpy_results.read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    for row in rows[1:]:
        if row["outcome"] == "pass":
            row.update(outcome="fail", message="err | 3 > tol <b>\nsecond line",
                       rerun=f"pytest 'x.py::t[{row['case']}|a`b]'")
    broken = tmp_path / "results.jsonl"
    broken.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    md = markdown.render(load(broken))
    assert len(md.encode()) < LIMIT
    found = tables(md)
    failures = next(block for block in found if block[0].startswith("| adapter | case | check | outcome | message"))
    assert len(failures) == 2 + markdown.MAX_FAILURES and "more in the HTML report" in md
    row = failures[2]
    assert "| err \\| 3 &gt; tol &lt;b&gt; |" in row and "second line" not in md  # escaped, first line only
    assert "``pytest 'x.py::t[" in row and "\\|a`b]'``" in row  # a code span that survives its backtick
    assert "❌" in md


def test_cell_and_code_escape():
    assert markdown.cell("a|b") == "a\\|b"
    assert markdown.cell(None) == "—" and markdown.cell(float("nan")) == "—"
    assert markdown.cell(float("inf")) == "∞"
    assert markdown.code("a`b|c") == "``a`b\\|c``"
    assert markdown.code("`x`") == "`` `x` ``"


@pytest.mark.parametrize(("value", "shown"), [(1446.0, "1.45e3"), (0.52279, "0.523"), (1.2e-5, "1.2e-5"), (3, "3"),
                                              (True, "yes"), (False, "no"), (float("inf"), "∞")])
def test_cells_use_the_reports_one_number_and_boolean_style(value, shown):
    from normbench.reports import html

    assert markdown.cell(value) == shown
    assert html.fmt_value(value) == shown


def test_behaviour_shows_where_adapters_differ_and_folds_every_property(numpy_results, tmp_path):
    res = load([numpy_results, other_framework(numpy_results, tmp_path / "o" / "results.jsonl")])
    md = markdown.render(res)
    assert len(md.encode()) < LIMIT
    behaviour = md.split("### Behaviour", 1)[1].split("\n### ", 1)[0]
    differ, every = tables(behaviour)
    assert behaviour.index("Where adapters differ") < behaviour.index("<details>") < behaviour.index("</details>")
    assert differ[0] == every[0] == "| op | property | numpy | otherfw |"
    for row in differ[2:]:
        values = [v.strip() for v in row.split(" | ")[2:]]
        assert len({v.strip(" |") for v in values} - {"—"}) == 2, row  # only properties that differ
    rms_norm = "\n".join(differ).split("| RMSNorm |", 1)[1].split("| GroupNorm |", 1)[0]
    assert "| eps goes | inside the sqrt | differs |" in rms_norm
    assert not any("train == eval" in row for row in differ)
    shown = [row.split(" | ")[0].lstrip("| ") for row in every[2:]]
    assert [t for t in shown if t] == [op.title for op in ops.all()]  # each op once, in registry order
    assert "❌ otherfw BatchNorm stores unbiased running variance but declares biased." in behaviour
    one = markdown.render(load(numpy_results)).split("### Behaviour", 1)[1].split("\n### ", 1)[0]
    assert "Where adapters differ" not in one and "<details>" in one  # one adapter: nothing to compare


def test_known_envelopes_and_records_outside_them(numpy_results):
    md = markdown.render(with_envelopes(numpy_results))
    tables(md)
    assert md.index("### Outside known divergences' envelopes") < md.index("### Behaviour")
    outside = md.split("### Outside known divergences' envelopes", 1)[1].split("###", 1)[0]
    assert f"| numpy | [`{KNOWN[0].key}`]({KNOWN[0].link}) |" in outside and "| 3.2e4 | 2.5e3 |" in outside
    known = md.split("### Known divergences", 1)[1].split("###", 1)[0]
    assert f"| [`{KNOWN[0].key}`]({KNOWN[0].link}) | numpy | 3 | ❌ 1 | 400 | 1e3 | 40% | 1 raised |" in known
    assert "1 unexpected failure (1 outside a known divergence's envelope)." in md.splitlines()[2]


# ---------------------------------------------------------------- allocators and repeats


@pytest.fixture(scope="module")
def allocator_results(quick_bench, tmp_path_factory):
    """As in the HTML tests: system, warm and tcmalloc; one case's repeats spread, and slower under system."""
    def edit(name, row):
        spread_repeats(row)
        system_faults(name, row)

    return load(per_allocator(tmp_path_factory.mktemp("alloc"), quick_bench, ("system", "warm", "tcmalloc"), edit))


def speed_part(md: str) -> str:
    return md.split("## Speed", 1)[1].split("\n## ", 1)[0]


def test_speed_shows_the_primary_allocator_said_once_and_spread_repeats(allocator_results, quick_bench, tmp_path):
    md = markdown.render(allocator_results)
    tables(md)
    speed = speed_part(md)
    assert speed.split("\n\n")[1] == markdown.cell(model.allocator_note(allocator_results))
    assert speed.count("Allocator: warm — glibc with tunables") == 1
    old = markdown.render(load(unrecorded(quick_bench, tmp_path / "old" / "results.jsonl")))
    main, before = (next(t for t in tables(m) if t[0].startswith("| op | mode | shape |")) for m in (md, old))
    assert len(main) == len(before)  # the primary allocator's rows only
    spread = [row for row in main if "⚠" in row]
    assert len(spread) == 1 and spread[0].startswith("| LayerNorm | forward | 64×32 | float32 |")
    assert re.search(r"\| (\*\*)?1\.\d\d ms \(\d\.\d\d×\)(\*\*)? ⚠ repeats 1\.00–1\.50 ms \|$", spread[0]), spread[0]
    assert "⚠: the repeats' medians spread over more than ±10%" in speed
    assert "Allocator:" not in old and "### Allocator effect" not in old  # nothing recorded: nothing said


def test_timing_stability_and_allocator_effect_sections(allocator_results):
    md = markdown.render(allocator_results)
    assert [h for h in headings(md) if h.startswith("### ")][-3:] == [
        "### Timing stability", "### Allocator effect", "### Recompiles"]
    stability = md.split("### Timing stability", 1)[1].split("###", 1)[0]
    summary, worst = model.stability_text(model.stability(allocator_results))
    assert markdown.cell(summary) in stability and markdown.cell(worst) in stability
    repeats = tables(stability)[0]
    assert repeats[0] == "| repeat | median | memory bandwidth (GB/s) | page faults/call |"
    assert [r.split(" | ")[1] for r in repeats[2:]] == ["1.00 ms", "1.50 ms", "1.00 ms"]
    effect = md.split("### Allocator effect", 1)[1].split("###", 1)[0]
    assert "preloading tcmalloc or jemalloc" in effect and "- `tcmalloc`: tcmalloc (gperftools" in effect
    rows = tables(effect)[0]
    assert rows[0] == ("| op | mode | shape | dtype | adapter | slowest / fastest | system: time (faults/call) | "
                       "warm: time (faults/call) | tcmalloc: time (faults/call) |")
    assert len(rows) == 2 + markdown.ALLOCATOR_ROWS
    assert re.fullmatch(r"\| LayerNorm \| forward \| 64×32 \| float32 \| torch \| 2\.00× \| 2\.\d\d ms ⚠ \(4,096\) "
                        r"\| 1\.\d\d ms ⚠ \([\d,]+\) · 0\.500× \| 1\.\d\d ms ⚠ \([\d,]+\) · 0\.500× \|",
                        rows[2]), rows[2]
    assert all("⚠" not in row for row in rows[3:])  # only the first case's repeats spread
    more = len(model.primary_speed(allocator_results)) - markdown.ALLOCATOR_ROWS
    assert f"… and {more} more cases in the HTML report." in effect
    assert len(markdown.render(allocator_results).encode()) < LIMIT


def test_environment_names_the_allocator_and_its_probe(allocator_results):
    env = markdown.render(allocator_results).split("## Environment", 1)[1].split("\n## ", 1)[0]
    rows = {row.split(" | ")[0].lstrip("| "): row for row in tables(env)[0][2:]}
    assert rows["allocator"].startswith("| allocator | system; tcmalloc (LD_PRELOAD=")
    assert "; warm (GLIBC_TUNABLES=glibc.malloc." in rows["allocator"]
    assert rows["allocator probe"] == "| allocator probe | system 61.5; tcmalloc 0.2; warm 0 page faults/MiB |"


def test_a_report_too_long_for_a_comment_folds_its_details_first():
    big = markdown.table(["case", "error"], [[f"c{i}", "1e-3"] for i in range(400)])
    md = (f"# normbench report\n\nheadline\n\n<details><summary>Every row (400)</summary>\n\n{big}\n\n</details>\n\n"
          "### Failures\n\n" + markdown.table(["case"], [["x"]]) + "\n")
    fitted = markdown.fit(md, "r.html", limit=2_000)
    assert len(fitted) <= 2_000 and "<details>" not in fitted
    assert "Every row (400): in `r.html` (left out here to fit a 65,536-character pull-request comment)." in fitted
    assert fitted.startswith("# normbench report\n\nheadline") and fitted.endswith("| x |\n")  # the rest kept whole
    assert markdown.fit(md, "r.html", limit=len(md)) == md


def test_a_report_still_too_long_is_cut_at_a_line_with_a_note():
    rows = [[f"c{i}", "é" * 50] for i in range(300)]
    md = "# normbench report\n\n" + markdown.table(["case", "message"], rows) + "\n"
    fitted = markdown.fit(md, limit=5_000)
    assert len(fitted) <= 5_000 and len(md) > 5_000
    body, note = fitted.split("\n\n---\n")
    assert md.startswith(body + "\n") and note.startswith("⚠️ Cut at this line") and "`report.html`" in note
    assert len(tables(fitted)) == 1  # the table it cut is still well formed


def test_rendered_report_fits_the_comment_limit(numpy_results, monkeypatch):
    full = markdown.render(load(numpy_results))
    monkeypatch.setattr(markdown, "COMMENT_LIMIT", len(full) - 1)
    md = markdown.render(load(numpy_results))
    assert len(md) < len(full) and "left out here to fit" in md and "<summary>Every measured property" not in md
    assert headings(md) == headings(full) and tables(md)
