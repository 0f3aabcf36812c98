"""The property-based search for the worst input, as a pytest suite (``normbench search`` runs it).

One test per adapter and op: Hypothesis draws cases of the op (``normbench.search.strategies``),
runs the usual checks on each, climbs toward the largest error / tolerance and shrinks a failure
to a minimal case. The test writes that failure's records, and the worst known divergence and the
worst passing example it met, then fails if the search found a failure. With
``--search-replay CASE_ID`` it runs the checks on that case instead: what a failure's rerun
command does.

How long each search runs: ``--search-max-examples N`` examples, or ``--search-budget S`` seconds
per adapter (shared by its ops, ``normbench.search.budget``), or both (whichever ends first); with
neither, the normbench-ci profile's eight examples, what the project's own tests run. ``normbench
search`` passes a budget by default.

    pytest --pyargs normbench.suites.search --adapters torch --search-ops layer_norm
    pytest --pyargs normbench.suites.search --adapters torch --search-budget 120

Deliberately not named test_*.py (like speed.py): ``pytest --pyargs normbench.suites`` runs the
fixed matrices, and the search runs only when asked for.
"""

from __future__ import annotations

import shlex

import pytest

from normbench import ops
from normbench.ops.case import Case
from normbench.plugin import classify, results_path
from normbench.search import SUITE, case_ids, explore, profile
from normbench.search.budget import Budget

BUDGETS = pytest.StashKey[dict[str, Budget]]()  # per adapter, for the session


def _targets(config: pytest.Config) -> list:
    """The ops to search (--search-ops), or the cases to replay (--search-replay)."""
    replay = config.getoption("--search-replay")
    try:
        if replay:
            return [case_ids.parse(i) for i in replay.split(",") if i.strip()]
        names = config.getoption("--search-ops")
        return [ops.get(n.strip()) for n in names.split(",") if n.strip()] if names else ops.all()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "search_target" in metafunc.fixturenames:
        targets = _targets(metafunc.config)
        metafunc.parametrize("search_target", targets, ids=[t.id if isinstance(t, Case) else t.name for t in targets])


def options(config: pytest.Config, budget_s: float | None = None) -> profile.Options:
    database = config.getoption("--search-database") or results_path(config).parent / profile.DATABASE
    return profile.Options(max_examples=config.getoption("--search-max-examples"),
                           seed=config.getoption("--search-seed"), database=database, budget_s=budget_s)


def _budget(config: pytest.Config, adapter) -> Budget | None:
    """The adapter's budget, made the first time one of its searches asks (None without --search-budget)."""
    seconds = config.getoption("--search-budget")
    if seconds is None:
        return None
    budgets = config.stash.setdefault(BUDGETS, {})
    if adapter.name not in budgets:
        budgets[adapter.name] = Budget(seconds, {t.name for t in _targets(config) if t.name in adapter.ops})
    return budgets[adapter.name]


def rerun(adapter, case: Case) -> str:
    """The command that runs the checks of ``case`` again on ``adapter``."""
    return f"normbench search --replay {shlex.quote(case.id)} --adapters {shlex.quote(adapter.ref or adapter.name)}"


def test_search(norm_adapter, search_target, norm_record, request):
    if isinstance(search_target, Case):
        records = explore.run_checks(norm_adapter, search_target)
        for r in records:
            r.facts = {**r.facts, "search": {"role": "replay"}}
    else:
        if search_target.name not in norm_adapter.ops:
            pytest.skip(f"{norm_adapter.name} does not build {search_target.name}")
        budget = _budget(request.config, norm_adapter)
        opts = options(request.config, budget.share(search_target.name) if budget else None)
        found = explore.search(norm_adapter, search_target, opts, classify)
        if budget is not None:
            budget.spend(search_target.name, found.coverage.seconds)
        records = found.records(opts.described())
    for r in records:
        r.rerun = rerun(norm_adapter, Case.from_record({**r.__dict__}))
    assert all(r.suite == SUITE for r in records)
    norm_record(records)
