"""Where the compilers keep what they compiled: one folder, whose subfolders each framework package
names in its ``compile_cache`` module (``VARIABLES`` it sets, ``environ(given, folder)`` the values).

Verification processes share the user's cache across runs (``default_folder``): a compiled program
is the same executable whether it was compiled now or read back, so the checks see the same numbers
(flax.linen's LayerNorm and RMSNorm checks, 423 records, were identical cold and warm) while a rerun
skips most of its compiles (JAX's, TensorFlow's XLA and Inductor's). A variable the user has set is
theirs and kept. Benchmark contenders get a folder of their own that starts empty
(``bench.conductor``): their first calls are compiles, not reads.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from .framework import modules


def default_folder() -> Path:
    """The user's cache (``$XDG_CACHE_HOME``, else ``~/.cache``), never the working directory."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "normbench" / "compile"


def variables() -> tuple[str, ...]:
    """Every variable a framework's compile cache is set through (for the environment record)."""
    return tuple(dict.fromkeys(v for m in modules("compile_cache") for v in m.VARIABLES))


def environ(given: Mapping[str, str], folder: Path, keep: bool = True) -> dict[str, str]:
    """The variables that send every framework's compiles to its subfolder of ``folder``; where the
    user has set one already, theirs is kept (``keep``; a benchmark contender's is replaced)."""
    out: dict[str, str] = {}
    for setup in modules("compile_cache"):
        out.update(setup.environ(given, folder, keep))
    return out
