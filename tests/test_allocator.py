"""The allocator setting: named, checked before anything runs, applied from process start,
recorded, and visible in each framework's page faults per call."""

from __future__ import annotations

import json

import pytest

from normbench.bench import allocator
from normbench.bench import harness as bench
from normbench.ops.case import BenchCase
from normbench.running import job, runner

from .helpers import one_line_error, run_cli, run_python


def usable(name: str) -> allocator.Allocator:
    try:
        return allocator.resolve(name)
    except allocator.AllocatorError as exc:
        pytest.skip(str(exc))


@pytest.mark.parametrize("command", ["bench", "run"])
def test_an_unknown_allocator_lists_the_known_ones(tmp_path, command):
    proc = run_cli(command, "--allocator", "tcmaloc", "-o", str(tmp_path / "r"))
    one_line_error(proc, "unknown allocator 'tcmaloc'", "warm, system, tcmalloc, jemalloc")
    assert not (tmp_path / "r").exists()


def test_a_library_path_that_does_not_exist_is_named(tmp_path):
    proc = run_cli("bench", "--allocators", f"warm,{tmp_path}/libnothing.so", "-o", str(tmp_path / "r"))
    one_line_error(proc, f"allocator library {tmp_path}/libnothing.so does not exist")
    assert not (tmp_path / "r").exists()


def test_a_missing_library_names_the_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(allocator, "LIBDIRS", (str(tmp_path),))  # a machine without them
    for name, package in (("tcmalloc", "libtcmalloc-minimal4"), ("jemalloc", "libjemalloc2")):
        expected = f"{name} is not installed here .* apt-get install {package}"
        with pytest.raises(allocator.AllocatorError, match=expected):
            allocator.resolve(name)


def test_a_process_gets_the_settings_and_none_of_its_parents():
    parent = {"PATH": "/bin", "LD_PRELOAD": "/x/libother.so", "MALLOC_CONF": "narenas:1", "GLIBC_TUNABLES": "a=1"}
    env = allocator.process_env(allocator.resolve("warm"), parent)
    assert env == {"PATH": "/bin", "GLIBC_TUNABLES": allocator.WARM_TUNABLES, allocator.ACTIVE: "warm"}
    assert allocator.process_env(allocator.resolve("system"), parent) == {"PATH": "/bin", allocator.ACTIVE: "system"}


def test_run_starts_its_benchmark_processes_under_the_allocator(tmp_path):
    from normbench.adapters import registry

    opts = runner.Options(suites=("speed",), allocator=allocator.resolve("system"))
    jobs = runner.jobs(job.plan(registry.select("numpy")), tmp_path, opts)
    assert jobs and all(j.command[j.command.index("--allocator") + 1] == "system" for j in jobs)
    assert runner.Options().allocator.name == allocator.DEFAULT == "warm"


DESCRIBE = "import json; from normbench.bench import allocator; print(json.dumps(allocator.describe()))"


@pytest.mark.parametrize("name", allocator.names())
def test_each_setting_takes_effect_from_process_start(name):
    """The record says which setting ran, shows the preloaded library mapped in, and the fault
    probe (a 16 MiB block malloc'd, written and freed ten times) shows whether freed memory stays
    mapped: it does under every setting but ``system``, where glibc unmaps it every time."""
    chosen = usable(name)
    proc = run_python(DESCRIBE, env=allocator.process_env(chosen))
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["name"] == name and seen["settings"] == chosen.env
    if chosen.preload:
        assert seen["preload_mapped"] is True
    if name == "system":
        # mapped afresh and faulted in again every time (in 2 MiB pieces where the kernel backs
        # the mapping with transparent huge pages, so fewer than 256 faults per MiB)
        assert seen["probe_faults_per_mb"] > 1
    else:
        assert seen["probe_faults_per_mb"] < 1


STEADY = """
import json, sys
from normbench.bench import bare
from normbench.ops.case import BenchCase
cases = [BenchCase(op, mode, tuple(shape)) for op, mode, shape in json.loads(sys.argv[2])]
print(json.dumps([bare.measure(sys.argv[1], c, rounds=10) for c in cases]))
"""

LN_FB = ("layer_norm", "forward_backward", (1024, 4096))
LN_F = ("layer_norm", "forward", (1024, 4096))
RMS_BIG = ("rms_norm", "forward", (4096, 16384))  # a 256 MiB output


def steady_faults(adapter: str, cases, name: str) -> list[tuple[BenchCase, float]]:
    proc = run_python(STEADY, env={**allocator.process_env(usable(name)), "NORMBENCH_THREADS": "2"},
                      args=[adapter, json.dumps(cases)])
    if proc.returncode and "not installed" in proc.stderr:
        pytest.skip(proc.stderr.strip().splitlines()[-1])
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [(BenchCase(op, mode, tuple(shape)), r["faults_per_call"])
            for (op, mode, shape), r in zip(cases, json.loads(proc.stdout), strict=True)]


@pytest.mark.parametrize(("adapter", "cases"), [
    ("torch", [LN_FB, RMS_BIG]),
    ("flax.linen", [LN_FB, RMS_BIG]),
    ("keras[tensorflow]", [LN_FB]),
    ("onnxruntime", [LN_F]),
])
def test_no_framework_faults_its_outputs_in_per_call_under_the_default(adapter, cases):
    """In steady state under ``warm`` no call maps fresh pages for a tenth of what it moves
    (bench.faulting). flax.linen faulted ~5,000 pages in per 1024 × 4096 forward+backward under
    the glibc tunables alone, and 65,537 per 4096 × 16384 RMSNorm until arena_max=1."""
    for case, faults in steady_faults(adapter, cases, allocator.DEFAULT):
        assert not bench.faulting(faults, bench.bytes_moved(case)), (case.id, faults)


def test_the_system_allocator_faults_flax_outputs_in_on_every_call():
    """What the default setting is for: untouched glibc maps and faults in XLA's buffers on every
    call (the issue measured 10–12k faults per forward+backward call)."""
    [(case, faults)] = steady_faults("flax.linen", [LN_FB], "system")
    assert bench.faulting(faults, bench.bytes_moved(case)), faults


def test_bench_refuses_two_allocator_options(tmp_path):
    proc = run_cli("bench", "--allocator", "warm", "--allocators", "system,warm", "-o", str(tmp_path / "r"))
    one_line_error(proc, "give --allocator or --allocators, not both")

@pytest.mark.serial

def test_allocators_time_the_same_cases_side_by_side(tmp_path):
    out = tmp_path / "r"
    proc = run_cli("bench", "--in-process", "--quick", "--adapters", "numpy", "--threads", "1", "--repeats", "1",
                   "--allocators", "system,warm", "-o", str(out), timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    seen = {}
    for name in ("system", "warm"):
        results = out / name / "r0" / "numpy" / "results.jsonl"  # one process per allocator, pass and group
        lines = [json.loads(line) for line in results.read_text().splitlines()]
        env, timed = lines[0], [r for r in lines if r.get("suite") == "speed" and "median_s" in r]
        assert env["allocator"]["name"] == name and {r["allocator"] for r in timed} == {name}
        seen[name] = {r["case"] for r in timed}
    assert seen["system"] == seen["warm"] and seen["warm"]
    assert "Allocator" in (out / "report.md").read_text()
