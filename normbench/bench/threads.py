"""One thread count for every framework, set before any of them starts its thread pools.

Defaults differ (torch uses all cores, ONNX Runtime one per physical core, XLA and TF
their own pools), so benchmarks set the count explicitly: environment variables before
import for the libraries that read them, and each framework's own API where it has one.
"""

from __future__ import annotations

import os
import sys

ENV_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "TF_NUM_INTRAOP_THREADS",
            "TF_NUM_INTEROP_THREADS", "NORMBENCH_THREADS")


def configure(n: int) -> None:
    """Ask every framework for ``n`` threads; must run before any framework is imported."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"thread count must be a positive integer, got {n!r}")
    loaded = [m for m in ("torch", "tensorflow", "jax", "onnxruntime") if m in sys.modules]
    if loaded:
        raise RuntimeError(f"threads must be configured before importing {', '.join(loaded)}")
    for var in ENV_VARS:
        os.environ[var] = str(n)
    os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS", ""), n)


def xla_flags(given: str, n: int) -> str:
    """``given`` XLA_FLAGS asking for ``n`` threads. XLA has no flag for its CPU pool's size (see
    `pin`); one thread turns Eigen's off. The often-quoted "intra_op_parallelism_threads=N" is no
    XLA flag: XLA stops reading XLA_FLAGS at it, so it is dropped wherever it appears (earlier
    normbench versions wrote it). A child run re-asks: one setting, not two."""
    ours = ("--xla_cpu_multi_thread_eigen=", "intra_op_parallelism_threads=")
    flags = [f for f in given.split() if not f.startswith(ours)]
    return " ".join([*flags, f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'}"])


def available() -> int:
    """CPUs this process may run on: its affinity mask, which a container or taskset narrows
    and os.cpu_count() does not see."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


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


def requested() -> int | None:
    n = os.environ.get("NORMBENCH_THREADS")
    return int(n) if n else None


def apply() -> None:
    """Apply the requested count through the APIs of frameworks that are now imported."""
    n = requested()
    if n is None:
        return
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        try:
            tf.config.threading.set_intra_op_parallelism_threads(n)
            tf.config.threading.set_inter_op_parallelism_threads(n)
        except RuntimeError:  # TF already started its pools; TF_NUM_*_THREADS set them
            pass


def report() -> dict:
    """What each imported framework actually uses, for the environment record."""
    out: dict = {"requested": requested(), "cpus": available(),
                 "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ}}
    if "XLA_FLAGS" in os.environ:
        out["env"]["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    if "jax" in sys.modules:  # its pool: one thread per CPU of the affinity mask (see `pin`)
        out["jax"] = available()
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        out["tensorflow"] = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    return out
