from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest

from normbench.adapters import registry

# What a process gets when it sets none of an adapter's ``environment`` (Keras's default backend).
PROCESS_DEFAULTS = {"KERAS_BACKEND": "tensorflow"}


def runs_in_this_process(name: str) -> bool:
    """Whether this test process has the environment the adapter needs. Keras reads
    KERAS_BACKEND once per process, so only one Keras backend can run here (the one this
    process was started with); test_keras_backends.py runs the others in processes of their own."""
    environment = registry.get(name).environment
    return all(os.environ.get(k, PROCESS_DEFAULTS.get(k)) == v for k, v in environment.items())


BUILTIN = [name for name in registry.BUILTIN if runs_in_this_process(name)]
OTHER_PROCESS = [name for name in registry.BUILTIN if not runs_in_this_process(name)]


def require_installed(adapter) -> None:
    """A missing framework skips, or fails where every framework is required."""
    if adapter.missing():
        message = f"{adapter.name}: not installed: {adapter.install_hint()}"
        if os.environ.get("NORMBENCH_REQUIRE_ALL"):
            pytest.fail(message + " (NORMBENCH_REQUIRE_ALL is set)")
        pytest.skip(message)


@pytest.fixture(params=BUILTIN)
def builtin_adapter(request):
    """Each built-in adapter that can run in this process (see runs_in_this_process)."""
    adapter = registry.get(request.param)
    require_installed(adapter)
    return adapter


GROUPS = "NORMBENCH_TEST_GROUPS"  # the folder where xdist workers say which test goes in which group


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups (under --dist loadgroup)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests that read one module-scoped fixture (most are end-to-end runs: `normbench run
    --suites synchronized`, the search, a crashed run) join one pytest-xdist group, so one worker
    makes the fixture once and the other workers take other tests meanwhile. The group is named for
    the fixture's root: the first (by name) module-scoped fixture it reads that reads no other one."""
    groups = {}
    for item in items:
        defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
        scoped = {n for n in item.fixturenames if defs.get(n) and defs[n][-1].scope == "module"}
        roots = sorted(n for n in scoped if not scoped.intersection(defs[n][-1].argnames))
        if roots and not item.get_closest_marker("xdist_group"):
            params = getattr(getattr(item, "callspec", None), "params", {})
            param = f"[{params[roots[0]]}]" if roots[0] in params else ""
            item.add_marker(pytest.mark.xdist_group(f"{item.module.__name__}.{roots[0]}{param}"))
        if mark := item.get_closest_marker("xdist_group"):
            groups[item.nodeid] = str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
    worker = getattr(config, "workerinput", {}).get("workerid")
    # (a pytest a test starts under xdist inherits the variable: only this session's workers write)
    if worker and os.environ.get(GROUPS) and getattr(config.option, "loadgroup", False):  # set by xdist
        part = Path(os.environ[GROUPS]) / f"{worker}.json"
        scratch = part.with_name(f"{worker}.{os.getpid()}.tmp")
        scratch.write_text(json.dumps(groups))
        scratch.replace(part)


def pytest_configure(config: pytest.Config) -> None:
    """The xdist controller gives its workers a folder to write their groups into (see below)."""
    if not os.environ.get("PYTEST_XDIST_WORKER") and config.getoption("dist", "no") == "loadgroup":
        os.environ[GROUPS] = tempfile.mkdtemp(prefix="normbench-xdist-groups-")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(GROUPS):
        shutil.rmtree(os.environ.pop(GROUPS), ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """``--dist loadgroup`` that still groups on pytest 9.2, where pytest-xdist 3.8 marks a test's
    group by appending it to the node id, which pytest no longer lets it change
    (https://github.com/pytest-dev/pytest-xdist/issues/1386): the groups come from the workers'
    collection (``pytest_collection_modifyitems`` above) instead. Otherwise xdist's own scheduler."""
    if config.getoption("dist", "no") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class FixtureGroups(LoadGroupScheduling):
        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if "@" in nodeid.rpartition("]")[2]:  # xdist's suffix took
                return super()._split_scope(nodeid)
            if self._groups is None:
                self._groups = {k: v for part in sorted(Path(os.environ[GROUPS]).glob("*.json"))
                                for k, v in json.loads(part.read_text()).items()}
            return self._groups.get(nodeid, nodeid)

    return FixtureGroups(config, log)


SHARED = "NORMBENCH_TEST_SHARED"  # a folder `make test`'s two pytest passes share (see the Makefile)


def once(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], dict]) -> dict:
    """``make(folder)`` once, its JSON-able result: an end-to-end run that tests in several modules
    read (``normbench verify --adapters numpy``) runs once, not once per pytest-xdist worker nor once
    per pass of `make test`. The first process to ask makes it in a shared folder (``$NORMBENCH_TEST_SHARED``,
    else beside the xdist workers' own) while the others wait for it, then read it back. In a plain
    `pytest` it is a plain call."""
    if os.environ.get(SHARED):
        root = Path(os.environ[SHARED])
    elif os.environ.get("PYTEST_XDIST_WORKER"):
        root = tmp_path_factory.getbasetemp().parent  # pytest-N/, above each worker's popen-gwK/
    else:
        return make(tmp_path_factory.mktemp(name))
    made = root / name / "made.json"
    with open(root / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)  # released when fh closes
        if not made.exists():  # (where make raised there is none: the next to ask tries again)
            (root / name).mkdir(exist_ok=True)
            made.write_text(json.dumps(make(root / name)))
    return json.loads(made.read_text())


def process(done: dict) -> subprocess.CompletedProcess:
    """A finished process as ``once`` keeps it (args, returncode, stdout, stderr)."""
    return subprocess.CompletedProcess(done["args"], done["returncode"], done["stdout"], done["stderr"])


def kept(proc: subprocess.CompletedProcess) -> dict:
    return {"args": [str(a) for a in proc.args], "returncode": proc.returncode, "stdout": proc.stdout,
            "stderr": proc.stderr}


@pytest.fixture(scope="session")
def numpy_run(tmp_path_factory):
    """`normbench --adapters numpy` run once for every test that reads a real run: (process, folder)."""
    from .helpers import run_cli

    def make(folder: Path) -> dict:
        out = folder / "results"
        return {"proc": kept(run_cli("verify", "--adapters", "numpy", "-o", str(out))), "out": str(out)}

    done = once(tmp_path_factory, "numpy-run", make)
    return process(done["proc"]), Path(done["out"])


@pytest.fixture(scope="session")
def quick_bench_run(tmp_path_factory):
    """`normbench bench --in-process --quick` on numpy and torch, one thread, run once: (process, folder).
    `make test` makes it in its serial pass (tests/test_bench.py and tests/test_lock.py read it there), so no
    benchmark runs beside parallel tests."""
    from .helpers import run_cli

    def make(folder: Path) -> dict:
        out = folder / "r"
        # without the self-check: it times its own case once, where every other case has three repeats
        # (tests/test_bench.py runs it)
        proc = run_cli("bench", "--in-process", "--quick", "--adapters", "numpy,torch", "--threads", "1",
                       "-o", str(out), "--", "-k", "not test_self_check")
        return {"proc": kept(proc), "out": str(out)}

    done = once(tmp_path_factory, "quick-bench", make)
    return process(done["proc"]), Path(done["out"])


@pytest.fixture(scope="session")
def quick_bench(quick_bench_run):
    """Its results file."""
    proc, out = quick_bench_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "results.jsonl"


@pytest.fixture(scope="session")
def numpy_results(numpy_run):
    proc, out = numpy_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "results.jsonl"
