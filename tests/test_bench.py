"""The benchmark harness: it runs, records what the reports need, and stays out of the
verification suites. Nothing here asserts a speed: targets live in the benchmarks."""

from __future__ import annotations

import json
import math
import mmap

import pytest

from normbench import ops
from normbench.bench import harness as bench
from normbench.results import records

from .helpers import run_cli

TIMING = {"median_s", "iqr_s", "min_s", "rounds", "compile_s", "first_call_s", "bytes", "gbps",
          "roofline_frac", "threads", "sync", "faults_per_call"}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "r"
    proc = run_cli("bench", "--quick", "--adapters", "numpy,torch", "--threads", "1", "-o", str(out))
    return proc, out


def test_bench_records_timing_traffic_and_roofline(quick_run):
    proc, out = quick_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    env, rows = records.read(out / "results.jsonl")
    assert env["memory_bandwidth"]["gbps"] > 0 and env["memory_bandwidth"]["threads"] == 1
    assert env["threads"]["NORMBENCH_THREADS"] == "1" and env["threads"]["OMP_NUM_THREADS"] == "1"
    timed = [r for r in rows if r["suite"] == "speed" and r["check"] != "recompiles" and r["outcome"] == "pass"]
    assert {r["adapter"] for r in timed} == {"numpy", "torch"}
    assert {r["check"] for r in timed} == {"forward", "train", "eval", "forward_backward"}
    for r in timed:
        assert TIMING <= set(r), r["case"]
        assert 0 < r["min_s"] <= r["median_s"] and r["rounds"] >= 5
        assert math.isclose(r["gbps"], r["bytes"] / r["median_s"] / 1e9)
        assert math.isclose(r["roofline_frac"], r["gbps"] / env["memory_bandwidth"]["gbps"])
    torch_threads = {r["threads"]["torch"] for r in timed if r["adapter"] == "torch"}
    assert torch_threads == {1}
    bench_json = json.loads((out / "benchmark.json").read_text())
    assert len(bench_json["benchmarks"]) == len(timed)


def test_recompiles_are_counted(quick_run):
    _, out = quick_run
    rows = [r for r in records.read(out / "results.jsonl")[1] if r["check"] == "recompiles"]
    assert {r["adapter"] for r in rows} == {"numpy", "torch"}
    assert all(r["recompiles"] is None and "no tracing" in r["message"] for r in rows)


def test_page_faults_count_memory_mapped_afresh_each_call():
    """Fresh anonymous memory written once per call, as a freshly mapped output is."""
    size = 16 << 20
    before = bench._minor_faults()
    for _ in range(3):
        with mmap.mmap(-1, size) as fresh:
            fresh.write(b"\1" * size)
    per_call = (bench._minor_faults() - before) / 3
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
])
def test_bad_bench_options_are_named(tmp_path, args, message):
    proc = run_cli("bench", "--quick", *args, "-o", str(tmp_path / "r"))
    assert proc.returncode == 2 and message in proc.stderr
    assert not (tmp_path / "r").exists()


def test_self_check_reports_a_ratio(tmp_path):
    proc = run_cli("bench", "--self-check", "-o", str(tmp_path / "r"))
    assert proc.returncode in (0, 1), proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "self-check harness/bare median ratio" in proc.stdout
