"""One line per adapter at the end of ``normbench search``: how far its searches looked and the worst
they reached, so a clean result reads with its coverage, not as a bare "no failures".

Read from the records the searches wrote (``facts["search"]``, see ``normbench.search.coverage``), so
a group that ran in a process of its own is summarised like one that ran here; plain rows, not the
results model, so a child process that writes no report prints its line too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from ..results.kinds import Outcome
from ..search import ROLES, SUITE
from .formatting import fmt_seconds, number, plural, sig3


def searches(rows: Iterable[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (adapter, op), what its search covered, and whether it found a failure (``failed``)."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        info = (row.get("facts") or {}).get("search") or {}
        if row.get("suite") != SUITE or info.get("role") not in ROLES:
            continue
        seen = out.setdefault((row["adapter"], row["op"]), {**info, "failed": False})
        seen["failed"] |= info["role"] == "failure" and row["outcome"] in (Outcome.FAIL, Outcome.ERROR)
    return out


def lines(rows: Iterable[dict[str, Any]], budget_s: float | None = None) -> list[str]:
    """One line per adapter: searches, examples, distinct shapes, dtypes, time (of ``budget_s``), the
    largest error / tolerance reached and where, failures."""
    by_adapter: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for (adapter, op), info in searches(rows).items():
        by_adapter.setdefault(adapter, []).append((op, info))
    out = []
    for adapter, found in by_adapter.items():
        infos = [info for _, info in found]
        total = sum(number(i.get("seconds")) or 0.0 for i in infos)
        dtypes = sorted({d for i in infos for d in i.get("dtypes") or ()})
        reached = [(r, i) for i in infos if (r := number(i.get("reached_ratio"))) is not None and not math.isnan(r)]
        failed = [op for op, info in found if info["failed"]]
        examples, shapes = (sum(i.get(key) or 0 for i in infos) for key in ("examples", "shapes"))
        text = (f"{adapter}: {plural(len(found), 'op')}, {plural(examples, 'example')}, {plural(shapes, 'shape')}, "
                f"{', '.join(dtypes) or 'no dtype'}, {fmt_seconds(total)}"
                + (f" of {fmt_seconds(budget_s)}" if budget_s else ""))
        if reached:
            ratio, info = max(reached, key=lambda t: t[0])
            text += f"; largest error / tolerance {sig3(ratio)} ({info['reached_case']}, {info['reached_check']})"
        out.append(text + (f"; failures: {', '.join(failed)}" if failed else "; no failure"))
    return out
