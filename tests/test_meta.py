"""Meta-tests: the suites catch bugs. One `normbench` run, as a user would start it, of every
suite on a correct independent adapter of all five ops and on copies of it with one planted bug
each (tests/meta_adapters.py): the correct one passes everything, and each bug is caught by the
check written for it, with a message naming the quantity and a command that reruns it."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from normbench.results import records

from . import meta_adapters as m
from .helpers import ROOT, run_cli

ADAPTERS = (m.Independent, *m.BROKEN)

# (check, pattern in the case id): each must fail on the adapter, since it is the check made for the bug.
CAUGHT_BY = {
    m.EpsOutsideSqrt: [("forward_train", r"-eps0\.1"), ("forward_train", r"-tiny_variance")],
    m.UnbiasedNormalization: [("forward_train", r"-float(32|64)-normal")],
    m.EvalUsesBatchStats: [("forward_eval", ""), ("eval_after_training", ""), ("eval_keeps_running_stats", "")],
    m.WrongAxis: [("forward_train", r"-channels_last"), ("running_mean", r"-channels_last")],
    m.GradMissingTerm: [("grad_dx", "")],
    m.Float16Accumulation: [("forward_train", r"-float16-large")],
    m.RmsEpsOutsideSqrt: [("forward_train", r"^rms_norm-.*-eps0\.1"), ("forward_train", r"^rms_norm-.*-tiny_variance")],
    m.StridedGroups: [("forward_train", r"^group_norm-"), ("grad_dx", r"^group_norm-"),
                      ("scale_shift_invariance", r"^group_norm-")],
    m.InstanceNormRunningInTraining: [("forward_train", r"^instance_norm-.*-running"),
                                      ("running_mean_steps", r"^instance_norm-")],
    m.MisdeclaredRunningVar: [("running_var", ""), ("running_var_steps", "")],
    m.SecondOrderFrozenScale: [(f"second_order_{q}", f"^{op}-") for q in ("dx", "dgamma")
                               for op in ("layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm")],
    m.DowncastBeforeReduction: [(c, r"-(bfloat16|float16)-.*-mixed") for c in ("forward_train", "grad_dx")],
}

# Where a bug cannot show, nothing may fail: the suites point at the bug, not around it.
ONLY_WHERE = {
    m.EvalUsesBatchStats: lambda r: r["check"] != "forward_train" and not r["check"].startswith("grad_"),
    m.WrongAxis: lambda r: r["layout"] == "channels_last",
    # the second derivatives differentiate that same wrong dx
    m.GradMissingTerm: lambda r: r["check"] in ("grad_dx", "second_order_dx", "second_order_dgamma"),
    m.Float16Accumulation: lambda r: r["dtype"] == "float16",
    m.StridedGroups: lambda r: "groups1" not in r["case"] and "groups8" not in r["case"],
    m.InstanceNormRunningInTraining: lambda r: "-running" in r["case"] or r["check"].endswith("_steps")
    or r["check"] == "train_after_eval",
    m.MisdeclaredRunningVar: lambda r: r["check"] in ("running_var", "running_var_steps", "running_mean_steps"),
    m.SecondOrderFrozenScale: lambda r: r["check"].startswith("second_order_"),
    m.DowncastBeforeReduction: lambda r: r["params"].get("precision") == "mixed",
}

# How each check's message names what it compared ("y: max |err| ...", "dx: ...").
_JUDGED = r"[^:;]*: max \|err\|"
QUANTITY = {
    **dict.fromkeys(("forward_train", "forward_eval", "eval_after_training"), r"\by" + _JUDGED),
    "varying_lengths": r"\by\[T=" + _JUDGED,
    "scale_shift_invariance": r"y\(a·x\+b\) vs y\(x\)" + _JUDGED,
    **dict.fromkeys(("sample_independence", "sequence_alone"), r"\by\(" + _JUDGED),
    **{f"grad_{q}": rf"\b{q}" + _JUDGED for q in ("dx", "dgamma", "dbeta")},
    **{c: r"\brunning_mean" + _JUDGED for c in ("running_mean", "running_mean_steps")},
    **{c: r"\brunning_var" + _JUDGED for c in ("running_var", "running_var_steps")},
    "train_after_eval": r"\brunning_(mean|var)" + _JUDGED,
    "eval_keeps_running_stats": r"changed the running statistics",
    "train_equals_eval": r"train and eval outputs differ",
    "jvp": r"\bjvp" + _JUDGED,
    **{f"second_order_{q}": rf"d<dx,v>/d{q[1:]}" + _JUDGED for q in ("dx", "dgamma")},
}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("meta") / "r"
    refs = [f"tests.meta_adapters:{a.__name__}" for a in ADAPTERS]
    proc = run_cli("verify", "--adapters", ",".join(refs), "-o", str(out), "--no-report", cwd=ROOT)
    if not (out / "results.jsonl").exists():
        pytest.fail(f"no results written:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc, records.read(out / "results.jsonl")[1]


def of(checks, adapter, *outcomes):
    return [r for r in checks if r["adapter"] == adapter.name and (not outcomes or r["outcome"] in outcomes)]


def test_run_fails_only_because_of_the_broken_adapters(run):
    proc, checks = run
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-4000:]
    assert {r["adapter"] for r in checks} == {a.name for a in ADAPTERS}
    failed_tests = [line for line in proc.stdout.splitlines() if line.startswith(("FAILED", "ERROR"))]
    assert failed_tests and not [t for t in failed_tests if m.Independent.name in t]


def test_independent_adapter_passes_everything(run):
    _, checks = run
    mine = of(checks, m.Independent)
    bad = [f"{r['check']} {r['case']}: {r['outcome']} {r['message']}" for r in mine
           if r["outcome"] not in ("pass", "skip")]
    assert not bad, "\n".join(bad)
    passed = [r for r in mine if r["outcome"] == "pass"]
    assert len(passed) >= 400
    # it declares every dtype, layout and feature, so only `defaults` (which it does not report) skips
    assert {r["check"] for r in mine if r["outcome"] == "skip"} == {"defaults"}
    assert {r["dtype"] for r in passed} == {"float64", "float32", "float16", "bfloat16"}
    assert {r["suite"] for r in passed} == {"agreement", "batch_size_one", "sequence_lengths", "train_eval"}


@pytest.mark.parametrize("adapter", m.BROKEN, ids=lambda a: a.__name__)
def test_bug_is_caught_by_its_check(run, adapter):
    _, checks = run
    failed = of(checks, adapter, "fail")
    assert failed, f"{adapter.name}: no check failed"
    assert not of(checks, adapter, "error", "known")
    for check, case in CAUGHT_BY[adapter]:
        assert any(r["check"] == check and re.search(case, r["case"]) for r in failed), \
            f"{adapter.name}: no failing {check} on a case matching {case!r}"
    where = ONLY_WHERE.get(adapter)
    stray = [f"{r['check']} {r['case']}" for r in failed if where and not where(r)]
    assert not stray, f"{adapter.name} also failed where its bug cannot show: {stray}"


@pytest.mark.parametrize("adapter", m.BROKEN, ids=lambda a: a.__name__)
def test_failures_name_the_quantity_and_a_rerun_command(run, adapter):
    _, checks = run
    for r in of(checks, adapter, "fail"):
        assert r["check"] in QUANTITY, f"no quantity known for check {r['check']!r}; add it to QUANTITY"
        assert re.search(QUANTITY[r["check"]], r["message"]), (r["check"], r["message"])
        assert r["rerun"].startswith("pytest '") and "::test_" in r["rerun"], r["rerun"]


def test_rerun_command_reproduces_the_failure(run, tmp_path):
    _, checks = run
    rec = of(checks, m.GradMissingTerm, "fail")[0]
    argv = shlex.split(rec["rerun"])
    assert argv[0] == "pytest"
    exe = Path(sys.executable).with_name("pytest")
    proc = subprocess.run([str(exe), *argv[1:], "--results", str(tmp_path / "results.jsonl"), "-p",
                           "no:cacheprovider"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    again = records.read(tmp_path / "results.jsonl")[1]
    assert any(r["check"] == rec["check"] and r["case"] == rec["case"] and r["outcome"] == "fail" for r in again)
