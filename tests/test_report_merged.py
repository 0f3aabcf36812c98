"""A report merged from several runs, as `tox -e numpy,onnx,report` makes one: one run folder per
environment. It says which environment ran what, counts each run's records once, counts only the
adapters that ran, and lists what no environment installed."""

from __future__ import annotations

import configparser
import json
import re

import pytest

from normbench.reports import load

from .helpers import ROOT, run_cli, run_python

SUITE = "batch_size_one"  # the smallest verification suite
# torch as a process sees it where it is not installed: not found (find_spec), and not in sys.modules
# (helpers.blocking's None entry there reads to the thread set-up as torch already imported).
WITHOUT_TORCH = """import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            raise ModuleNotFoundError(name)
sys.meta_path.insert(0, NoTorch())
"""


@pytest.fixture(scope="module")
def merged(tmp_path_factory):
    """Two environments' run folders under results/ (numpy; onnxruntime, where torch is not installed,
    as tox's onnx environment has no torch), merged by `normbench report`: (results folder, report.md)."""
    results = tmp_path_factory.mktemp("tox") / "results"
    numpy_env = run_cli("run", "--adapters", "numpy", "--suites", SUITE, "-o", str(results / "numpy"))
    assert numpy_env.returncode == 0, numpy_env.stdout[-3000:] + numpy_env.stderr[-3000:]
    argv = ["run", "--adapters", "onnxruntime,torch", "--suites", SUITE, "-o", str(results / "onnx")]
    onnx_env = run_python(WITHOUT_TORCH + "from normbench.cli import main; main()", args=argv)
    assert onnx_env.returncode == 0, onnx_env.stdout[-3000:] + onnx_env.stderr[-3000:]
    report = run_cli("report", str(results), "-o", str(results.parent / "merged-report"))
    assert report.returncode == 0, report.stdout[-3000:] + report.stderr[-3000:]
    return results, (results.parent / "merged-report" / "report.md").read_text()


def _checks(folder) -> list[dict]:
    rows = [json.loads(line) for f in folder.rglob("*.jsonl") for line in f.read_text().splitlines()]
    return [r for r in rows if r.get("type") == "check"]


def test_counts_each_runs_checks_once_and_only_adapters_that_ran(merged):
    results, md = merged
    ran = [r for r in _checks(results) if r["framework_version"] != "not installed"]
    assert {r["adapter"] for r in ran} == {"numpy", "onnxruntime"}
    assert any(r["adapter"] == "torch" for r in _checks(results / "onnx"))  # the run's not-installed record
    head = md.split("\n\n")[1]
    assert head.startswith(f"{len(ran):,} checks on 2 adapters: "), head
    verdicts = md.split("## Verification", 1)[1].split("\n\n")[1].splitlines()
    assert verdicts[0] == f"| adapter | {SUITE} |"  # no "process" column of skipped adapters
    assert [line.split(" | ")[0] for line in verdicts[2:]] == ["| numpy", "| onnxruntime"]
    assert load(results).adapters == ["numpy", "onnxruntime"]


def test_says_which_environment_ran_what_and_what_none_installed(merged):
    _, md = merged
    env = md.split("## Environment", 1)[1].split("\n## ", 1)[0]
    assert "| field | numpy | onnx |" in env
    assert "| adapters run | numpy | onnxruntime |" in env
    missing = next(line for line in env.splitlines() if line.startswith("| adapters missing (install with) |"))
    hint = r"torch \(pip install .*normbench\[torch\].*\)"
    assert re.fullmatch(rf"\| adapters missing \(install with\) \| none \| {hint} \|", missing), missing
    assert re.search(rf"Not installed in any run: {hint}\.", md)


def test_tox_runs_the_numpy_reference_adapter_in_the_numpy_environment_only():
    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    named = {section: tox[section].get("set_env", "") for section in tox.sections() if section.startswith("testenv:")}
    adapters = {s: re.search(r"NB_ADAPTERS = (\S+)", text).group(1) for s, text in named.items()
                if "NB_ADAPTERS" in text}
    assert adapters and all("numpy" not in a.split(",") for a in adapters.values()), adapters
