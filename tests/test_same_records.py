"""tools/same_records.py: the script that shows a structural change kept a run's findings."""

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).parents[1] / "tools" / "same_records.py"
spec = importlib.util.spec_from_file_location("same_records", SCRIPT)
same_records = importlib.util.module_from_spec(spec)
spec.loader.exec_module(same_records)


def _run(folder: Path, outcomes: dict[str, str]) -> Path:
    (folder / "verify" / "g").mkdir(parents=True)
    lines = [{"type": "format", "format": "normbench-results/1"}, {"type": "environment", "cores": 2}]
    lines += [{"type": "check", "suite": "agreement", "case": case, "check": "forward_train", "adapter": "numpy",
               "outcome": outcome} for case, outcome in outcomes.items()]
    (folder / "verify" / "g" / "results.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    return folder


def test_equal_runs_exit_0_and_a_changed_outcome_is_named(tmp_path, capsys):
    a = _run(tmp_path / "a", {"c1": "pass", "c2": "known"})
    b = _run(tmp_path / "b", {"c1": "pass", "c2": "known"})
    c = _run(tmp_path / "c", {"c1": "pass", "c2": "fail"})
    assert same_records.main([str(a), str(b)]) == 0
    assert "the same set" in capsys.readouterr().out
    assert same_records.main([str(a), str(c)]) == 1
    out = capsys.readouterr().out
    assert "only before: agreement | c2 | forward_train | numpy | known" in out
    assert "only after: agreement | c2 | forward_train | numpy | fail" in out


def test_a_corrupt_line_names_its_file_and_line(tmp_path):
    a = _run(tmp_path / "a", {"c1": "pass"})
    with (a / "verify" / "g" / "results.jsonl").open("a") as f:
        f.write("{not json\n")
    try:
        same_records.rows(a)
    except SystemExit as exc:
        assert "results.jsonl:4: not JSON" in str(exc)
    else:
        raise AssertionError("a corrupt line was read")
