"""Reading results files: the format line, Records per check line, and the one counting rule."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from normbench.reports import load
from normbench.reports.verdicts import headlines
from normbench.results import records
from normbench.results.counts import count
from normbench.results.kinds import Outcome
from normbench.results.records import RESULTS_FORMAT, Record, ResultsFile

from .helpers import run_cli


def _record(**change) -> Record:
    fields = dict(suite="agreement", check="forward_train", op="layer_norm", adapter="numpy", framework_version="2",
                  dtype="float32", shape=[2, 3], layout=None, input="normal", params={}, outcome="pass", seed=0,
                  case="layer_norm-2x3")
    return Record(**{**fields, **change})


def _write(path, *recs: Record):
    out = ResultsFile(path)
    for rec in recs:
        out.add(rec)
    out.close()
    return path


def test_the_first_line_names_the_format_and_keeps_the_environment(tmp_path):
    path = _write(tmp_path / "results.jsonl", _record())
    first = json.loads(path.read_text().splitlines()[0])
    assert first["type"] == "environment" and first["format"] == RESULTS_FORMAT == "normbench-results/1"
    assert "python" in first and "versions" in first
    env, found = records.read_records(path)
    assert env["format"] == RESULTS_FORMAT and [r.outcome for r in found] == [Outcome.PASS]
    assert isinstance(found[0].outcome, Outcome)


def test_a_file_from_before_the_format_line_is_read_as_version_one(tmp_path):
    path = _write(tmp_path / "results.jsonl", _record())
    lines = path.read_text().splitlines()
    env = json.loads(lines[0])
    del env["format"]
    old = tmp_path / "old.jsonl"
    old.write_text("\n".join([json.dumps(env), *lines[1:]]) + "\n")
    res = load(old)
    assert list(res.checks["outcome"]) == ["pass"] and isinstance(res.checks["outcome"].iloc[0], Outcome)


@pytest.mark.parametrize("first", [{"type": "environment", "format": "normbench-results/2"},
                                   {"type": "format", "format": "normbench-results/2"}])
def test_a_newer_format_is_refused_in_one_line_naming_the_file(tmp_path, first):
    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps(first) + "\n" + json.dumps({"type": "check", "shiny": True}) + "\n")
    with pytest.raises(ValueError) as info:
        load(path)
    message = str(info.value)
    assert "\n" not in message and str(path) in message and "normbench-results/2" in message
    proc = run_cli("report", str(path), "-o", str(tmp_path / "report"))
    assert proc.returncode == 2 and "normbench-results/2" in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_a_check_line_that_is_not_a_record_is_refused_naming_file_and_line(tmp_path):
    path = _write(tmp_path / "results.jsonl", _record(), _record(check="grad_dx"))
    lines = path.read_text().splitlines()
    row = json.loads(lines[2])
    row["outcome"] = "sort of"
    path.write_text("\n".join([*lines[:2], json.dumps(row)]) + "\n")
    with pytest.raises(ValueError, match=rf"^{path}:3: not a check record \(unknown outcome 'sort of'"):
        load(path)
    del row["case"]
    row["outcome"] = "pass"
    path.write_text("\n".join([*lines[:2], json.dumps(row)]) + "\n")
    with pytest.raises(ValueError, match=rf"^{path}:3: not a check record .*case"):
        load(path)


def test_timings_are_counted_apart_and_once_per_case(tmp_path):
    timed = dict(suite="speed", check="forward")
    timing = {"median_s": 1e-3, "iqr_s": 1e-5, "min_s": 9e-4, "rounds": 5, "bytes": 1000, "compile_s": 0.0,
              "allocator": "warm"}
    path = _write(tmp_path / "results.jsonl", _record(), _record(outcome="fail", check="grad_dx"),
                  *(_record(**timed, timing={**timing, "repeat": r}) for r in range(3)),
                  _record(**timed, case="other", outcome="error", timing={"repeat": 0}),
                  _record(suite="process", check="verify_process", adapter="torch", outcome="skip",
                          framework_version="not installed",
                          message="torch: not installed (torch): pip install 'normbench[torch]'"))
    rows = [json.loads(line) for line in path.read_text().splitlines()[1:]]
    counts = count(rows)
    assert counts.checks == {Outcome.PASS: 1, Outcome.FAIL: 1} and counts.total == 2 and counts.unexpected == 1
    assert counts.timings == 1 and counts.broken_timings == 1
    assert counts.adapters == {"numpy"} and counts.missing == {"torch"}
    assert counts.line() == "checks: 1 pass, 1 fail, 0 known, 0 error, 0 skip; 1 timing (1 benchmark failed or errored)"
    said = headlines(load(path))
    assert said[0].startswith("2 checks on 1 adapter: 1 pass, 1 fail, 0 known, 0 error, 0 skip")
    assert said[1].startswith("1 timing of 1 adapter") and "1 benchmark failed or errored" in said[1]
    assert said[2] == "Not installed in any run: torch (pip install 'normbench[torch]')."


def test_a_table_several_sections_read_is_made_once_per_results_and_each_caller_gets_its_own():
    from normbench.reports.loading import Results, once_per_results

    made = []

    @once_per_results
    def table(res: Results) -> pd.DataFrame:
        made.append(res)
        return pd.DataFrame({"x": [1, 2]})

    res, other = Results(pd.DataFrame(), pd.DataFrame()), Results(pd.DataFrame(), pd.DataFrame())
    first = table(res)
    first["x"] = 0  # a caller that changes its table in place
    assert list(table(res)["x"]) == [1, 2] and len(made) == 1
    table(other)
    assert len(made) == 2
