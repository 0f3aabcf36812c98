"""The report's sections, listed once: the HTML page and the Markdown report both walk this list.

Each entry says when the section is present (one predicate over the loaded results, decided here
and nowhere else), the table it is built from, and how it is written as HTML and as Markdown. A
new section is one module (its table, its HTML, its Markdown) plus one line in ``SECTIONS``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from ..results.kinds import Suite
from . import coverage, modes
from . import derivatives as deriv
from . import head_to_head as h2h
from . import search as searched
from . import synchronized as sync
from .agreement import agreement_cells
from .behaviour import behaviour
from .divergences import known
from .html.agreement import agreement_section
from .html.behaviour import behaviour_section
from .html.derivatives import derivatives_section
from .html.divergences import divergences_section
from .html.head_to_head import head_to_head_section
from .html.search import search_section
from .html.speed import speed_section
from .html.summary import summary_section
from .html.synchronized import synchronized_section
from .loading import Results
from .markdown_speed import head_to_head_md, speed_md
from .markdown_verification import (
    agreement_md,
    behaviour_md,
    derivatives_md,
    divergences_md,
    search_md,
    summary_md,
    synchronized_md,
)
from .rows import derivative, mixed, side_field, single_process, verification
from .timing import speed
from .verdicts import unexpected, verdicts


@dataclass(frozen=True)
class Section:
    key: str  # the HTML anchor
    title: str  # the HTML heading and contents entry
    present: Callable[[Results], bool]  # whether these results have anything for it
    table: Callable[[Results], pd.DataFrame]  # the model it is drawn from (for notebooks and tests)
    html: Callable[[Results], str]  # the whole <section>
    markdown: Callable[[Results], list[str]]  # its lines, headings included


def verified(res: Results) -> bool:
    return bool(len(verification(res)))


def single(res: Results) -> bool:
    """Records of one layer in one process exist (those with a section of their own have only that)."""
    return bool(len(single_process(res)))


def own_derivatives(res: Results) -> bool:
    own = verification(res)
    return bool(len(own)) and bool((derivative(own) | mixed(own)).any())


def timed(res: Results) -> bool:
    c = res.checks
    return bool(len(c)) and bool(((c["suite"] == Suite.SPEED) & ~side_field(c)).any())


SECTIONS: list[Section] = [
    Section("summary", "Summary", lambda res: True, verdicts, summary_section, summary_md),
    Section("behaviour", "Behaviour", single, behaviour, behaviour_section, behaviour_md),
    Section("agreement", "Agreement", single, agreement_cells, agreement_section, agreement_md),
    Section("derivatives", "Derivatives and mixed precision", own_derivatives, deriv.by_check, derivatives_section,
            derivatives_md),
    Section("synchronized", "Synchronized BatchNorm", lambda res: bool(len(sync.records(res))), sync.facts,
            synchronized_section, synchronized_md),
    Section("search", "Search: worst inputs", lambda res: bool(len(searched.records(res))), searched.worst,
            search_section, search_md),
    Section("modes", "Execution modes", modes.present, modes.verified, modes.html, modes.markdown),
    Section("coverage", "Coverage", coverage.present, coverage.by_adapter, coverage.html, coverage.markdown),
    Section("divergences", "Divergences and failures", lambda res: verified(res) or bool(unexpected(res)), known,
            divergences_section, divergences_md),
    Section("head-to-head", "Head to head", h2h.present, h2h.rows, head_to_head_section, head_to_head_md),
    Section("speed", "Speed", timed, speed, speed_section, speed_md),
]


def present(res: Results) -> list[Section]:
    """The sections these results have something for, in report order: a speed-only report has no
    verification sections, a verification-only one no speed section; the summary is always there."""
    return [s for s in SECTIONS if s.present(res)]
