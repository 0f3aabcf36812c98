"""The benchmark harness: it runs, records what the reports need, and stays out of the
verification suites. Nothing here asserts a speed: targets live in the benchmarks."""

from __future__ import annotations

import json
import math
import mmap

import pytest

from normbench import ops
from normbench.bench import harness as bench
from normbench.bench import self_check
from normbench.results import records

from .helpers import run_cli

TIMING = {"median_s", "iqr_s", "min_s", "rounds", "compile_s", "first_call_s", "bytes", "gbps",
          "roofline_frac", "threads", "sync", "faults_per_call"}


@pytest.mark.serial

def test_bench_records_timing_traffic_and_roofline(quick_bench_run):
    proc, out = quick_bench_run
    env, rows = records.read(out / "results.jsonl")
    failed = {r["check"] for r in rows if r["outcome"] in ("fail", "error")}
    assert proc.returncode == 0 and not failed, proc.stdout[-3000:]  # its self-check is left out
    assert env["memory_bandwidth"]["gbps"] > 0 and env["memory_bandwidth"]["threads"] == 1
    assert env["threads"]["NORMBENCH_THREADS"] == "1" and env["threads"]["OMP_NUM_THREADS"] == "1"
    timed = [r for r in rows if r["suite"] == "speed" and r["check"] not in ("recompiles", "self_check")
             and r["outcome"] == "pass"]
    assert {r["adapter"] for r in timed} == {"numpy", "torch"}
    assert env["allocator"]["name"] == "warm" and env["allocator"]["probe_faults_per_mb"] < 1
    assert env["cpu_probe"]["seconds"] > 0
    assert {r["allocator"] for r in timed} == {"warm"}
    assert {r["check"] for r in timed} == {"forward", "train", "eval", "forward_backward"}
    for r in timed:
        assert TIMING <= set(r), r["case"]
        assert 0 < r["min_s"] <= r["median_s"] and r["rounds"] >= 5
        assert math.isclose(r["gbps"], r["bytes"] / r["median_s"] / 1e9)
        assert math.isclose(r["roofline_frac"], r["gbps"] / env["memory_bandwidth"]["gbps"])
    torch_threads = {r["threads"]["torch"] for r in timed if r["adapter"] == "torch"}
    assert torch_threads == {1} and {r["threads"]["cpus"] for r in timed} == {1}
    bench_json = json.loads((out / "benchmark.json").read_text())
    assert len(bench_json["benchmarks"]) == len(timed)

@pytest.mark.serial

def test_recompiles_are_counted(quick_bench_run):
    _, out = quick_bench_run
    rows = [r for r in records.read(out / "results.jsonl")[1] if r["check"] == "recompiles"]
    assert {r["adapter"] for r in rows} == {"numpy", "torch"}
    assert all(r["recompiles"] is None and "no tracing" in r["message"] for r in rows)


def test_page_faults_count_memory_mapped_afresh_each_call():
    """Fresh anonymous memory written once per call, as a freshly mapped output is."""
    size = 16 << 20
    before = bench.minor_faults()
    for _ in range(3):
        with mmap.mmap(-1, size) as fresh:
            fresh.write(b"\1" * size)
    per_call = (bench.minor_faults() - before) / 3
    assert per_call * bench.PAGE >= 0.9 * size
    assert bench.faulting(per_call, size) and not bench.faulting(per_call / 100, size)
    assert not bench.faulting(None, size)


def test_bytes_moved_is_the_minimum_traffic_model():
    ln = bench.BenchCase("layer_norm", "forward", (2048, 1024))
    assert bench.bytes_moved(ln) == (2 * 2048 * 1024 + 2 * 1024) * 4
    bwd = bench.BenchCase("layer_norm", "forward_backward", (2048, 1024), "float16")
    assert bench.bytes_moved(bwd) == (4 * 2048 * 1024 + 4 * 1024) * 2
    bn = bench.BenchCase("batch_norm", "train", (16, 64, 56, 56))
    assert bench.bytes_moved(bn) == (2 * 16 * 64 * 56 * 56 + 6 * 64) * 4
    rms = bench.BenchCase("rms_norm", "forward_backward", (4096, 1024), "bfloat16")
    assert bench.bytes_moved(rms) == (4 * 4096 * 1024 + 2 * 1024) * 2  # γ and dγ only: no β
    gn = bench.BenchCase("group_norm", "forward", (8, 320, 64, 64), options=(("groups", 32),))
    assert bench.bytes_moved(gn) == (2 * 8 * 320 * 64 * 64 + 2 * 320) * 4


