"""JAX's CPU pool: XLA has no flag for its size (it follows the affinity mask: ``bench.threads.pin``);
one thread turns Eigen's multi-threading off through XLA_FLAGS, before JAX starts."""

from __future__ import annotations

import os
import sys

from ..threads import available

MODULES = ("jax",)
ENV_VARS: tuple[str, ...] = ()


def configure(n: int) -> None:
    os.environ["XLA_FLAGS"] = xla_flags(os.environ.get("XLA_FLAGS", ""), n)


def xla_flags(given: str, n: int) -> str:
    """``given`` XLA_FLAGS asking for ``n`` threads. XLA has no flag for its CPU pool's size (see
    `pin`); one thread turns Eigen's off. The often-quoted "intra_op_parallelism_threads=N" is no
    XLA flag: XLA stops reading XLA_FLAGS at it, so it is dropped wherever it appears (earlier
    normbench versions wrote it). A child run re-asks: one setting, not two."""
    ours = ("--xla_cpu_multi_thread_eigen=", "intra_op_parallelism_threads=")
    flags = [f for f in given.split() if not f.startswith(ours)]
    return " ".join([*flags, f"--xla_cpu_multi_thread_eigen={'true' if n > 1 else 'false'}"])


def report() -> dict:
    return {"jax": available()} if "jax" in sys.modules else {}  # its pool: one thread per CPU of the affinity mask
