"""One thread count for every framework: what each is asked, and that JAX, which takes no
flag for it, really keeps to it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from normbench.adapters.flax.threads import xla_flags
from normbench.bench import threads

from .helpers import run_cli

# A LayerNorm big enough that XLA splits it over its pool, timed for a second in a fresh process.
JAX_LOAD = """
import json, os, time
from normbench.bench import threads
threads.configure(1)
kept = threads.pin()
import jax, jax.numpy as jnp
x = jax.random.normal(jax.random.key(0), (2048, 8192), jnp.float32)
f = jax.jit(lambda x: (x - x.mean(-1, keepdims=True)) * jax.lax.rsqrt(x.var(-1, keepdims=True) + 1e-5))
f(x).block_until_ready()
w0, c0 = time.perf_counter(), time.process_time()
while time.perf_counter() - w0 < 1:
    f(x).block_until_ready()
print(json.dumps({"kept": kept, "cpus": len(os.sched_getaffinity(0)), "xla": os.environ["XLA_FLAGS"],
                  "cpu_per_wall": (time.process_time() - c0) / (time.perf_counter() - w0)}))
"""

several_cpus = pytest.mark.skipif(threads.available() < 2, reason="needs two CPUs to ask for fewer")


def test_xla_flags_hold_only_flags_xla_reads():
    """XLA stops reading XLA_FLAGS at a token without "--": the folk recipe's
    intra_op_parallelism_threads=N is dropped, wherever it stood, and a user's flags kept."""
    user = "intra_op_parallelism_threads=4 --xla_force_host_platform_device_count=4"
    once = xla_flags(user, 1)
    assert once == "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=false"
    assert xla_flags(once, 3) == "--xla_force_host_platform_device_count=4 --xla_cpu_multi_thread_eigen=true"


def test_configure_sets_every_variable_before_any_framework_starts():
    code = ("import os; from normbench.bench import threads;"
            " os.environ['XLA_FLAGS'] = 'intra_op_parallelism_threads=4'; threads.configure(3);"
            " print(os.environ['XLA_FLAGS'], os.environ['OMP_NUM_THREADS'], os.environ['NORMBENCH_THREADS'])")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split() == ["--xla_cpu_multi_thread_eigen=true", "3", "3"]


def test_pin_keeps_the_cpus_asked_for_and_nothing_more(monkeypatch):
    monkeypatch.delenv("NORMBENCH_THREADS", raising=False)
    assert threads.pin() is None  # nothing asked: nothing changed
    monkeypatch.setenv("NORMBENCH_THREADS", str(threads.available()))
    assert threads.pin() is None  # every CPU asked for: nothing changed
    assert threads.available() == len(os.sched_getaffinity(0))


@pytest.mark.serial
@several_cpus
def test_jax_keeps_to_one_thread_when_one_is_asked_for():
    """Without the pin, XLA ran this LayerNorm on every core (1.7 CPU-seconds per second on 2
    cores) while the other frameworks used one. Pinned, the process cannot use more than one."""
    proc = subprocess.run([sys.executable, "-c", JAX_LOAD], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["kept"] == sorted(os.sched_getaffinity(0))[:1] and got["cpus"] == 1
    assert got["xla"] == "--xla_cpu_multi_thread_eigen=false"
    assert got["cpu_per_wall"] <= 1.05  # one CPU: no more CPU time than wall time (scheduler accounting slack)


@pytest.mark.serial
@several_cpus
def test_benchmarks_with_fewer_threads_record_the_cpus_they_kept(tmp_path):
    from normbench.results import records

    out = tmp_path / "r"
    proc = run_cli("bench", "--in-process", "--quick", "--adapters", "flax.linen", "--threads", "1", "--no-sweeps",
                   "--repeats", "1",
                   "-o", str(out), "--", "-k", "not test_self_check and layer_norm")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    env, rows = records.read(out / "results.jsonl")
    assert env["pinned_cpus"] == sorted(os.sched_getaffinity(0))[:1]
    timed = [r for r in rows if r["suite"] == "speed" and r["outcome"] == "pass" and "median_s" in r]
    assert timed and all(r["threads"]["cpus"] == 1 and r["threads"]["jax"] == 1 for r in timed)
    assert f"pinned to CPU {env['pinned_cpus'][0]} (XLA sizes its pool by the affinity mask)" in (
        out / "report.md").read_text()
