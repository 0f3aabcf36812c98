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
    # XLA (JAX) reads its CPU thread pool size from XLA_FLAGS at backend start.
    ours = ("--xla_cpu_multi_thread_eigen=", "intra_op_parallelism_threads=")
    flags = [f for f in os.environ.get("XLA_FLAGS", "").split() if not f.startswith(ours)]  # a child run re-asks
    flags += [f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'}", f"intra_op_parallelism_threads={n}"]
    os.environ["XLA_FLAGS"] = " ".join(flags)


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
    out: dict = {"requested": requested(), "env": {k: os.environ[k] for k in ENV_VARS if k in os.environ}}
    if "XLA_FLAGS" in os.environ:
        out["env"]["XLA_FLAGS"] = os.environ["XLA_FLAGS"]
    if "torch" in sys.modules:
        out["torch"] = sys.modules["torch"].get_num_threads()
    if "tensorflow" in sys.modules:
        tf = sys.modules["tensorflow"]
        out["tensorflow"] = tf.config.threading.get_intra_op_parallelism_threads() or "default"
    return out