def test_default_cases_cover_the_issue_matrix():
    cases = bench.cases()
    hidden = {c.shape[1] for c in cases if c.op == "layer_norm" and c.group == "default"}
    assert hidden == {768, 1024, 4096}
    for op in ("layer_norm", "batch_norm"):
        sweep = sorted(int(__import__("numpy").prod(c.shape)) for c in cases if c.op == op and c.group == "sweep")
        assert len(sweep) >= 4 and all(b / a == 4 for a, b in zip(sweep, sweep[1:], strict=False))
    # LLM RMSNorm: 4096 tokens, hidden 1024 to 16384, float32 and bfloat16; U-Net GroupNorm/InstanceNorm
    rms = [c for c in cases if c.op == "rms_norm"]
    assert {c.shape[1] for c in rms} == {1024, 4096, 16384} and {c.shape[0] for c in rms} == {4096}
    assert {c.dtype for c in rms if c.group == "default"} == {"float32", "bfloat16"}
    for op in ("group_norm", "instance_norm"):
        assert {(c.shape, c.mode) for c in cases if c.op == op} == {
            ((8, 320, 64, 64), m) for m in ("forward", "forward_backward")}
    assert {c.id for c in cases if c.op == "group_norm"} >= {"group_norm-forward-8x320x64x64-float32-groups32-default"}
    # every op is timed, and an explicit dtype list replaces each op's own
    assert {c.op for c in cases} == set(ops.names())
    assert {c.dtype for c in bench.cases(("float16",))} == {"float16"}


def test_verification_suites_do_not_collect_benchmarks(tmp_path):
    from .helpers import run_python

    code = "import pytest, sys; sys.exit(pytest.main(['--collect-only', '-q', '--pyargs', 'normbench.suites']))"
    proc = run_python(code, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:]
    assert "speed.py" not in proc.stdout and "test_agreement.py" in proc.stdout


@pytest.mark.parametrize(("args", "message"), [
    (["--threads", "0"], "--threads"),
    (["--threads", "many"], "--threads"),
    (["--dtypes", "float8"], "unknown dtype 'float8'"),
    (["--adapters", "nope"], "unknown adapter 'nope'"),
    (["--in-process", "--adapters", "torch@/usr/bin/python3"], "unknown adapter 'torch@/usr/bin/python3'"),
    (["--adapters", "torch@/nowhere/bin/python"], "/nowhere/bin/python is not an executable Python"),
    (["--adapters", "nope@/usr/bin/python3"], "unknown adapter 'nope'"),
    (["--head-to-head", "--allocators", "system,warm"], "--head-to-head times under one allocator"),
    (["--head-to-head", "--in-process"], "give --in-process or --head-to-head (the default), not both"),
    (["--repeats", "2"], "--repeats counts in-process passes (--in-process); head to head, give --processes"),
    (["--", "-k", "layer"], "head to head runs no pytest: pytest arguments need --in-process"),
    # it limited nothing there: a hanging adapter hung for good
    (["--timeout", "5"], "--timeout 5: only --allocators and --self-check start processes it limits"),
    (["--in-process", "--timeout", "5"], "--timeout 5: only --allocators and --self-check"),
])
def test_bad_bench_options_are_named(tmp_path, args, message):
    proc = run_cli("bench", "--quick", *args, "-o", str(tmp_path / "r"))
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "r").exists()

@pytest.fixture(scope="module")
def self_checked(tmp_path_factory):
    """A quick in-process bench with its self-check: numpy's and torch's RMSNorm cases, then torch's check."""
    out = tmp_path_factory.mktemp("self-checked") / "r"
    proc = run_cli("bench", "--in-process", "--quick", "--adapters", "numpy,torch", "--threads", "1", "-o", str(out),
                   "--", "-k", "rms_norm or test_self_check")
    rows = records.read(out / "results.jsonl")[1]
    assert proc.returncode == (1 if any(r["outcome"] == "fail" for r in rows) else 0), proc.stdout[-3000:]
    assert {r["check"] for r in rows if r["outcome"] in ("fail", "error")} <= {"self_check"}  # the machine's load
    return out


@pytest.mark.serial

