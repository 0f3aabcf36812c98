"""One thread count for every framework, set before any of them starts its thread pools.

Defaults differ (torch uses all cores, ONNX Runtime one per physical core, XLA and TF
their own pools), so benchmarks set the count explicitly: environment variables before
import for the libraries that read them, and each framework's own API where it has one.
"""

from __future__ import annotations

import os
import sys

from ..adapters.threads import apply, available, requested, setups

__all__ = ["ENV_VARS", "apply", "available", "configure", "pin", "report", "requested"]

# The BLAS/OpenMP pools every framework links, each framework's own variables (its package's
# ``threads`` module), and normbench's, which the frameworks' APIs and ONNX Runtime's sessions read.
ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            *(v for setup in setups() for v in setup.ENV_VARS), "NORMBENCH_THREADS")


def configure(n: int) -> None:
    """Ask every framework for ``n`` threads; must run before any framework is imported."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"thread count must be a positive integer, got {n!r}")
    loaded = [m for setup in setups() for m in setup.MODULES if m in sys.modules]
    if loaded:
        raise RuntimeError(f"threads must be configured before importing {', '.join(loaded)}")
    for var in ENV_VARS:
        os.environ[var] = str(n)
    for setup in setups():
        if hasattr(setup, "configure"):
            setup.configure(n)


def pin() -> list[int] | None:
    """Keep this process (and its children) on the first ``requested()`` CPUs it may use, where
    fewer are asked for than it has; the CPUs it keeps, or None where nothing changed.

    XLA sizes its CPU thread pool by the affinity mask and offers no flag for it (jax-ml/jax#1539),
    so without this JAX would time on every core while the others use N threads. Must run before
    JAX starts its CPU backend; the benchmark process calls it first thing.
    """
    n = requested()
    if n is None or not hasattr(os, "sched_setaffinity"):
        return None
    cpus = sorted(os.sched_getaffinity(0))
    if n >= len(cpus):
        return None
    os.sched_setaffinity(0, cpus[:n])
    return cpus[:n]


def report() -> dict:
    """What each imported framework actually uses, for the environment record."""
    out: dict = {"requested": requested(), "cpus": available(),
                 "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ}}
    if "XLA_FLAGS" in os.environ:
        out["env"]["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    for setup in setups():
        if hasattr(setup, "report"):
            out.update(setup.report())
    return out
