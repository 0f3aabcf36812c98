"""Benchmarks: every available adapter timed with pytest-benchmark, into the results file.

Deliberately not named test_*.py, so the verification suites never time anything: run it
alone with ``normbench bench`` or ``pytest --pyargs normbench.suites.speed``. Memory
bandwidth is measured once per run on this machine, with the same thread count.
"""

from __future__ import annotations

import os

import pytest

from normbench.bench import bandwidth, threads
from normbench.bench import harness as bench
from normbench.plugin import add_to_environment
from normbench.results.records import Record


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


@pytest.fixture(scope="session")
def memory_bandwidth(request) -> float:
    """GB/s of a STREAM-style copy with the benchmark's thread count, measured once."""
    if getattr(request.config.option, "numprocesses", None):
        pytest.exit("benchmarks never run under xdist (-n): drop -n for `normbench bench`", returncode=4)
    n = threads.requested() or os.cpu_count() or 1
    quick = request.config.getoption("--bench-quick")
    result = bandwidth.measure(n, megabytes=32 if quick else 256)
    add_to_environment(request.config, "memory_bandwidth", result)
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


def test_speed(norm_adapter, repeat, bench_case, timed_benchmark, memory_bandwidth, previous_repeats,
               norm_record):
    norm_record([bench.run(norm_adapter, bench_case, timed_benchmark, memory_bandwidth, repeat=repeat,
                           alive=previous_repeats)])


def test_recompiles_over_sequence_lengths(norm_adapter, norm_record, request):
    if request.config.getoption("--bench-first-repeat"):
        pytest.skip("recompiles are counted in a run's first pass")
    norm_record([bench.recompiles(norm_adapter)])


def test_harness_overhead(norm_adapter, timed_benchmark, memory_bandwidth, norm_record):
    """Self-check: the suite's median for torch LayerNorm (4096, 1024) vs a bare timeit loop of
    the same module call, measured before and after in this process. Target 1.00 ± 0.05."""
    if norm_adapter.name != "torch":
        pytest.skip("the self-check times torch")
    case = bench.BenchCase("layer_norm", "forward", (4096, 1024), group="self_check")
    prepared = bench.prepare(norm_adapter, case)
    before = bench.bare_loop(prepared)
    rec: Record = bench.run(norm_adapter, case, timed_benchmark, memory_bandwidth, prepared)
    after = bench.bare_loop(prepared)
    ratio = rec.timing["median_s"] / ((before + after) / 2)
    within = abs(ratio - 1) <= 0.05
    rec.check, rec.outcome = "harness_overhead", "pass" if within else "fail"
    rec.timing.update(bare_median_s=(before + after) / 2, overhead_ratio=ratio)
    rec.message = (f"harness/bare median ratio {ratio:.3f} (target 1.00 ± 0.05): suite "
                   f"{rec.timing['median_s'] * 1e3:.3f} ms, bare timeit {before * 1e3:.3f} / {after * 1e3:.3f} ms")
    norm_record([rec])
