"""One search: Hypothesis draws cases of one op for one adapter, each runs the usual checks.

Each example runs ``normbench.verify.checks`` on the drawn case: the training-mode forward pass,
the gradients where the adapter has them, the running statistics where the op keeps them. Its
records are classified as the suites classify them (a known divergence is ``known``), and
``hypothesis.target`` gets the largest error / tolerance among its passing and failing records,
so the search climbs toward the worst input. A failing or erroring record fails the example and
Hypothesis shrinks it to a minimal case; the records of that shrunk case are what the search
reports, with the worst passing example seen (and the worst known divergence) beside it.

Shrinking has a time budget (``Options.shrink_seconds``): past it, a candidate not run before
counts as passing, so the shrinker stops improving and Hypothesis reports the smallest failure
found so far, which reruns from the cache of executed cases (frameworks are deterministic here;
a case drawn twice is run once).

A search with a time budget (``Options.budget_s``) is one Hypothesis run after another, each of
``profile.ROUND_EXAMPLES`` under a seed of its own, and stops itself: once its seconds are spent
(and at least one case ran), the next example raises ``BudgetSpent``, a ``BaseException``
Hypothesis lets through untouched (as it does Ctrl-C: no shrinking, no report), which the search
catches. A failure found first is shrunk to its end (the shrink budget bounds that), so a budget
never cuts a found bug short.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import hypothesis
from hypothesis import given, reject, target
from hypothesis import strategies as st

from ..adapters.base import Adapter
from ..ops.base import Op
from ..ops.case import Case
from ..results.kinds import Outcome
from ..results.records import Record
from ..verify import checks
from . import SUITE, profile, strategies
from .coverage import Coverage

LARGEST_TARGET = 1e300  # target() needs a finite number; an overflow is a failure anyway


def run_checks(adapter: Adapter, case: Case) -> list[Record]:
    """The checks of one example: forward (training), gradients, running statistics."""
    out = checks.forward(adapter, case, training=True, suite=SUITE)
    if "grad" in adapter.features:
        out += checks.gradients(adapter, case, suite=SUITE)
    if case.spec.has_running_stats and "running_stats" in adapter.features:
        out += checks.running_stats(adapter, case, suite=SUITE)
    return out


def ratio(rec: Record) -> float | None:
    """max |error| / tolerance of a compared record (inf for a non-finite error); None if not compared."""
    err, tol = rec.max_abs_err, rec.tolerance
    if err is None or tol is None:
        return None
    err, tol = float(err), float(tol)
    if math.isnan(err):
        return math.inf
    if tol > 0:
        return err / tol
    return 0.0 if err == 0 else math.inf


def _worst(records: list[Record]) -> tuple[float, Record] | None:
    scored = [(r, rec) for rec in records if (r := ratio(rec)) is not None]
    return max(scored, key=lambda t: t[0]) if scored else None


class BudgetSpent(BaseException):
    """Raised by an example once its search's time is up: through Hypothesis, to ``search``."""


class SearchFailure(Exception):
    """An example whose records failed; Hypothesis shrinks it, and the last one raised is minimal."""

    def __init__(self, case: Case, records: list[Record]) -> None:
        super().__init__(f"{case}: " + "; ".join(f"{r.check} {r.outcome}" for r in records
                                                  if r.outcome in (Outcome.FAIL, Outcome.ERROR)))
        self.case, self.records = case, records


@dataclass
class Found:
    """What one search found: the shrunk failure's records (as the checks wrote them, unclassified),
    and the worst passing and known records among the examples that did not fail, and what the search
    covered."""

    adapter: str
    op: str
    coverage: Coverage = field(default_factory=Coverage)
    failure: list[Record] = field(default_factory=list)
    worst_pass: tuple[float, Record] | None = None
    worst_known: tuple[float, Record] | None = None
    flaky: str | None = None
    saved: int = 0  # examples the database held for this search before it started (past failures)
    skipped: Record | None = None  # one example's skip, written only if nothing else ran

    def offer(self, role: Outcome, judged: list[Record], raw: list[Record]) -> None:
        """Keep the example if its worst ``role`` record (pass or known) beats the one kept."""
        mine = [(r, j) for r, j in zip(raw, judged, strict=True) if j.outcome == role]
        best = _worst([j for _, j in mine])
        slot = f"worst_{role}"
        if best and (getattr(self, slot) is None or best[0] > getattr(self, slot)[0]):
            setattr(self, slot, (best[0], next(r for r, j in mine if j is best[1])))

    def records(self, facts: dict) -> list[Record]:
        """The records a search writes: the failure's, then its worst known and passing examples, each
        with ``facts["search"]`` saying which it is (``role``) and how the search ran."""
        out = []

        def mark(rec: Record, role: str) -> Record:
            info = {**facts, "role": role, **self.coverage.facts(), "saved_examples": self.saved,
                    **({"flaky": self.flaky} if self.flaky else {})}
            return dataclasses.replace(rec, facts={**rec.facts, "search": info})

        out += [mark(r, "failure") for r in self.failure]
        out += [mark(kept[1], role) for role, kept in (("worst_known", self.worst_known),
                                                        ("worst_pass", self.worst_pass)) if kept]
        return out or ([mark(self.skipped, "skipped")] if self.skipped else [])


