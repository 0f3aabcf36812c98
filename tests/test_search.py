"""`normbench search`: Hypothesis finds a bug the fixed case matrix misses, shrinks it to a minimal case
whose record reruns it, replays it from its example database, and finds nothing on a careful correct
adapter (tests/meta_search.py); a bug that one example in a hundred meets is found on a time budget and
missed by the normbench-ci profile's eight examples, and a budgeted search says what it covered. Also
the parametric input its cases use, and the case ids it reads back."""

from __future__ import annotations

import dataclasses
import math
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from normbench import ops
from normbench.adapters import registry
from normbench.ops import inputs
from normbench.ops.case import Case
from normbench.ops.spec import NormSpec
from normbench.results import records
from normbench.search import case_ids, profile, strategies
from normbench.search.budget import Budget
from normbench.verify import cases as fixed
from normbench.verify import checks

from . import meta_search as m
from .helpers import ROOT, one_line_error, run_cli

PLANTED, CAREFUL, TAIL_ROWS = "tests.meta_search:OddTail", "tests.meta_search:Careful", "tests.meta_search:TailRows"
SEED = "1"  # deterministic in CI; the normbench-ci profile's 8 examples found OddTail under 140 of 140 seeds tried
CI = ["--max-examples", str(profile.DEFAULT_MAX_EXAMPLES)]
# TailRows (tests/meta_search.py) under `--ops layer_norm`, measured on this project's shared 2-core machine: eight
# examples found it under 13 of 100 seeds; a 30 s budget under 40 of 40 (median 102 examples, 2.4 s; slowest 913
# examples, 22 s). Seed 4 sits at the median (99 examples, 1.9 s): eight miss it, the budget has a 15-fold margin.
TAIL_SEED, TAIL_BUDGET = "4", "30"


