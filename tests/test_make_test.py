"""What `make test` relies on to run the suite in parallel without running anything twice
(tests/conftest.py): an end-to-end run is made once across processes, and the tests reading one
module-scoped fixture stay on one pytest-xdist worker."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from .helpers import ROOT

MAKE_ONCE = """
import json, sys, time
from pathlib import Path
from tests.conftest import once

def make(folder):
    with open(Path(sys.argv[1]) / "made.log", "a") as fh:
        fh.write("made\\n")
    time.sleep(1.0)  # long enough for the other process to ask meanwhile
    return {"folder": str(folder)}

print(json.dumps(once(None, "run", make)))
"""


def test_once_makes_a_run_once_for_every_process_that_asks(tmp_path):
    env = {**os.environ, "NORMBENCH_TEST_SHARED": str(tmp_path), "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", MAKE_ONCE, str(tmp_path)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outs = [p.communicate(timeout=120) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    assert (tmp_path / "made.log").read_text() == "made\n"
    assert len({out for out, _ in outs}) == 1 and str(tmp_path / "run") in outs[0][0]


GROUPED = '''
import os, pytest

def where(name):
    with open(os.path.join(os.environ["OUT"], f"{name}-{os.environ['PYTEST_XDIST_WORKER']}"), "a") as fh:
        fh.write("x")

@pytest.fixture(scope="module")
def run():
    where("run")

@pytest.fixture(scope="module")
def page(run):
    pass

@pytest.mark.parametrize("i", range(6))
def test_reads_the_page(page, i):
    pass

@pytest.mark.parametrize("i", range(6))
def test_reads_the_run(run, i):
    pass

@pytest.mark.xdist_group("declared")
@pytest.mark.parametrize("i", range(6))
def test_declared(i):
    where("declared")

@pytest.mark.parametrize("i", range(30))
def test_free(i):
    where("free")
'''


def test_tests_of_one_module_scoped_run_share_a_worker_and_the_others_spread(tmp_path):
    """With pytest 9.2, xdist's own --dist loadgroup groups nothing (pytest-xdist#1386)."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        from tests.conftest import (pytest_collection_modifyitems, pytest_configure, pytest_unconfigure,
                                    pytest_xdist_make_scheduler)
    """))
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    out = tmp_path / "out"
    out.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))}
    env.update(OUT=str(out), PYTHONPATH=str(ROOT))
    proc = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
                           "-q", "test_grouped.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    made = sorted(p.name for p in out.iterdir())
    assert [m for m in made if m.startswith("run-")] in (["run-gw0"], ["run-gw1"])  # made once
    assert [m for m in made if m.startswith("declared-")] in (["declared-gw0"], ["declared-gw1"])
    assert [m for m in made if m.startswith("free-")] == ["free-gw0", "free-gw1"]  # spread
