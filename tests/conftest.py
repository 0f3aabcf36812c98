from __future__ import annotations

import os

import pytest

from normbench.adapters import registry

BUILTIN = list(registry.BUILTIN)


@pytest.fixture(params=BUILTIN)
def builtin_adapter(request):
    """Each built-in adapter; a missing framework skips, or fails where all are required."""
    adapter = registry.get(request.param)
    missing = adapter.missing()
    if missing:
        message = f"{adapter.name}: not installed: {adapter.install_hint()}"
        if os.environ.get("NORMBENCH_REQUIRE_ALL"):
            pytest.fail(message + " (NORMBENCH_REQUIRE_ALL is set)")
        pytest.skip(message)
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
    proc = run_cli("bench", "--quick", "--adapters", "numpy,torch", "-o", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "results.jsonl"


@pytest.fixture(scope="session")
def numpy_results(numpy_run):
    proc, out = numpy_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out / "results.jsonl"
