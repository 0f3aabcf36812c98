from __future__ import annotations

import os

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


@pytest.fixture(scope="session")
def numpy_run(tmp_path_factory):
    """`normbench --adapters numpy` run once for every test that reads a real run: (process, folder)."""
    from .helpers import run_cli

    out = tmp_path_factory.mktemp("run") / "results"
    return run_cli("verify", "--adapters", "numpy", "-o", str(out)), out


@pytest.fixture(scope="session")
def quick_bench(tmp_path_factory):
    """`normbench bench --quick` on numpy and torch, run once: its results file."""
    from .helpers import run_cli

    out = tmp_path_factory.mktemp("bench") / "r"
    # without the self-check, whose verdict depends on the machine's load (tests/test_bench.py has it)
    proc = run_cli("bench", "--quick", "--adapters", "numpy,torch", "-o", str(out), "--", "-k", "not test_self_check")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "results.jsonl"


@pytest.fixture(scope="session")
def numpy_results(numpy_run):
    proc, out = numpy_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "results.jsonl"
