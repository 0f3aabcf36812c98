"""The verification suites under pytest-xdist: workers write parts, the controller merges them
into one results file and judges the strict known divergences over every worker's records."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from normbench.results import records

from .helpers import ROOT

# 2 tests: one per worker under -n 2
FLAX_SLICE = "test_forward_train and offset1e4 and float32 and (layer_norm or (batch_norm and 4x6x10))"
# two records onnx-group-norm-function covers, for an adapter that declares ONNX semantics
ONNX_SLICE = "test_forward_train and offset1e4 and group_norm and channels_first and (float32 or float64)"
# two float32 records (both layouts) that onnx-group-norm-function alone covers: in ONNX_SLICE the float64 record is
# also onnx-float32-attributes', stale where the worker that does not drift happens to take it (1 run in 3 or 5)
ONNX_FLOAT32_SLICE = "test_forward_train and offset1e4 and group_norm and float32"


def run_suites(results: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """The verification suites in a fresh pytest process, as `normbench` starts them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))}
    env["PLANTED_PART"] = str(records.part_path(results, "gw1"))
    return subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "normbench.suites", "--results", str(results),
         "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd, capture_output=True, text=True, timeout=300, env=env,
    )


def key(row: dict) -> tuple:
    return row["suite"], row["case"], row["check"], row["adapter"]


def environment_lines(path: Path) -> int:
    return sum(json.loads(line)["type"] == "environment" for line in path.read_text().splitlines())


@pytest.fixture(scope="module")
def numpy_runs(tmp_path_factory):
    """The numpy adapter through every suite, once in one process and once with -n 2."""
    out = tmp_path_factory.mktemp("xdist")
    single = run_suites(out / "single" / "results.jsonl", "--adapters", "numpy")
    spread = run_suites(out / "spread" / "results.jsonl", "--adapters", "numpy", "-n", "2")
    return (single, out / "single" / "results.jsonl"), (spread, out / "spread" / "results.jsonl")


def test_workers_merge_into_one_results_file(numpy_runs):
    (single, one), (spread, merged) = numpy_runs
    assert single.returncode == 0, single.stdout[-3000:] + single.stderr[-3000:]
    assert spread.returncode == 0, spread.stdout[-3000:] + spread.stderr[-3000:]
    assert "bringing up nodes" in spread.stdout  # it did run on workers
    env, rows = records.read(merged)
    _, expected = records.read(one)
    assert environment_lines(merged) == 1 and merged.read_text().splitlines()[0].startswith('{"type": "environment"')
    assert env["adapters"]["numpy"]["installed"] is True and env["versions"]["numpy"]
    assert Counter(map(key, rows)) == Counter(map(key, expected)) and rows
    assert f"normbench: {len(rows)} records written to {merged}" in spread.stdout
    assert sorted(p.name for p in merged.parent.iterdir()) == ["results.jsonl"]  # no parts left


def test_without_xdist_records_go_straight_to_the_results_file(tmp_path):
    """-n 0 and -p no:xdist are the plain one-process run: no parts, the file written as it goes."""
    for args in (["-n", "0"], ["-p", "no:xdist"]):
        results = tmp_path / args[-1].replace(":", "-") / "results.jsonl"
        proc = run_suites(results, "--adapters", "numpy", "-k", FLAX_SLICE, *args)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert len(records.read(results)[1]) == 2
        assert sorted(p.name for p in results.parent.iterdir()) == ["results.jsonl"]


PLANTED = textwrap.dedent("""
    import os

    from normbench.adapters.numpy.layers import NumpyAdapter, NumpyLayer

    WORKER = os.environ.get("PYTEST_XDIST_WORKER", "main")


    class DriftOnGw1(NumpyLayer):
        def forward(self, x, training, mask=None):
            y = super().forward(x, training, mask)
            return y + 1 if WORKER == "gw1" else y


    class OnnxOnlyOnGw1(NumpyAdapter):
        '''Declares ONNX semantics; diverges on worker gw1 only, so each worker alone would judge
        the known divergence differently: gw0 exercises it without reproducing it.'''
        name = "onnx-only-on-gw1"
        semantics = ("onnx",)
        builders = dict.fromkeys(NumpyAdapter.builders, DriftOnGw1)

        def version(self):
            return f"{super().version()} on {WORKER}"


    class FixedOnnx(NumpyAdapter):
        '''Declares ONNX semantics but computes correctly: the known divergence no longer reproduces.'''
        name = "fixed-onnx"
        semantics = ("onnx",)


    class CrashOnGw1(NumpyAdapter):
        '''Correct, but worker gw1 is killed in its second test, halfway through writing a line.'''
        name = "crashy"
        first = None

        def version(self):
            return f"{super().version()} on {WORKER}"

        def build(self, *args, **kwargs):
            test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
            if WORKER == "gw1":
                CrashOnGw1.first = CrashOnGw1.first or test
                if test != CrashOnGw1.first:
                    with open(os.environ["PLANTED_PART"], "a") as fh:
                        fh.write('{"type": "check", "suite": "agree')
                    os._exit(3)
            return super().build(*args, **kwargs)
""")


