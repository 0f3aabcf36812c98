"""The conductor starts a contender's block only once the process before it has gone quiet: a
worker thread still spinning after its framework's call (ONNX Runtime's did for ~45 ms here)
would take a core from the block being timed. Nothing here asserts how fast anything is."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from normbench.bench import conductor, entrants, harness, quiet

from . import meta_speed

SPINS_AFTER_ANSWER = textwrap.dedent("""
    import sys, threading, time
    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    for line in sys.stdin:
        threading.Thread(target=spin, args=(float(line),)).start()
        print("done", flush=True)
""")


@pytest.fixture
def spinner():
    proc = subprocess.Popen([sys.executable, "-c", SPINS_AFTER_ANSWER], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    yield proc
    proc.kill()
    proc.wait()


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads thread states from /proc (Linux)")
def test_the_wait_lasts_as_long_as_a_thread_spins_after_the_answer(spinner):
    def answered_after(spin_s: float) -> None:
        spinner.stdin.write(f"{spin_s}\n")
        spinner.stdin.flush()
        assert spinner.stdout.readline() == "done\n"

    answered_after(0.0)
    assert quiet.wait(spinner.pid) < 0.05  # nothing spins: the settle time, and a thread ending
    answered_after(0.15)
    busy = quiet.wait(spinner.pid)
    assert busy >= 0.1, busy
    assert quiet.running_threads(spinner.pid) == 0


def test_a_process_that_cannot_be_read_is_waited_for_a_fixed_time():
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert quiet.running_threads(gone.pid) is None
    assert quiet.wait(gone.pid) is None


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads thread states from /proc (Linux)")
def test_no_block_starts_while_the_contender_before_it_still_spins(tmp_path):
    """meta-lingering leaves a thread spinning 50 ms after each call; meta-stamped notes when each
    of its calls starts. None may start inside a spell of the other's spinning (with the 10 ms pause
    the conductor had, most of the blocks that followed meta-lingering's did)."""
    probe = tmp_path / "probe"
    probe.mkdir()
    field = entrants.parse_entrants(["tests.meta_speed:Lingering", "tests.meta_speed:Stamped"], lambda r: r)
    conduct = conductor.Conductor(field, tmp_path / "logs", processes=1, rounds=8, recompiles=False,
                                  env={**os.environ, "NORMBENCH_TEST_PROBE": str(probe)})
    conduct.rng = random.Random(3)
    cases = harness.cases(quick=True)[:2]
    timed = dict(conduct.run(cases))
    assert len(timed) == 2
    spells = [s for f in probe.glob("linger-*.json") for s in json.loads(f.read_text())]
    stamps = [t for f in probe.glob("stamps-*.json") for t in json.loads(f.read_text())]
    assert spells and len(stamps) >= 2 * 8
    inside = [t for t in stamps if any(begin <= t <= end for begin, end in spells)]
    assert not inside, f"{len(inside)} of {len(stamps)} calls started while the other process spun"
    lingering, stamped = (e.name for e in field)
    for outcomes in timed.values():
        # a wait starts when the conductor has read the block's answer: on a loaded machine (the xdist pass) that
        # read can come late in one block (30.7 ms of a 50 ms spell seen), so the median, which the record keeps
        lingered = outcomes[lingering].busy_after_s
        assert len(lingered) == 8 and np.median(lingered) >= 0.8 * meta_speed.LINGER_S, lingered
        assert max(outcomes[stamped].busy_after_s) < meta_speed.LINGER_S

