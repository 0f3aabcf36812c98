"""Benchmarks: every available adapter timed with pytest-benchmark, into the results file.

Deliberately not named test_*.py, so the verification suites never time anything: run it
alone with ``normbench bench`` or ``pytest --pyargs normbench.suites.speed``. Memory
bandwidth is measured once per run on this machine, with the same thread count.
"""

from __future__ import annotations

import contextlib

import pytest

from normbench.bench import allocator, bandwidth, bare, cpu_probe, self_check, threads
from normbench.bench import harness as bench
from normbench.plugin import add_to_environment
from normbench.results.kinds import Check, Outcome


def pytest_generate_tests(metafunc):
    if "bench_case" in metafunc.fixturenames:
        config = metafunc.config
        option = config.getoption("--bench-dtypes")
        dtypes = tuple(d.strip() for d in option.split(",")) if option else None
        found = bench.cases(dtypes, quick=config.getoption("--bench-quick"))
        if config.getoption("--bench-no-sweeps"):
            found = [c for c in found if c.group != "sweep"]
        # Repeats go outermost: each pass times every case once, so the passes are spread over
        # the whole run and a transient slowdown of the machine spoils one block, not a case.
        first = config.getoption("--bench-first-repeat")
        metafunc.parametrize("repeat", range(first, first + config.getoption("--bench-repeats")),
                             ids=lambda r: f"r{r}")
        metafunc.parametrize("bench_case", found, ids=str)


@pytest.fixture(scope="session", autouse=True)
def pinned_cpus(request) -> list[int] | None:
    """Fewer threads asked for than CPUs: the process keeps that many CPUs, before any framework
    starts, since that is the only way to size XLA's pool (see threads.pin)."""
    kept = threads.pin()
    if kept is not None:
        add_to_environment(request.config, "pinned_cpus", kept)
    return kept


@pytest.fixture(scope="session")
def memory_bandwidth(request) -> float:
    """GB/s of a STREAM-style copy with the benchmark's thread count, measured once."""
    if getattr(request.config.option, "numprocesses", None):
        pytest.exit("benchmarks never run under xdist (-n): drop -n for `normbench bench`", returncode=4)
    n = threads.requested() or threads.available()
    quick = request.config.getoption("--bench-quick")
    result = bandwidth.measure(n, megabytes=32 if quick else 256)
    add_to_environment(request.config, "memory_bandwidth", result)
    # What else compare needs to tell a slower machine from slower code, and what the
    # allocator setting this process runs under is (with evidence that it took effect).
    add_to_environment(request.config, "cpu_probe", cpu_probe.measure())
    add_to_environment(request.config, "allocator", allocator.describe())
    return result["gbps"]


@pytest.fixture
def timed_benchmark(benchmark, memory_bandwidth, norm_record):
    if benchmark.disabled:
        pytest.fail("pytest-benchmark is disabled (--benchmark-disable or xdist); nothing would be timed")
    return benchmark


@pytest.fixture(scope="session")
def previous_repeats() -> dict:
    """Each case's last prepared layer and buffers, alive until its next repeat allocates."""
    return {}


@pytest.fixture(scope="session")
def case_medians() -> dict:
    """Each case's timing in this process, for the self-check."""
    return {}


def test_speed(norm_adapter, repeat, bench_case, timed_benchmark, memory_bandwidth, previous_repeats,
               case_medians, norm_record):
    rec = bench.run(norm_adapter, bench_case, timed_benchmark, memory_bandwidth, repeat=repeat,
                    alive=previous_repeats)
    if rec.outcome == Outcome.PASS:
        case_medians[(norm_adapter.name, bench_case.id)] = rec.timing
    norm_record([rec])


def test_recompiles_over_sequence_lengths(norm_adapter, norm_record, request):
    if request.config.getoption("--bench-first-repeat"):
        pytest.skip("recompiles are counted in a run's first pass")
    norm_record([bench.recompiles(norm_adapter)])


def test_self_check(norm_adapter, timed_benchmark, memory_bandwidth, previous_repeats, case_medians, norm_record):
    """After this process's cases: the harness against a plain timeit loop of the same prepared
    call, interleaved (bench.self_check), for one adapter per framework family."""
    if self_check.family_of(norm_adapter.name) is None:
        families = ", ".join(self_check.FAMILIES.values())
        pytest.skip(f"the self-check times one adapter per framework family ({families})")
    case = self_check.CASE
    key = (norm_adapter.name, case.id)
    if key not in previous_repeats:  # not timed in this process (bench --self-check): time it now, as a case
        rec = bench.run(norm_adapter, case, timed_benchmark, memory_bandwidth, alive=previous_repeats)
        norm_record([rec])
        if rec.outcome != Outcome.PASS:
            return
        case_medians[key] = rec.timing
    prepared = previous_repeats[key]
    n = threads.requested() or threads.available()
    _, iterations, _ = bench._plan(prepared.timed.call)
    with contextlib.ExitStack() as stack:
        fresh = stack.enter_context(bare.Fresh(norm_adapter.name)) if self_check.wants_fresh() else None
        before = self_check.probe_bandwidth(n)
        facts = self_check.abab(timed_benchmark, prepared.timed, iterations, fresh)
        facts.update(bandwidth_before_gbps=before, bandwidth_after_gbps=self_check.probe_bandwidth(n))
    facts.update(case_median_s=case_medians.get(key, {}).get("median_s"), allocator=allocator.active_name(),
                 family=self_check.family_of(norm_adapter.name))
    outcome, message = self_check.judge(facts)
    norm_record([bench.record(norm_adapter, case, prepared.spec, prepared.shape, check=Check.SELF_CHECK,
                              outcome=outcome, message=message, facts=facts)])
