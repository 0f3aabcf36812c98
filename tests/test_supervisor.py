"""Search groups and `bench --allocators` passes run under the same supervisor as `normbench run`'s
processes: a child that crashes or hangs past --timeout is stopped, gets an error record naming
the adapter's own line, and leaves its output in logs/."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from normbench.results import records

from .helpers import ROOT, run_cli
from .test_interrupts import left_behind, wait_for
from .test_run import _line_of

CRASHING = "tests.crashing_adapters"
WHERE = str(ROOT / "tests" / "crashing_adapters.py")


def _errors(folder):
    return [r for p in sorted(folder.glob("*.jsonl")) for r in records.read(p)[1] if r["outcome"] == "error"]


def _statuses(out):
    jobs = json.loads((out / "jobs.json").read_text())["jobs"]
    return {" ".join(filter(None, (j["group"], j.get("variant")))): j["status"] for j in jobs}


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """`normbench search` on two groups: one segfaults, one hangs past --timeout."""
    out = tmp_path_factory.mktemp("search") / "s"
    proc = run_cli("search", "--adapters", f"{CRASHING}:Segfaulting,{CRASHING}:Hanging", "--ops", "layer_norm",
                   "--max-examples", "40", "--seed", "1", "--timeout", "10", "-o", str(out), cwd=ROOT)
    return proc, out


def test_a_search_group_that_crashes_or_hangs_is_an_error_record(searched):
    proc, out = searched
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _statuses(out) == {"segfaulting": "crashed", "hanging": "timeout"}
    (crash,) = _errors(out / "segfaulting")
    assert crash["check"] == "search_process" and crash["suite"] == "process"
    assert "killed by SIGSEGV" in crash["message"] and "Segmentation fault" in crash["facts"]["stderr_tail"]
    assert crash["facts"]["where"] == f"{WHERE}:{_line_of('string_at(0)', 'Segfaulting')} in forward"
    (hang,) = _errors(out / "hanging")
    assert "killed after 10 s (--timeout)" in hang["message"] and hang["facts"]["status"] == "timeout"
    assert hang["facts"]["where"] == f"{WHERE}:{_line_of('sleep(3600)', 'Hanging')} in forward"
    assert f"-o {out / 'hanging'}-rerun " in hang["rerun"]


def test_a_search_groups_output_is_in_its_logs(searched):
    _, out = searched
    assert "Segmentation fault" in (out / "logs" / "search-segfaulting.stderr.log").read_text()
    assert "(most recent call first)" in (out / "logs" / "search-hanging.stderr.log").read_text()
    md = (out / "report.md").read_text()
    assert "segfaulting" in md and "hanging" in md


@pytest.mark.serial  # bench --allocators takes the machine lock exclusively
def test_an_allocator_pass_that_hangs_is_stopped_and_recorded(tmp_path):
    """One allocator named is a supervised pass too: it ran unsupervised in this process, and the hang
    lasted for good whatever --timeout said."""
    out = tmp_path / "r"
    proc = run_cli("bench", "--quick", "--adapters", f"{CRASHING}:Hanging", "--threads", "1", "--repeats", "1",
                   "--allocators", "system", "--timeout", "6", "-o", str(out), timeout=120)
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert _statuses(out) == {"hanging system": "timeout"}
    (hang,) = _errors(out / "system" / "r0" / "hanging")
    assert hang["check"] == "bench_process" and hang["suite"] == "speed"
    assert "killed after 6 s (--timeout)" in hang["message"]
    assert hang["facts"]["where"] == f"{WHERE}:{_line_of('sleep(3600)', 'Hanging')} in forward"
    assert "(most recent call first)" in (out / "logs" / "bench-hanging-system-r0.stderr.log").read_text()
    assert "normbench: bench hanging system r0: timeout" in proc.stdout


@pytest.mark.serial  # judged by the clock
def test_ctrl_c_stops_every_search_group_and_says_so(tmp_path):
    """SIGINT to the terminal's process group while a group's search hangs: the supervisor stops
    the child (in a session of its own, which the terminal's signal never reaches)."""
    out = tmp_path / "s"
    exe = Path(sys.executable).with_name("normbench")
    proc = subprocess.Popen([str(exe), "search", "--adapters", f"numpy,{CRASHING}:Hanging", "--ops", "layer_norm",
                             "--max-examples", "40", "--seed", "1", "-o", str(out)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        def hanging():
            """the hanging group's search to have started"""
            return (out / "logs" / "search-hanging.stderr.log").exists()

        wait_for(hanging)
        time.sleep(5.0)
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, stdout[-2000:] + stderr[-2000:]
    assert "normbench: interrupted by SIGINT: " in stderr and f"results so far in {out}" in stderr
    assert "Traceback" not in stdout + stderr
    assert left_behind(out) == []
    assert _statuses(out)["hanging"] == "interrupted"


def test_a_supervised_child_stops_on_sigint_even_when_started_with_it_ignored():
    """A non-interactive shell starts a background command with SIGINT ignored, and every child inherits
    that; the supervisor's stop request is SIGINT, so its children take it back."""
    code = ("import os, signal; from normbench.running import child; os.kill(os.getpid(), signal.SIGINT); "
            "child.stop_with_parent(); print(signal.getsignal(signal.SIGINT) is signal.default_int_handler); "
            "os.kill(os.getpid(), signal.SIGINT)")
    env = {**os.environ, "NORMBENCH_PARENT_PID": str(os.getpid())}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    assert proc.stdout.strip() == "True" and "KeyboardInterrupt" in proc.stderr and proc.returncode != 0
