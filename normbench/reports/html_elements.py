"""The building blocks every section uses: escaping, tables whose columns know their format, the
section wrapper, links and code cells."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from ..results.records import OUTCOMES
from .formatting import MISSING, fmt_value, missing, number


def esc(v) -> str:
    return html.escape(str(v), quote=True)


# ---------------------------------------------------------------- tables


@dataclass
class Col:
    """One table column: how to show a value, and whether it is a number (right-aligned, sorted as one)."""

    key: str
    label: str | None = None
    fmt: Callable[[object], str] = fmt_value
    numeric: bool = False
    cls: Callable[[object], str] | str = ""
    html: bool = False  # fmt (or show) returns markup it has escaped itself
    show: Callable[[pd.Series], str] | None = None  # the cell's text from its whole row (value still sorts)

    def cell(self, value, row: pd.Series | None = None) -> str:
        classes = [self.cls(value) if callable(self.cls) else self.cls]
        attrs = ""
        if self.numeric:
            classes.append("num")
            x = number(value)
            attrs = f' data-v="{"" if x is None else (str(x).replace("inf", "Infinity") if math.isinf(x) else x)}"'
        text = self.show(row) if self.show is not None and row is not None else self.fmt(value)
        if text == "—" and not self.html:
            classes.append("none")
        body = text if self.html else esc(text)
        cls = " ".join(c for c in classes if c)
        cls = f' class="{cls}"' if cls else ""
        return f"<td{cls}{attrs}>{body}</td>"

    def header(self) -> str:
        cls = ' class="num"' if self.numeric else ""
        return f'<th{cls} scope="col">{esc(self.label or self.key)}</th>'


def table(df: pd.DataFrame, cols: Iterable[Col], sortable: bool = True) -> str:
    cols = [c for c in cols if c.key in df.columns]
    head = "".join(c.header() for c in cols)
    rows = "\n".join(
        "<tr>" + "".join(c.cell(row[c.key], row) for c in cols) + "</tr>" for _, row in df.iterrows())
    cls = ' class="sortable"' if sortable else ""
    return (f'<div class="scroll"><table{cls}>\n<thead><tr>{head}</tr></thead>\n'
            f"<tbody>\n{rows}\n</tbody></table></div>")


def outcome_class(v) -> str:
    return f"o-{v}" if v in OUTCOMES else ""


def count_class(outcome: str) -> Callable[[object], str]:
    return lambda v: f"o-{outcome}" if (number(v) or 0) > 0 else "zero"


def empty(message: str) -> str:
    return f'<p class="muted">{message}</p>'


def with_machine(cols: list[Col], df: pd.DataFrame) -> list[Col]:
    """Show which machine (and run) a row came from only when the results span several."""
    extra = [Col(key, cls="nowrap") for key in ("machine", "run") if key in df and df[key].nunique() > 1]
    return [*cols, *extra]



def link(v) -> str:
    if missing(v) or not v:
        return MISSING
    text = re.sub(r"^https?://(www\.)?", "", str(v))
    if len(text) > 42:
        parts = text.split("/")
        text = "/".join(parts[:3]) + "/…/" + parts[-1] if len(parts) > 4 else text[:40] + "…"
    return f'<a href="{esc(v)}" title="{esc(v)}" rel="noopener noreferrer">{esc(text)}</a>'


def code(v) -> str:
    return MISSING if missing(v) or not v else f"<code>{esc(v)}</code>"



def section(key: str, title: str, body: str) -> str:
    """A section of the page, its heading the anchor the contents link to (the body is the
    registered section's HTML: see reports.sections)."""
    return f'<section aria-labelledby="{key}">\n<h2 id="{key}">{esc(title)}</h2>\n{body}\n</section>'


def td(text: str, *classes: str, colspan: int = 1) -> str:
    cls = " ".join(c for c in classes if c)
    attrs = (f' class="{cls}"' if cls else "") + (f' colspan="{colspan}"' if colspan > 1 else "")
    return f"<td{attrs}>{esc(text)}</td>"
