"""Ctrl-C, SIGTERM and a parent killed outright: `normbench run` stops every process it started,
keeps and reports what they wrote, and says in one line that it was interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from .helpers import ROOT

pytestmark = pytest.mark.serial  # `normbench run`s that benchmark, stopped at moments timed by the clock

CRASHING = "tests.crashing_adapters"


@pytest.fixture
def start(tmp_path):
    """Start `normbench run` as a terminal starts it (the leader of its own process group); on
    teardown kill whatever a failed test left running, since it could hold the machine lock."""
    started = []

    def run(out: Path, *args: str) -> subprocess.Popen:
        exe = Path(sys.executable).with_name("normbench")
        proc = subprocess.Popen([str(exe), "run", *args, "-o", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)
        started.append(proc)
        return proc

    yield run
    for proc in started:
        if proc.poll() is None:
            proc.kill()
    for line in left_behind(tmp_path):
        os.kill(int(line.split()[0]), signal.SIGKILL)


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {condition.__doc__ or condition}")
        time.sleep(0.2)


def left_behind(out: Path) -> list[str]:
    """Processes still running whose command line names the run folder."""
    ps = subprocess.run(["ps", "-ww", "-eo", "pid,stat,args"], capture_output=True, text=True).stdout.splitlines()
    return [line for line in ps if str(out) in line and " Z" not in line and "ps -eo" not in line]


def statuses(out: Path) -> dict[str, str]:
    if not (out / "run.json").exists():
        return {}
    plan = json.loads((out / "run.json").read_text())
    return {f"{j['phase']} {j['group']}": j["status"] for j in plan["jobs"]}


def records_in(folder: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in folder.glob("*.jsonl")) if folder.is_dir() else 0


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:
    stdout, stderr = proc.communicate(timeout=timeout)
    return stdout, stderr


def test_ctrl_c_during_the_benchmarks_stops_the_child_and_writes_a_partial_report(tmp_path, start):
    """The probe: SIGINT to the process group while the benchmark child (a session of its own,
    which the terminal's signal never reaches) is running."""
    out = tmp_path / "run"
    proc = start(out, "--adapters", "numpy", "--quick")

    def bench_running():
        """the benchmark process to have started"""
        return (out / "logs" / "bench-head-to-head.stderr.log").exists()

    wait_for(bench_running)
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    stdout, stderr = finish(proc)
    assert proc.returncode == 130, stdout[-2000:] + stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("normbench: interrupted by SIGINT: 2 of 3 processes finished; "
                                                   f"partial report: {out / 'report' / 'report.html'}"), stderr
    assert "Traceback" not in stdout + stderr
    assert left_behind(out) == []
    assert statuses(out) == {"verify numpy": "done", "sync numpy": "done", "bench head-to-head": "interrupted"}

    def contenders_gone():
        """the head-to-head contenders (started by the benchmark process, in its process group) to exit"""
        ps = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
        return "normbench.bench.contender numpy" not in ps

    wait_for(contenders_gone, timeout=20)
    assert "interrupted after" in (out / "report" / "results.csv").read_text()
    assert (out / "report" / "report.md").read_text().startswith("# normbench report")


def test_sigterm_kills_a_process_that_ignores_it_after_a_grace_period(tmp_path, start):
    out = tmp_path / "run"
    proc = start(out, "--adapters", f"numpy,{CRASHING}:Stubborn", "--suites", "agreement", "--quick", "-j", "2")

    def stubborn_hanging():
        """numpy to finish and the stubborn adapter to hang"""
        return statuses(out).get("verify numpy") == "done" and records_in(out / "verify" / "stubborn") >= 5

    wait_for(stubborn_hanging)
    stopped = time.monotonic()
    os.kill(proc.pid, signal.SIGTERM)
    _, stderr = finish(proc)
    assert time.monotonic() - stopped < 15  # the grace period (5 s), then SIGKILL
    assert proc.returncode == 130 and "interrupted by SIGTERM" in stderr
    assert left_behind(out) == []
    assert statuses(out) == {"verify numpy": "done", "verify stubborn": "interrupted"}
    assert records_in(out / "verify" / "stubborn") >= 5  # what it wrote is kept


def test_a_child_stops_itself_when_its_parent_is_killed_outright(tmp_path, start):
    """SIGKILL leaves the parent no chance to stop anything: the child notices it is orphaned."""
    out = tmp_path / "run"
    proc = start(out, "--adapters", f"{CRASHING}:Hanging", "--suites", "agreement", "--quick")

    def hanging():
        """the hanging adapter to have written records"""
        return records_in(out / "verify" / "hanging") >= 5

    wait_for(hanging)
    child = [line for line in left_behind(out) if "verify --adapters" in line]
    assert len(child) == 1, left_behind(out)  # the verification process, hanging
    os.kill(proc.pid, signal.SIGKILL)
    finish(proc)

    def gone():
        """every child to exit"""
        return left_behind(out) == []

    wait_for(gone, timeout=20)


def test_a_verification_cut_short_judges_no_known_divergence_stale(tmp_path):
    """An adapter that declares ONNX semantics computes correctly, so the ONNX entries do not reproduce
    on the cases it got through; but the run was interrupted before the rest, so that is no
    XPASS(strict) failure: the divergence might have reproduced later in it."""
    (tmp_path / "impostor.py").write_text(textwrap.dedent("""
        from tests.crashing_adapters import Hanging

        class HangingOnnx(Hanging):
            name = "hanging-onnx"
            semantics = ("onnx",)
    """))
    exe = Path(sys.executable).with_name("normbench")
    out = tmp_path / "r"
    # SIGINT as a terminal's Ctrl-C delivers it, even where these tests were started with it ignored (a
    # non-interactive shell's `make test &`): a directly started `normbench verify` keeps what it inherits
    proc = subprocess.Popen([str(exe), "verify", "--adapters", "impostor:HangingOnnx", "-o", str(out), "--", "-k",
                             "offset1e4 or offset1e2"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))

    def hanging():
        """the impostor to pass some covered cases, then hang"""
        return (out / "results.jsonl").exists() and len((out / "results.jsonl").read_text().splitlines()) > 5

    try:
        wait_for(hanging)
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        stdout, stderr = finish(proc)
    finally:
        proc.kill()
    assert "KeyboardInterrupt" in stdout and "XPASS" not in stdout, stdout[-3000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()[1:]]
    assert rows and all(r["outcome"] == "pass" for r in rows)