def search(adapter: Adapter, op: Op, options: profile.Options,
           classify: Callable[[Record], None]) -> Found:
    """Search ``op`` on ``adapter``; ``classify`` turns a record a known divergence explains into
    ``known`` in place (the plugin's rule), so only unexplained failures fail an example. With a
    budget, one Hypothesis run after another (``Options.rounds``) until the budget is spent."""
    found, started = Found(adapter.name, op.name), time.monotonic()
    seen: dict[str, list[Record]] = {}  # case id -> its records: a case drawn twice runs once
    first_failure: list[float] = []

    def spent() -> bool:
        return (options.budget_s is not None and not first_failure and found.coverage.examples > 0
                and time.monotonic() - started >= options.budget_s)

    def example(case: Case) -> None:
        if spent():
            raise BudgetSpent
        if case.id in seen:
            raw = seen[case.id]
        elif first_failure and time.monotonic() - first_failure[0] > options.shrink_seconds:
            return  # shrinking is over budget: a new candidate counts as not reproducing the failure
        else:
            raw = seen[case.id] = run_checks(adapter, case)
            if any(r.outcome != Outcome.SKIP for r in raw):
                found.coverage.ran(case.shape, case.dtype)
        if all(r.outcome == Outcome.SKIP for r in raw):  # a combination the adapter refuses: not an example
            found.skipped = found.skipped or raw[0]
            reject()
        judged = [copy.copy(r) for r in raw]
        for rec in judged:
            classify(rec)
        worst = _worst([r for r in judged if r.outcome in (Outcome.PASS, Outcome.FAIL)])
        if worst is not None and not math.isnan(worst[0]):
            found.coverage.climbed(worst[0], case.id, str(worst[1].check))
            target(min(worst[0], LARGEST_TARGET), label="error / tolerance")
        if any(r.outcome in (Outcome.FAIL, Outcome.ERROR) for r in judged):
            first_failure[:] = first_failure or [time.monotonic()]
            raise SearchFailure(case, raw)
        found.offer(Outcome.PASS, judged, raw)
        found.offer(Outcome.KNOWN, judged, raw)

    key = profile.database_key(adapter.name, op.name)
    found.saved = options.saved(key)
    for round_ in itertools.count():
        found.coverage.ended = _run(example, key, strategies.cases(adapter, op), options,
                                    options.seed_for(adapter.name, op.name, round_), found)
        if found.coverage.ended != "examples" or not options.rounds:
            break
    found.coverage.seconds = time.monotonic() - started
    return found


def _run(body: Callable[[Case], None], key: bytes, cases: st.SearchStrategy[Case], options: profile.Options, seed: int,
         found: Found) -> str:
    """One Hypothesis run of ``body`` over ``cases`` under ``seed``; why it ended (``coverage.ENDED``)."""
    test = options.settings()(given(cases)(body))
    test._hypothesis_internal_database_key = key  # type: ignore[attr-defined]
    test = hypothesis.seed(seed)(test)
    # @seed turns the database off (for exact reproduction); a search replays past failures first, then
    # draws from the seed, so it keeps its database.
    test._hypothesis_internal_use_settings = options.settings()  # type: ignore[attr-defined]
    try:
        test()
    except BudgetSpent:
        return "budget"
    except hypothesis.errors.Unsatisfiable:  # every case drawn was one the adapter refuses
        return "refused"
    except SearchFailure as exc:
        found.failure = [r for r in exc.records if r.outcome in (Outcome.FAIL, Outcome.ERROR)]
        return "failure"
    except hypothesis.errors.FlakyFailure as group:  # failed, then passed when replayed
        inner = [e for e in group.exceptions if isinstance(e, SearchFailure)]
        if not inner:
            raise
        found.flaky = str(group).splitlines()[0]
        found.failure = [r for r in inner[0].records if r.outcome in (Outcome.FAIL, Outcome.ERROR)]
        return "failure"
    return "examples"
