"""The closing line's counts: checks and timings apart, counted as the report counts them."""

from __future__ import annotations

from normbench.reports import load, model
from normbench.results import counts, records
from normbench.results.kinds import Outcome


def _timing(case, repeat, outcome="pass", timed=True, check="forward", allocator="warm"):
    return {"suite": "speed", "check": check, "adapter": "numpy", "case": case, "outcome": outcome,
            "repeat": repeat, "allocator": allocator, **({"median_s": 1e-3} if timed else {})}


def test_timings_pool_their_repeats_and_are_no_checks():
    rows = [
        {"suite": "agreement", "check": "forward_train", "outcome": "pass"},
        {"suite": "process", "check": "verify_process", "outcome": "error"},
        *(_timing("a", k) for k in range(3)),  # one case, three passes: one timing
        *(_timing("a", k, allocator="system") for k in range(3)),  # the same case under another allocator
        _timing("b", 0), _timing("b", 1, outcome="error", timed=False),  # a broken benchmark
        _timing("c", 0, outcome="skip", timed=False),  # neither
        _timing("-", 0, check="recompiles"), _timing("-", 0, check="self_check"),  # time no case
    ]
    got = counts.count(rows)
    assert got.checks == {Outcome.PASS: 1, Outcome.ERROR: 1} and got.timings == 2 and got.broken_timings == 1
    assert got.line() == "checks: 1 pass, 0 fail, 0 known, 1 error, 0 skip; 2 timings (1 benchmark failed or errored)"


def test_the_count_of_real_results_is_the_reports(numpy_results, quick_bench):
    files = [numpy_results, quick_bench]
    got = counts.count(r for f in files for r in records.read(f)[1])
    res = load(files)
    checks, timings = model.headlines(res)
    assert checks.startswith(f"{sum(got.checks.values()):,} checks")
    assert ", ".join(f"{got.checks[o]:,} {o}" for o in Outcome) in checks
    assert timings.startswith(f"{got.timings:,} timings") and got.timings == len(model.speed(res))
    passed = sum(r["suite"] == "speed" and r["outcome"] == "pass" for r in records.read(quick_bench)[1])
    assert got.timings < passed  # the recompiles record (and any self-check) is no timing
