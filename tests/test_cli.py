"""The main job end to end: `normbench` runs the suites and writes one results file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from normbench.bench.environment import environment
from normbench.cli.main import COMMANDS
from normbench.cli.main import main as normbench_main
from normbench.results import records

from .helpers import ROOT, one_line_error, run_cli, run_python

REQUIRED = {"suite", "check", "op", "adapter", "framework_version", "device", "dtype", "shape",
            "layout", "input", "params", "outcome", "max_abs_err", "err_eps", "tolerance",
            "message", "seed"}


def test_run_writes_environment_and_records(numpy_run):
    proc, out = numpy_run
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"normbench: results in {out / 'results.jsonl'}" in proc.stdout
    env, checks = records.read(out / "results.jsonl")
    assert env["versions"]["numpy"] and env["python"] and env["cores"] >= 1
    assert env["adapters"]["numpy"]["installed"] is True
    assert checks and all(REQUIRED <= set(c) for c in checks)
    assert {c["outcome"] for c in checks} <= {"pass", "skip"} and any(c["outcome"] == "pass" for c in checks)
    assert {c["op"] for c in checks} == {"layer_norm", "batch_norm", "rms_norm", "group_norm", "instance_norm"}


def test_existing_output_is_not_overwritten(numpy_run):
    _, out = numpy_run
    before = (out / "results.jsonl").read_bytes()
    proc = run_cli("verify", "--adapters", "numpy", "-o", str(out))
    assert proc.returncode == 2 and "exists" in proc.stderr
    assert (out / "results.jsonl").read_bytes() == before


def test_user_adapter_from_the_readme_runs(tmp_path):
    proc = run_cli("verify", "--adapters", "examples.my_rmsnorm:MyRMSNormAdapter", "-o", str(tmp_path / "r"),
                   cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _, checks = records.read(tmp_path / "r" / "results.jsonl")
    ran = [c for c in checks if c["outcome"] != "skip"]
    assert ran and all(c["outcome"] == "pass" and c["adapter"] == "my-rmsnorm" for c in ran)
    assert {c["op"] for c in ran} == {"rms_norm"}
    # every other op is a skip that says which op the adapter builds, never a layer of the wrong op
    others = [c for c in checks if c["op"] != "rms_norm"]
    assert others and all(c["outcome"] == "skip" and "does not build" in c["message"] for c in others)


def test_failure_is_recorded_with_a_rerun_command(tmp_path):
    (tmp_path / "broken.py").write_text(textwrap.dedent("""
        import numpy as np
        from normbench.adapters.numpy.layers import NumpyAdapter, NumpyLayer

        class EpsOutsideSqrt(NumpyLayer):
            def forward(self, x, training, mask=None):
                axes = self.spec.reduce_axes(x.ndim)
                xc = x - x.mean(axes, keepdims=True)
                y = xc / (np.sqrt((xc ** 2).mean(axes, keepdims=True)) + self.spec.eps)
                return (y * self.gamma + self.beta).astype(x.dtype)

        class Broken(NumpyAdapter):
            name = "broken"
            builders = {"layer_norm": EpsOutsideSqrt}
    """))
    proc = run_cli("verify", "--adapters", "broken:Broken", "-o", str(tmp_path / "r"), "--", "-k", "forward",
                   cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    _, checks = records.read(tmp_path / "r" / "results.jsonl")
    failed = [c for c in checks if c["outcome"] == "fail"]
    assert failed and all(c["rerun"].startswith("pytest '") for c in failed)
    assert all(c["rerun"] in proc.stdout for c in failed[:1])


def test_corrupt_results_file_names_file_and_line(tmp_path):
    path = tmp_path / "results.jsonl"
    path.write_text(json.dumps({"type": "environment"}) + "\n{not json\n")
    with pytest.raises(ValueError, match=rf"{path}:2: not a JSON object"):
        records.read(path)


def test_list_shows_every_adapter():
    proc = run_cli("list")
    assert proc.returncode == 0
    for name in ("numpy", "torch", "flax.linen", "flax.nnx", "keras[tensorflow]", "onnxruntime"):
        assert any(line.startswith(name + " ") for line in proc.stdout.splitlines()), name


def test_records_rebuild_their_case_and_inputs(numpy_run):
    from normbench.verify.checks import Case

    _, out = numpy_run
    _, rows = records.read(out / "results.jsonl")
    for row in rows[::25]:
        case = Case.from_record(row)
        assert case.id == row["case"] and case.seed == row["seed"]
        x1, _ = case.data()
        x2, _ = Case.from_record(row).data()
        assert (x1 == x2).all()


def test_report_writes_html_markdown_and_csv_beside_the_run(numpy_run):
    _, out = numpy_run
    for name in ("report.html", "report.md", "results.csv"):
        assert (out / name).stat().st_size > 1000, name


def test_report_and_compare_name_a_missing_or_corrupt_file(tmp_path):
    missing = tmp_path / "nope.jsonl"
    proc = run_cli("report", str(missing), "-o", str(tmp_path / "rep"))
    assert proc.returncode == 2 and str(missing) in proc.stderr
    corrupt = tmp_path / "bad.jsonl"
    corrupt.write_text(json.dumps({"type": "environment"}) + "\n{oops\n")
    proc = run_cli("compare", str(corrupt), str(corrupt))
    assert proc.returncode == 2 and f"{corrupt}:2" in proc.stderr
    assert not (tmp_path / "rep").exists()


def test_report_refuses_to_overwrite(numpy_run, tmp_path):
    _, out = numpy_run
    target = tmp_path / "rep"
    target.mkdir()
    (target / "report.html").write_text("mine")
    proc = run_cli("report", str(out), "-o", str(target))
    assert proc.returncode == 2 and (target / "report.html").read_text() == "mine"


def env_only(path):
    path.write_text(json.dumps(environment()) + "\n")
    return path


@pytest.mark.parametrize("kind, expected", [
    ("empty", "empty"),
    ("environment only", "an environment record but no checks"),
    ("pytest-benchmark json", "a pytest-benchmark JSON file, not normbench results"),
    ("run.json", "the plan of a `normbench run` (run.json), not results; give its folder instead"),
])
def test_report_and_compare_refuse_what_is_not_results(quick_bench, numpy_results, tmp_path, kind, expected):
    path = {
        "empty": lambda: tmp_path / "empty.jsonl",
        "environment only": lambda: env_only(tmp_path / "env.jsonl"),
        "pytest-benchmark json": lambda: quick_bench.parent / "benchmark.json",
        "run.json": lambda: tmp_path / "run.json",
    }[kind]()
    if kind == "empty":
        path.write_text("")
    if kind == "run.json":
        path.write_text(json.dumps({"format": "normbench-run/1", "suites": [], "jobs": []}, indent=2))
    proc = run_cli("report", str(path), "-o", str(tmp_path / "rep"))
    one_line_error(proc, str(path), expected)
    assert not (tmp_path / "rep").exists()
    one_line_error(run_cli("compare", str(numpy_results), str(path)), str(path), expected)


def test_report_reads_a_file_given_twice_once(numpy_results, tmp_path):
    proc = run_cli("report", str(numpy_results), str(numpy_results.parent), "-o", str(tmp_path / "rep"))
    assert proc.returncode == 0, proc.stderr
    assert f"{numpy_results} is given twice" in proc.stderr and "reading it once" in proc.stderr
    rows = (tmp_path / "rep" / "results.csv").read_text().count("\n") - 1
    assert rows == len(records.read(numpy_results)[1])


def test_compare_refuses_the_same_results_on_both_sides(numpy_results):
    one_line_error(run_cli("compare", str(numpy_results), str(numpy_results)), str(numpy_results),
                   "is on both sides of the comparison")
    one_line_error(run_cli("compare", str(numpy_results.parent), str(numpy_results)), "on both sides")
    relative = numpy_results.relative_to(numpy_results.parents[1])
    one_line_error(run_cli("compare", str(relative), str(numpy_results), cwd=numpy_results.parents[1]),
                   "on both sides")


def test_compare_refuses_runs_with_nothing_in_common(numpy_results, quick_bench):
    """A mistyped path in CI must not become a green check."""
    one_line_error(run_cli("compare", str(numpy_results), str(quick_bench)),
                   "no check or benchmark case in common", "nothing to compare")


@pytest.mark.parametrize("option, expected", [
    (["--factor", "0"], "--factor: must be greater than 1"),
    (["--factor", "1"], "--factor: must be greater than 1"),
    (["--factor", "fast"], "--factor: not a number"),
    (["--alpha", "5"], "--alpha: must be between 0 and 1"),
    (["--alpha", "0"], "--alpha: must be between 0 and 1"),
])
def test_compare_validates_factor_and_alpha(quick_bench, tmp_path, option, expected):
    other = tmp_path / "other.jsonl"
    other.write_text(quick_bench.read_text())
    proc = run_cli("compare", str(quick_bench), str(other), *option)
    assert proc.returncode == 2 and expected in proc.stderr.strip().splitlines()[-1], proc.stderr


READ_ONLY_MOUNT = 'mount --bind -o ro "$0" "$0" && exec "$@"'  # sh -c script: $0 the folder, then the command


def read_only(folder: Path) -> list[str]:
    """A prefix that runs a command with ``folder`` read-only. Permission bits do not stop root,
    so as root the folder is bind-mounted read-only in a mount namespace of the command's own
    (nothing outside it sees the mount); otherwise the folder loses its write bits."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return []
    prefix = ["unshare", "--mount", "sh", "-c", READ_ONLY_MOUNT, str(folder)]
    probe = subprocess.run([*prefix, "sh", "-c", f"! touch {folder}/probe 2>/dev/null"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a folder read-only for root here (unshare and a bind mount): {probe.stderr[-200:]}")
    return prefix


@pytest.mark.parametrize("command", ["verify", "bench", "report"])
def test_an_unwritable_output_folder_is_one_line_before_anything_runs(numpy_results, tmp_path, command):
    readonly = tmp_path / "readonly"
    readonly.mkdir()
    given = {"verify": ["--adapters", "numpy"], "bench": ["--adapters", "numpy", "--quick"],
             "report": [str(numpy_results)]}[command]
    exe = Path(sys.executable).with_name("normbench")
    proc = subprocess.run([*read_only(readonly), str(exe), command, *given, "-o", str(readonly / "out")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    one_line_error(proc, f"cannot write the output folder {readonly / 'out'}")
    assert "passed" not in proc.stdout and "failed" not in proc.stdout
    assert not list(readonly.iterdir())


@pytest.mark.parametrize("command", [c.__name__.rpartition(".")[2].replace("_", "-").replace("listing", "list")
                                     for c in COMMANDS])
def test_every_commands_help_renders(command, capsys):
    """`normbench bench --help` crashed on a '%' in an option's help (argparse formats help with %)."""
    with pytest.raises(SystemExit) as stopped:
        normbench_main([command, "--help"])
    assert stopped.value.code == 0
    assert f"usage: normbench {command}" in capsys.readouterr().out


def test_verification_leaves_hypothesis_unloaded_and_the_search_loads_it(tmp_path):
    """Only the search draws with Hypothesis: its pytest plugin, which imports Hypothesis at every session's
    end (~0.6 s a process), stays out of the verification and benchmark processes."""
    code = ("import sys; from normbench.cli.main import main; code = main(sys.argv[1:]); "
            "print('hypothesis' in sys.modules, code)")
    verify = run_python(code, args=["verify", "--adapters", "numpy", "--no-report", "-o", str(tmp_path / "v"), "--",
                                    "-k", "test_forward_train and layer_norm-8x16-float32-normal"])
    assert verify.stdout.split()[-2:] == ["False", "0"], verify.stdout[-2000:] + verify.stderr[-2000:]
    search = run_python(code, args=["search", "--replay", "layer_norm-8x16-float32-normal", "--adapters", "numpy",
                                    "-o", str(tmp_path / "s")])
    assert search.stdout.split()[-2:] == ["True", "0"], search.stdout[-2000:] + search.stderr[-2000:]