def test_the_self_check_runs_in_the_benchmark_process_after_its_cases(self_checked):
    """Interleaved with the harness on the same prepared call, in the state the cases left; one
    adapter per framework family (torch here; numpy is not one)."""
    rows = records.read(self_checked / "results.jsonl")[1]
    checks = [r for r in rows if r["check"] == "self_check"]
    assert [r["adapter"] for r in checks] == ["torch"]
    assert rows.index(checks[0]) > max(i for i, r in enumerate(rows) if r["adapter"] == "torch"
                                       and r["check"] == "forward_backward")
    facts = checks[0]["facts"]
    assert facts["blocks"] >= 12 and facts["harness_median_s"] > 0 and facts["bare_median_s"] > 0
    assert facts["ratio_ci"][0] <= facts["ratio"] <= facts["ratio_ci"][1]
    assert "fresh_ratio" not in facts  # a fresh process is interleaved only by bench --self-check
    assert facts["case_median_s"] > 0 and facts["allocator"] == "warm" and facts["bandwidth_after_gbps"] > 0
    assert checks[0]["outcome"] in ("pass", "fail", "skip") and "harness/bare (ABAB" in checks[0]["message"]


CHECKED = {"ratio": 1.01, "ratio_ci": [0.99, 1.03], "harness_median_s": 1.01e-3, "bare_median_s": 1e-3,
           "case_median_s": 1.3e-3, "fresh_bare_median_s": 0.99e-3, "fresh_ratio": 1.02, "fresh_ratio_ci": [1.0, 1.04],
           "other_load": 0.02, "bandwidth_before_gbps": 30.0, "bandwidth_after_gbps": 29.0}


@pytest.mark.parametrize(("change", "outcome", "says"), [
    ({}, "pass", "harness/bare (ABAB, this process) 1.010 [0.990–1.030]"),
    ({"ratio": 1.07, "ratio_ci": [1.06, 1.08]}, "fail", "harness/bare (ABAB, this process) 1.070"),
    ({"ratio": 1.07, "ratio_ci": [1.03, 1.10]}, "skip", "its interval reaches back in"),
    ({"fresh_ratio": 1.275, "fresh_ratio_ci": [1.2, 1.3]}, "fail", "harness/bare (interleaved, fresh process) 1.275"),
    ({"case_median_s": 2e-3}, "pass", "case median (timed earlier)/bare 2.000"),  # shown, not judged
    ({"ratio": 1.7, "ratio_ci": [1.6, 1.8], "other_load": 1.2}, "skip",
     "busy (other processes kept 1.2 cores busy during the check)"),
    ({"ratio": 0.3, "ratio_ci": [0.2, 0.4], "bandwidth_after_gbps": 12.0}, "skip",
     "memory bandwidth fell from 30.0 to 12.0 GB/s"),
    ({"ratio": 1.01, "other_load": 1.5}, "pass", "1.010"),  # agreement under load is still agreement
])
def test_a_self_check_on_a_busy_machine_says_so(change, outcome, says):
    got, message = self_check.judge({**CHECKED, **change})
    assert got == outcome and says in message, message
    assert ("not judged" in message) == (outcome == "skip")

@pytest.mark.serial

def test_self_check_compares_with_a_fresh_process(tmp_path):
    # one family (each takes ~17 s: 2 s a side, interleaved with pauses); numpy is no family's
    proc = run_cli("bench", "--self-check", "--adapters", "torch,numpy", "-o", str(tmp_path / "r"))
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()  # one line per family, the processes' own output in logs
    assert [line.split(" ")[1] for line in lines] == ["torch"]
    assert all("(interleaved, fresh process)" in line and "(ABAB, this process)" in line for line in lines), lines

@pytest.mark.serial

def test_reports_show_each_processs_self_check(self_checked):
    from normbench.reports import markdown, model
    from normbench.reports.html import page

    res = model.load([self_checked / "results.jsonl"])
    found = model.self_checks(res)
    assert list(found["adapter"]) == ["torch"] and found["ratio"].between(0.2, 5).all()
    md = markdown.render(res)
    assert "### Self-check" in md and "| torch |" in md.split("### Self-check")[1]
    assert 'id="self-check"' in page.render(res)
    # the self-check times no case of its own: the forward case stays one timing
    timed = model.timed_rows(res)
    assert not (timed["check"] == "self_check").any()
