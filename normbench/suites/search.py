"""The property-based search for the worst input, as a pytest suite (``normbench search`` runs it).

One test per adapter and op: Hypothesis draws cases of the op (``normbench.search.strategies``),
runs the usual checks on each, climbs toward the largest error / tolerance and shrinks a failure
to a minimal case. The test writes that failure's records, and the worst known divergence and the
worst passing example it met, then fails if the search found a failure. With
``--search-replay CASE_ID`` it runs the checks on that case instead: what a failure's rerun
command does.

    pytest --pyargs normbench.suites.search --adapters torch --search-ops layer_norm

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


def options(config: pytest.Config) -> profile.Options:
    database = config.getoption("--search-database") or results_path(config).parent / profile.DATABASE
    examples = config.getoption("--search-max-examples") or profile.DEFAULT_MAX_EXAMPLES
    return profile.Options(max_examples=examples, seed=config.getoption("--search-seed"), database=database)


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
        opts = options(request.config)
        found = explore.search(norm_adapter, search_target, opts, classify)
        records = found.records({"seed": opts.seed, "max_examples": opts.max_examples,
                                 "database": str(opts.database)})
    for r in records:
        r.rerun = rerun(norm_adapter, Case.from_record({**r.__dict__}))
    assert all(r.suite == SUITE for r in records)
    norm_record(records)
