"""The machine lock holds for every way in: `normbench verify`, `normbench bench` and plain
pytest wait while a benchmark has the machine (and a benchmark waits for them), and the wait
is recorded in the results."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from normbench.bench import lock
from normbench.results import records

from .helpers import ROOT

pytestmark = pytest.mark.serial  # each takes the machine lock, or reads the load other processes put on it

ENTRY_POINTS = {
    "verify": ["normbench", "verify", "--adapters", "numpy", "--suites", "batch_size_one", "-o", "{out}"],
    "pytest": [sys.executable, "-m", "pytest", "--pyargs", "normbench.suites.test_batch_size_one", "--adapters",
               "numpy", "-p", "no:cacheprovider", "--results", "{out}/results.jsonl"],
    "bench": ["normbench", "bench", "--in-process", "--quick", "--adapters", "numpy", "-o", "{out}", "--", "-k",
              "batch_norm-train"],
}


def command(entry: str, out: Path) -> list[str]:
    exe = str(Path(sys.executable).with_name("normbench"))
    return [exe if part == "normbench" else part.format(out=out) for part in ENTRY_POINTS[entry]]


@pytest.mark.parametrize("entry, held", [("verify", "exclusive"), ("pytest", "exclusive"), ("bench", "shared")])
def test_every_entry_point_waits_for_the_machine_and_records_the_wait(tmp_path, entry, held):
    """Verification waits while a benchmark runs; a benchmark waits while anything runs."""
    release = threading.Event()
    holding = threading.Event()

    def hold():
        with lock.machine(exclusive=held == "exclusive"):
            holding.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    # another normbench process on this machine (a developer's run) may hold it first: wait for it
    assert holding.wait(300), "could not take the machine lock within 5 minutes"
    out = tmp_path / "out"
    proc = subprocess.Popen(command(entry, out), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
        assert proc.poll() is None, proc.communicate()
        assert not (out / "results.jsonl").exists()  # nothing ran while the machine was taken
    finally:
        release.set()
        holder.join()
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    assert "normbench: waiting for the machine" in stderr
    env, checks = records.read(out / "results.jsonl")
    mode = "exclusive" if entry == "bench" else "shared"
    # held 4 s after the process started; its start-up under load takes some of that
    assert env["machine_lock"]["mode"] == mode and env["machine_lock"]["waited_s"] >= 2.5
    assert checks


def test_benchmark_records_say_how_busy_other_processes_kept_the_machine(quick_bench):
    _, checks = records.read(quick_bench)
    timed = [c for c in checks if c["suite"] == "speed" and "median_s" in c]
    assert timed and all(isinstance(c["other_load"], float) and c["other_load"] >= 0 for c in timed)


def test_other_load_sees_a_busy_core():
    from normbench.bench.load import OtherLoad

    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.3)
        with OtherLoad() as busy:
            time.sleep(1.0)
    finally:
        spinner.kill()
    assert busy.cores is not None and busy.cores >= 0.7, busy.cores  # a core's worth, give or take a tick
