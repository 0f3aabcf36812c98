"""The verification processes keep what JAX, TensorFlow's XLA and Inductor compiled in one cache across
runs (the user's, or ``--compile-cache``): a rerun reads its compiles back and its records are the same;
a variable the user set is theirs; `normbench run` passes the folder to every verification process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from normbench import plugin
from normbench.adapters import compile_cache, registry
from normbench.running import runner
from normbench.running.job import plan

from .helpers import run_cli

# one adapter per compiler, each on a few cases of the short matrix (LayerNorm, its constant rows)
COMPILERS = [("flax.linen", "jax", "full"), ("tf_keras+xla", "tensorflow-xla", "short"),
             ("torch+inductor", "inductor", "short")]


def _entries(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()} if folder.exists() else set()


def _records(results: Path) -> tuple[dict, dict]:
    lines = [json.loads(line) for line in results.read_text().splitlines()]
    rows = {(r["case"], r["check"], r["adapter"]): (r["outcome"], r.get("max_abs_err")) for r in lines[1:]}
    return lines[0], rows


@pytest.mark.parametrize(("adapter", "folder", "matrix"), COMPILERS)
def test_a_rerun_reads_its_compiles_back_and_gets_the_same_records(tmp_path, adapter, folder, matrix):
    if registry.get(adapter).missing():
        pytest.skip(f"{adapter} is not installed")
    cache = tmp_path / "cache"
    runs = []
    for name in ("cold", "warm"):
        proc = run_cli("verify", "--adapters", adapter, "--matrix", matrix, "--suites", "agreement",
                       "--compile-cache", str(cache), "-o", str(tmp_path / name), "--no-report", "--",
                       "-k", "test_forward_train and layer_norm and 8x16 and float32")
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
        runs.append((_records(tmp_path / name / "results.jsonl"), _entries(cache / folder)))
    (env, cold), stored = runs[0]
    (_, warm), again = runs[1]
    assert cold and warm == cold  # the same outcomes and errors, to the last bit
    assert stored and again == stored  # every compile of the rerun was a read
    assert str(cache / folder) in " ".join(env["compile_caches"].values())


def test_the_users_own_cache_settings_are_kept_and_a_named_folder_replaces_them(tmp_path, monkeypatch):
    users = {"JAX_COMPILATION_CACHE_DIR": "/mine/jax", "TF_XLA_FLAGS": "--tf_xla_auto_jit=0",
             "TORCHINDUCTOR_CACHE_DIR": "/mine/inductor"}
    kept = compile_cache.environ(users, tmp_path)
    assert "JAX_COMPILATION_CACHE_DIR" not in kept and "TORCHINDUCTOR_CACHE_DIR" not in kept
    assert kept["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={tmp_path}/tensorflow-xla"
    named = compile_cache.environ(users, tmp_path, keep=False)
    assert named["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "jax")
    assert named["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] == "0"  # a norm compiles in ~0.1 s: keep them all
    assert named["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "inductor")
    assert set(compile_cache.variables()) >= set(users)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache.default_folder() == tmp_path / "xdg" / "normbench" / "compile"  # never the working directory


def test_run_passes_its_compile_cache_to_every_verification_process(tmp_path):
    adapters = registry.select("numpy,torch")
    opts = runner.Options(suites=(*runner.VERIFY_SUITES, runner.SYNC_SUITE), compile_cache=str(tmp_path))
    jobs = runner.jobs(plan(adapters), tmp_path, opts)
    checked = [j for j in jobs if j.phase in ("verify", "sync")]
    assert checked and all(j.command[j.command.index("--compile-cache") + 1] == str(tmp_path) for j in checked)
    assert all("--compile-cache" not in j.command for j in jobs if j.phase == "bench")
    default = runner.jobs(plan(adapters), tmp_path, runner.Options())
    assert all("--compile-cache" not in j.command for j in default)  # each verify process takes the user's cache


def _caches_of(tmp_path: Path, target: str, *args: str) -> dict:
    """The compile caches a plain `pytest --pyargs <target>` session records, with no cache variable set."""
    env = {k: v for k, v in os.environ.items() if k not in compile_cache.variables() and not k.startswith("PYTEST_")}
    env["XDG_CACHE_HOME"] = str(tmp_path / "xdg")
    results = tmp_path / f"{target}.jsonl"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", target, "--adapters", "numpy", "--results",
                           str(results), "-p", "no:cacheprovider", "-q", *args], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return _records(results)[0]["compile_caches"]


def test_plain_pytest_of_the_suites_shares_the_users_cache_as_verify_does(tmp_path):
    """`pytest --pyargs normbench.suites` is a documented way to verify: its compiles are kept as `verify`'s are."""
    caches = _caches_of(tmp_path, "normbench.suites.test_agreement", "-k", "forward_train and layer_norm-8x16-float32")
    assert caches["JAX_COMPILATION_CACHE_DIR"] == str(tmp_path / "xdg" / "normbench" / "compile" / "jax")
    assert caches["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "xdg" / "normbench" / "compile" / "inductor")


def test_a_benchmark_session_never_shares_it():
    """A benchmark's first call is a compile, never a read (README, Compile caches)."""
    assert plugin.shares_compile_cache(["normbench.suites"], modules={})
    assert plugin.shares_compile_cache(["normbench.suites.test_agreement", "normbench.suites.search"], modules={})
    assert not plugin.shares_compile_cache(["normbench.suites.speed"], modules={})
    assert not plugin.shares_compile_cache(["normbench.suites", "normbench.suites.speed"], modules={})
    assert not plugin.shares_compile_cache(["tests"], modules={})  # a project's own tests: not a verification
    assert not plugin.shares_compile_cache(["normbench.suites"], modules={"jax": object()})  # too late: read at import