def _normbench(*args: str, out: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("normbench")
    return subprocess.Popen([str(exe), *args, "-o", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """`normbench search` with default settings on the planted and the careful adapter and, alongside, the
    fixed agreement suite on the planted one: (search's exit status and output, its folder, its records,
    the agreement records)."""
    base = tmp_path_factory.mktemp("search")
    search = _normbench("search", "--adapters", f"{PLANTED},{CAREFUL}", "--seed", SEED, *CI, out=base / "s")
    agreement = _normbench("verify", "--adapters", PLANTED, "--suites", "agreement", "--no-report", out=base / "a")
    (stdout, stderr), _ = (p.communicate(timeout=300) for p in (search, agreement))
    rows = [r for f in sorted((base / "s").glob("*/results.jsonl")) for r in records.read(f)[1]]
    assert rows, stdout[-3000:] + stderr[-3000:]
    agreed = records.read(base / "a" / "results.jsonl")[1]
    return (search.returncode, stdout + stderr), base / "s", rows, agreed


def _failures(rows, adapter: type):
    return [r for r in rows if r["adapter"] == adapter.name and r["outcome"] in ("fail", "error")]


def _planted(row) -> bool:
    return any(m.buggy(int(n)) for n in strategies.group_sizes(Case.from_record(row)))


def test_the_fixed_suites_miss_the_planted_bug(searched):
    _, _, _, agreed = searched
    assert {r["outcome"] for r in agreed} <= {"pass", "skip"} and sum(r["outcome"] == "pass" for r in agreed) > 300
    everything = [*fixed.agreement_cases(), *fixed.ad_cases(), *fixed.metamorphic_cases(), *fixed.train_eval_cases(),
                  *fixed.stateless_cases(), *fixed.batch_one_cases(), *fixed.one_value_cases(),
                  *(c for op in ops.all() for pad in ("zeros", "junk") for masked in (False, True)
                    for c in op.padding_cases(pad, masked) + op.sequence_cases(pad) + op.replica_cases())]
    sizes = {int(n) for c in everything for n in strategies.group_sizes(c)}
    assert sizes and not [n for n in sizes if m.buggy(n)]


def test_search_finds_and_shrinks_the_planted_bug(searched):
    (code, output), out, rows, _ = searched
    assert code == 1, output[-3000:]
    found = _failures(rows, m.OddTail)
    planted = [r for r in found if _planted(r)]
    assert planted, [(r["case"], r["check"], r["message"][:120]) for r in found]
    for r in planted:
        assert r["suite"] == "search" and r["facts"]["search"]["role"] == "failure"
        assert r["input"] == "normal" and r["dtype"] == "float32"  # shrunk: the simplest input and dtype
        assert min(int(n) for n in strategies.group_sizes(Case.from_record(r))) == 1001  # the smallest odd size > 1000
        assert "rerun: normbench search --replay" in r["message"]
    assert {r["check"] for r in planted} >= {"forward_train"}


def test_careful_adapter_has_no_failure(searched):
    _, _, rows, _ = searched
    mine = [r for r in rows if r["adapter"] == m.Careful.name]
    bad = _failures(rows, m.Careful)
    assert not bad, [(r["case"], r["check"], r["message"][:160]) for r in bad]
    worst = [r for r in mine if r["facts"]["search"]["role"] == "worst_pass"]
    assert {r["op"] for r in worst} == set(ops.names())  # each search records its closest pass
    assert all(r["outcome"] == "pass" and 0 <= r["max_abs_err"] <= r["tolerance"] for r in worst)
    assert all(r["facts"]["search"]["examples"] >= 8 for r in worst)


def test_report_lists_the_worst_case_per_adapter_and_op(searched):
    _, out, _, _ = searched
    md = (out / "report.md").read_text()
    section = md.split("### Search: worst inputs", 1)[1].split("\n### ", 1)[0]
    worst, covered = section.split("What each search covered", 1)
    lines = [line for line in worst.splitlines() if line.startswith("| meta-")]
    assert len(lines) == 2 * len(ops.names())
    assert len([line for line in covered.splitlines() if line.startswith("| meta-")]) == len(lines)
    outcomes = ["fail" if "❌" in line else "pass" for line in lines]
    assert outcomes == sorted(outcomes)  # failures first
    assert '<section aria-labelledby="search">' in (out / "report.html").read_text()


def test_rerun_command_reproduces_the_failure(searched, tmp_path):
    _, _, rows, _ = searched
    failure = next(r for r in _failures(rows, m.OddTail) if _planted(r))
    argv = shlex.split(failure["rerun"])
    assert argv[:3] == ["normbench", "search", "--replay"]
    proc = run_cli(*argv[1:], "-o", str(tmp_path / "again"), "--no-report", cwd=ROOT)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    again = records.read(tmp_path / "again" / "results.jsonl")[1]
    same = [r for r in again if r["case"] == failure["case"] and r["check"] == failure["check"]]
    assert same and same[0]["outcome"] == "fail" and same[0]["max_abs_err"] == failure["max_abs_err"]
    assert same[0]["facts"]["search"] == {"role": "replay"}


def test_database_replays_past_failures_first(searched, tmp_path):
    _, out, rows, _ = searched
    failure = next(r for r in _failures(rows, m.OddTail) if _planted(r))
    proc = run_cli("search", "--adapters", PLANTED, "--ops", failure["op"], "--max-examples", "1", "--seed", "7",
                   "--database", str(out / "search-db"), "-o", str(tmp_path / "again"), "--no-report", cwd=ROOT)
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    again = _failures(records.read(tmp_path / "again" / "results.jsonl")[1], m.OddTail)
    assert again and {r["case"] for r in again} == {failure["case"]}
    assert failure["facts"]["search"]["saved_examples"] == 0  # the first run started from an empty database
    assert again[0]["facts"]["search"]["saved_examples"] >= 1  # this one from the first run's failure
    assert not (tmp_path / "again" / "search-db").exists()  # the given database was used


@pytest.fixture(scope="module")
def budgeted(tmp_path_factory):
    """`normbench search --ops layer_norm` on TailRows with a time budget and with the normbench-ci profile's
    eight examples, under the same seed; and Careful on two ops with a budget it spends: {run: (exit status,
    output, folder, records)}."""
    base = tmp_path_factory.mktemp("budget")
    tail = ["search", "--adapters", TAIL_ROWS, "--ops", "layer_norm", "--seed", TAIL_SEED, "--no-report"]
    procs = {"budget": _normbench(*tail, "--budget", TAIL_BUDGET, out=base / "budget"),
             "ci": _normbench(*tail, *CI, out=base / "ci"),
             "spent": _normbench("search", "--adapters", CAREFUL, "--ops", "layer_norm,rms_norm", "--budget", "4",
                                 "--seed", SEED, out=base / "spent")}
    out = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=300)
        rows = records.read(base / name / "results.jsonl")[1] if (base / name / "results.jsonl").exists() else []
        out[name] = proc.returncode, stdout + stderr, base / name, rows
    return out


def _tail_rows(row) -> bool:
    case = Case.from_record(row)
    view, axes = case.spec.stats_view(case.shape)
    width = math.prod(view[a] for a in axes)
    return m.tail_rows(math.prod(case.shape) // width, width)


def test_eight_examples_miss_the_tail_rows_bug(budgeted):
    code, output, _, rows = budgeted["ci"]
    assert code == 0 and rows, output[-3000:]
    assert not _failures(rows, m.TailRows)
    search = rows[0]["facts"]["search"]
    assert search["ended"] == "examples" and search["max_examples"] == 8 and search["budget_s"] is None
    assert 1 <= search["examples"] <= 8


def test_a_budget_finds_the_tail_rows_bug(budgeted):
    code, output, _, rows = budgeted["budget"]
    assert code == 1, output[-3000:]
    found = _failures(rows, m.TailRows)
    assert found and {r["check"] for r in found} == {"grad_dx"} and all(_tail_rows(r) for r in found)
    assert {(r["input"], r["dtype"]) for r in found} == {("normal", "float32")}  # shrunk
    search = found[0]["facts"]["search"]
    assert search["ended"] == "failure" and search["budget_s"] == float(TAIL_BUDGET)
    assert search["examples"] > 8 and search["seconds"] < float(TAIL_BUDGET)
    assert search["reached_check"] == "grad_dx" and search["reached_ratio"] > 1
    assert "normbench: searched meta-tail-rows: 1 op, " in output and "; failures: layer_norm" in output


def test_a_budget_is_spent_shared_and_reported(budgeted):
    code, output, out, rows = budgeted["spent"]
    assert code == 0, output[-3000:]
    searches = {r["op"]: r["facts"]["search"] for r in rows}
    assert set(searches) == {"layer_norm", "rms_norm"}
    first, second = (searches[op] for op in ("layer_norm", "rms_norm"))
    assert first["budget_s"] == 2.0 and second["budget_s"] == pytest.approx(4.0 - first["seconds"], abs=1e-3)
    for search in searches.values():
        assert search["ended"] == "budget" and search["max_examples"] is None
        assert search["seconds"] >= search["budget_s"] and search["examples"] >= 1 and search["shapes"] >= 1
        assert search["dtypes"] == ["float32"] and search["reached_case"] and 0 <= search["reached_ratio"] <= 1
    line = next(line for line in output.splitlines() if line.startswith("normbench: searched meta-careful: "))
    examples = sum(s["examples"] for s in searches.values())
    assert line.startswith(f"normbench: searched meta-careful: 2 ops, {examples:,} example")
    assert " of 4.0 s; largest error / tolerance " in line and line.endswith("; no failure")
    md = (out / "report.md").read_text()
    section = md.split("### Search: worst inputs", 1)[1].split("\n### ", 1)[0]
    covered = [line for line in section.split("What each search covered", 1)[1].splitlines()
               if line.startswith("| meta-careful")]
    assert len(covered) == 2 and all("| budget |" in line for line in covered)
    assert "budget share" in (out / "report.html").read_text()


def test_budget_shares_what_is_left():
    budget = Budget(10.0, {"layer_norm", "rms_norm"})
    assert budget.share("layer_norm") == 5.0
    budget.spend("layer_norm", 7.0)
    assert budget.share("rms_norm") == 3.0
    budget.spend("rms_norm", 4.0)
    assert budget.share("group_norm") == 0.0


@pytest.mark.parametrize("args, message", [
    (["--budget", "0"], "--budget must be a positive number of seconds, got '0'"),
    (["--budget", "x"], "--budget must be a number of seconds, got 'x'"),
    (["--ops", "layer_norm,nope"], "unknown op 'nope'"),
    (["--max-examples", "0"], "--max-examples must be at least 1, got 0"),
    (["--seed", "x"], "--seed must be a whole number, got 'x'"),
    (["--replay", "layer_norm-8x16-float32-nonsense"], "unknown input generator 'nonsense'"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    one_line_error(run_cli("search", "--adapters", "numpy", *args, "-o", str(tmp_path / "r")), message)
    assert not (tmp_path / "r").exists()


# ---- the parametric input and the case ids


def test_shifted_input_regenerates_from_its_record():
    name = inputs.shifted(-2.5e3, 1e-3)
    assert name == "shifted:-2500:0.001" and inputs.parse_shifted(name) == (-2500.0, 0.001)
    assert inputs.parse_shifted("shifted:-2.5e3:0.001") is None  # one name per input: only the canonical one
    assert inputs.parse_shifted(inputs.shifted(1 / 3, 1)) == (1 / 3, 1.0)  # any float survives its name
    case = Case(NormSpec("layer_norm"), (4, 1001), "float32", name)
    x, _ = case.data()
    rng = np.random.default_rng(case.seed)
    assert np.array_equal(x, (-2500.0 + 1e-3 * rng.standard_normal(case.shape)).astype(np.float32))
    rec = checks.forward(registry.get("numpy"), case, training=True, suite="search")[0]
    again = Case.from_record(dataclasses.asdict(rec))
    assert again == case and np.array_equal(again.data()[0], x)
    with pytest.raises(ValueError, match="unknown input generator 'shifted:1:0'"):
        inputs.make("shifted:1:0", (2,), "float32", 0)
    with pytest.raises(ValueError, match="scale > 0"):
        inputs.shifted(0, -1)


@pytest.mark.parametrize("op", ops.all(), ids=str)
def test_drawn_cases_are_plain_cases_their_ids_rebuild(op):
    seen = []

    @settings(max_examples=60, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategies.cases(registry.get("numpy"), op))
    def draw(case):
        assert case.spec.op == op.name and min(strategies.group_sizes(case)) >= 2
        assert math.prod(case.shape) <= strategies.MAX_ELEMENTS
        assert case_ids.parse(case.id) == case
        assert Case.from_record({**case.describe(), "op": case.spec.op}) == case
        seen.append(case)

    draw()
    assert len({c.dtype for c in seen}) > 1 and max(max(c.shape) for c in seen) > 1000


def test_every_fixed_case_id_reads_back():
    for case in fixed.agreement_cases() + fixed.train_eval_cases() + fixed.batch_one_cases():
        assert case_ids.parse(case.id).id == case.id
    with pytest.raises(ValueError, match="not a case id"):
        case_ids.parse("layer_norm")
    with pytest.raises(ValueError, match="reads back as"):
        case_ids.parse("batch_norm-8x16-float32-normal-eps1e-05")
