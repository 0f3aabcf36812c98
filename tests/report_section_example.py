"""A throwaway report section, as a contributor would write one: its table, its HTML, its Markdown,
and the one line that registers it (``SECTION``, added to ``reports.sections.SECTIONS``)."""

from __future__ import annotations

import pandas as pd

from normbench.reports.loading import Results
from normbench.reports.sections import Section
from normbench.results.kinds import Check

CHECK = Check.SCALE_SHIFT_INVARIANCE  # no other record of the test carries it (a new check is a Check member first)


def table(res: Results) -> pd.DataFrame:
    c = res.checks
    return c[c["check"] == CHECK][["adapter", "message"]].reset_index(drop=True)


def present(res: Results) -> bool:
    return bool(len(table(res)))


def html(res: Results) -> str:
    return "".join(f"<p>throwaway-html: {m}</p>" for m in table(res)["message"])


def markdown(res: Results) -> list[str]:
    return ["### Throwaway", "", *(f"throwaway-md: {m}" for m in table(res)["message"]), ""]


SECTION = Section("throwaway", "Throwaway section", present, table, html, markdown)
