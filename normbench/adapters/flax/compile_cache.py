"""JAX's persistent compilation cache (flax and keras[jax] alike: one per process). JAX stores only
compiles over a second by default; a norm compiles in ~0.1 s, so every compile is stored."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

FOLDER = "jax"
VARIABLES = ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
             "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES")


def environ(given: Mapping[str, str], folder: Path, keep: bool = True) -> dict[str, str]:
    if keep and VARIABLES[0] in given:
        return {}
    return dict(zip(VARIABLES, (str(folder / FOLDER), "0", "0"), strict=True))
