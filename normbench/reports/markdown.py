"""The report as GitHub-flavoured Markdown, small enough for a pull-request comment.

Every number comes from :mod:`normbench.reports.model`; long tables are cut to their worst
rows here, and the HTML report keeps everything (charts, full tables).
"""

from __future__ import annotations

import re

from . import model
from . import sections as registry
from .loading import Results
from .markdown_elements import ALLOCATOR_ROWS, CLOSEST_ROWS, COMMENT_LIMIT, MAX_FAILURES, cell, code, table

__all__ = ["ALLOCATOR_ROWS", "CLOSEST_ROWS", "COMMENT_LIMIT", "MAX_FAILURES", "cell", "code", "fit", "render", "table"]


DETAILS = re.compile(r"<details><summary>(.*?)</summary>.*?</details>", re.S)


def fit(md: str, html_name: str = "report.html", limit: int = COMMENT_LIMIT) -> str:
    """``md`` cut to ``limit`` characters, so that GitHub takes it as a comment: folded tables go
    first, largest first (each leaves its summary and where to find it), then whole lines
    from the end, with a note of the cut. Headline, warnings and verdicts come first, so they stay."""
    if len(md) <= limit:
        return md
    for block in sorted(DETAILS.finditer(md), key=lambda m: len(m.group(0)), reverse=True):
        md = md.replace(block.group(0), f"{block.group(1)}: in {code(html_name)} (left out here to fit a "
                        f"{COMMENT_LIMIT:,}-character pull-request comment).", 1)
        if len(md) <= limit:
            return md
    note = (f"\n\n---\n⚠️ Cut at this line to fit a {COMMENT_LIMIT:,}-character pull-request comment: "
            f"{code(html_name)} (the HTML report next to this file) has the rest.\n")
    kept = md[: max(limit - len(note), 0)]
    return kept[: kept.rfind("\n") + 1].rstrip("\n") + note


def render(res: Results, html_name: str = "report.html") -> str:
    """The whole report as Markdown: only the sections these results have something for, fitted
    to a pull-request comment."""
    found = registry.present(res)
    parts = ["# normbench report", ""]
    for section in found:
        parts += section.markdown(res)
    if len(model.verification(res)) or registry.timed(res):
        parts += ["---", f"Charts and full tables: {code(html_name)} (the HTML report next to this file)."]
    return fit("\n".join(parts) + "\n", html_name, COMMENT_LIMIT)
