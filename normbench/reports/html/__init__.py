"""The HTML report: one self-contained page (inline CSS, inline SVG charts, no fetches).

Every number comes from the report's model modules (:mod:`normbench.reports.model` names them all);
which sections a page has, and in what order, is :mod:`normbench.reports.sections`. The page reads fully without
JavaScript; a small inline script only makes tables sortable by clicking their headers.

One module per part of the page: ``page`` (the document, header and contents: ``page.render`` writes the
report; this package does not import it, since the section registry it reads imports the section modules
here), ``style`` (CSS
and the sort script), ``..html_elements`` (tables, cells, links: what every section builds with),
``charts`` (SVG via matplotlib), and a module per section: ``summary`` (headline, environment,
verdicts), ``behaviour``, ``agreement`` (the heatmap), ``derivatives`` (forward-mode and
second-order derivatives, mixed-precision paths), ``synchronized`` (cross-replica BatchNorm:
its behaviour facts and error heatmap), ``divergences`` (known divergences and their envelopes,
failures), ``head_to_head`` (ratios between adapters timed head to head) and ``speed``.
"""

from ..formatting import (  # noqa: F401 - re-exported: html.sig3, html.fmt_time, … are the public names
    MISSING,
    fixed3,
    fmt_bool,
    fmt_count,
    fmt_date,
    fmt_gbps,
    fmt_percent,
    fmt_ratio,
    fmt_seconds,
    fmt_time,
    fmt_value,
    missing,
    number,
    plural,
    sig3,
    span,
)
from ..html_elements import Col, esc, outcome_class, table
from .agreement import AGREEMENT_ROWS, HEATMAP_CASES, heatmap_legend, heatmap_table
from .charts import fmt_elements, sweep_svg
from .style import CSS, SCRIPT

__all__ = ["AGREEMENT_ROWS", "CSS", "HEATMAP_CASES", "SCRIPT", "Col", "esc", "fmt_elements",
           "heatmap_legend", "heatmap_table", "outcome_class", "sweep_svg", "table"]
