"""The pieces every Markdown section is written with: cells, code spans, GFM tables, and the marks
for outcomes."""

from __future__ import annotations

import re

from ..results.kinds import Outcome
from .formatting import (
    MISSING,
    fmt_value,
)

COMMENT_LIMIT = 65_536  # characters GitHub keeps of an issue or pull-request comment; a longer one is refused
MAX_FAILURES = 25  # failures listed; the rest are counted
MAX_TEXT = 160  # characters kept of a message or reason
CLOSEST_ROWS = 10  # passing checks listed closest to their tolerance
ALLOCATOR_ROWS = 15  # cases in the allocator-effect table, largest effect first


def cell(value) -> str:
    """One table cell: the report's number and boolean style, missing values as a dash, no newlines,
    pipes and HTML escaped."""
    text = " ".join(fmt_value(value).split())
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "\\|") or MISSING


def code(text: str) -> str:
    """A code span of ``text`` that survives backticks in it; pipes escaped for tables."""
    text = " ".join(str(text).split())
    ticks = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{pad}{text}{pad}{ticks}".replace("|", "\\|")


def table(header: list[str], rows: list[list[str]]) -> str:
    """A GFM table; ``rows`` hold already-formatted cells (see :func:`cell`)."""
    lines = ["| " + " | ".join(cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def short(text, limit: int = MAX_TEXT) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


FACT_MARKS = {Outcome.FAIL: "❌ ", Outcome.ERROR: "❌ ", Outcome.KNOWN: "⚠️ "}
OUTCOME_MARKS = {Outcome.PASS: "✅", Outcome.KNOWN: "⚠️ K", Outcome.FAIL: "❌", Outcome.ERROR: "❌"}


def entry(key, url) -> str:
    return f"[{code(key)}]({url})" if isinstance(url, str) and url else code(key)
