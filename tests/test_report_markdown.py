"""The Markdown report: valid GitHub tables, every section, small enough for a PR comment."""

from __future__ import annotations

import json
import re

from normbench.reports import load, markdown

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
            "### Worst agreement (10 largest errors relative to tolerance)", "### Known divergences",
            "### Failures", "## Speed", "### Recompiles"} <= set(headings(md))
    found = tables(md)
    header = {block[0] for block in found}
    assert any(h.startswith("| adapter | agreement |") for h in header)  # verdicts: adapter × suite
    assert any(h.startswith("| property | numpy") for h in header)  # behaviour matrix
    speed = next(block for block in found if block[0].startswith("| op | mode | shape |"))
    assert "numpy" in speed[0] and "torch" in speed[0]
    assert all("×" in row for row in speed[2:]) and "sweep" not in "".join(speed)
    failures = md.split("### Failures", 1)[1].split("##", 1)[0]
    assert failures.strip() == "none"
    assert md.rstrip().splitlines()[-1].startswith("Charts and full tables: `report.html`")


def test_verification_only_says_there_is_no_speed(numpy_results):
    md = markdown.render(load(numpy_results))
    tables(md)
    assert "No speed results in these files." in md and "### Recompiles" not in headings(md)


def test_speed_only_says_there_is_no_verification(quick_bench):
    md = markdown.render(load(quick_bench))
    tables(md)
    assert "No verification results in these files." in md
    assert "### Behaviour" not in headings(md) and "### Recompiles" in headings(md)


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
    assert markdown.cell(float("inf")) == "inf"
    assert markdown.code("a`b|c") == "``a`b\\|c``"
    assert markdown.code("`x`") == "`` `x` ``"