@pytest.fixture
def planted(tmp_path) -> Path:
    (tmp_path / "planted.py").write_text(PLANTED)
    return tmp_path


def test_a_divergence_reproduced_on_another_worker_is_not_stale(planted):
    results = planted / "r" / "results.jsonl"
    proc = run_suites(results, "--adapters", "planted:OnnxOnlyOnGw1", "-k", ONNX_FLOAT32_SLICE, "-n", "2",
                      cwd=planted)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "XPASS(strict)" not in proc.stdout and "1 xfailed" in proc.stdout
    _, rows = records.read(results)
    by_worker = {r["framework_version"].rsplit(" ", 1)[-1]: r["outcome"] for r in rows}
    assert by_worker == {"gw0": "pass", "gw1": "known"}  # exercised on one, reproduced on the other
    assert not any(r["check"] == "known_divergence" for r in rows)


def test_a_divergence_no_worker_reproduces_fails_the_run(planted):
    results = planted / "r" / "results.jsonl"
    proc = run_suites(results, "--adapters", "planted:FixedOnnx", "-k", ONNX_SLICE, "-n", "2", cwd=planted)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.count("XPASS(strict) known divergence onnx-group-norm-function did not reproduce") == 1
    _, rows = records.read(results)
    stale = [r for r in rows if r["check"] == "known_divergence"]
    # the float64 record is also one of onnx-float32-attributes', which does not reproduce either
    assert len(stale) == 2 and {r["outcome"] for r in stale} == {"fail"} and rows[-2:] == stale
    assert proc.stdout.count("XPASS(strict) known divergence onnx-float32-attributes did not reproduce") == 1
    assert sorted(p.name for p in results.parent.iterdir()) == ["results.jsonl"]


def test_a_crashed_workers_records_are_merged_and_its_cut_line_kept(planted):
    results = planted / "r" / "results.jsonl"
    proc = run_suites(results, "--adapters", "planted:CrashOnGw1", "-k", "test_forward_train and float32",
                      "-n", "2", cwd=planted)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "crashed" in proc.stdout and "unreadable line(s) of results.gw1.jsonl kept in" in proc.stdout
    _, rows = records.read(results)
    workers = Counter(r["framework_version"].rsplit(" ", 1)[-1] for r in rows)
    assert workers["gw1"] >= 1 and workers["gw0"] >= 1  # what gw1 wrote before it died is kept
    assert {r["outcome"] for r in rows} == {"pass"}
    assert sorted(p.name for p in results.parent.iterdir()) == ["results.gw1.jsonl.partial", "results.jsonl"]
    assert (results.parent / "results.gw1.jsonl.partial").read_text() == '{"type": "check", "suite": "agree\n'


def test_a_record_read_back_is_the_record_written(tmp_path):
    """The controller rebuilds records from the parts' lines to judge known divergences."""
    rec = records.Record("speed", "forward", "layer_norm", "numpy", "2.0", "float32", [4, 8], None, "normal",
                         {"eps": 1e-5}, "pass", 7, "case-1", max_abs_err=1e-7, facts={"n": 1},
                         timing={"median_s": 0.5, "rounds": 3})
    file = records.ResultsFile(tmp_path / "r.jsonl")
    file.add(rec)
    file.close()
    _, (row,) = records.read(tmp_path / "r.jsonl")
    assert records.Record.from_row(row) == rec


@pytest.mark.parametrize("earlier", ["results.jsonl", "results.gw0.jsonl"])
def test_nothing_earlier_is_overwritten(tmp_path, earlier):
    """An earlier results file, or a part an interrupted -n run left, stops the run at once."""
    (tmp_path / earlier).write_text("mine\n")
    proc = run_suites(tmp_path / "results.jsonl", "--adapters", "numpy", "-k", FLAX_SLICE, "-n", "2")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert f"{tmp_path / earlier}" in proc.stderr and ("already exists" in proc.stderr or "left" in proc.stderr)
    assert [p.name for p in tmp_path.iterdir()] == [earlier] and (tmp_path / earlier).read_text() == "mine\n"
