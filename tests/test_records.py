"""A Record refuses a suite, check or outcome it does not know, at construction and when read from
a file, naming the field (and the file and line) and listing the known values."""

from __future__ import annotations

import json

import pytest

from normbench.reports import load
from normbench.results import records
from normbench.results.kinds import Check, Outcome, Suite
from normbench.results.records import Record, ResultsFile

from .helpers import run_cli

FIELDS = dict(suite="agreement", check="forward_train", op="layer_norm", adapter="numpy", framework_version="2",
              dtype="float32", shape=[2, 3], layout=None, input="normal", params={}, outcome="pass", seed=0,
              case="layer_norm-2x3")


def test_suite_check_and_outcome_become_their_enums():
    rec = Record(**FIELDS)
    assert (rec.suite, rec.check, rec.outcome) == (Suite.AGREEMENT, Check.FORWARD_TRAIN, Outcome.PASS)
    assert isinstance(rec.suite, Suite) and isinstance(rec.check, Check) and isinstance(rec.outcome, Outcome)
    assert json.loads(json.dumps(rec.to_row()))["check"] == "forward_train"  # the file format is unchanged


@pytest.mark.parametrize(("field", "enum"), [("suite", Suite), ("check", Check), ("outcome", Outcome)])
def test_an_unknown_value_is_refused_naming_the_field_and_the_known_values(field, enum):
    with pytest.raises(ValueError) as info:
        Record(**{**FIELDS, field: "shiny"})
    message = str(info.value)
    assert message.startswith(f"unknown {field} 'shiny'; expected one of ") and "\n" not in message
    assert all(member.value in message for member in enum)


@pytest.mark.parametrize("phase", ["verify", "sync", "bench", "search", "allocator", "self_check"])
def test_every_process_phase_has_a_check(phase):
    assert Check(f"{phase}_process")


def test_a_file_with_an_unknown_check_is_refused_in_one_line_naming_file_and_line(tmp_path):
    path = tmp_path / "results.jsonl"
    out = ResultsFile(path)
    out.add(Record(**FIELDS))
    out.close()
    with path.open("a") as fh:
        fh.write(json.dumps({"type": "check", **FIELDS, "check": "backward"}) + "\n")
    with pytest.raises(ValueError) as info:
        records.read_records(path)
    message = str(info.value)
    assert message.startswith(f"{path}:3: not a check record (unknown check 'backward'; expected one of ")
    assert "\n" not in message
    with pytest.raises(ValueError, match=rf"^{path}:3: .*unknown check 'backward'"):
        load(path)
    proc = run_cli("report", str(path), "-o", str(tmp_path / "report"))
    assert proc.returncode == 2 and f"{path}:3:" in proc.stderr and "unknown check 'backward'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
