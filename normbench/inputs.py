"""Named input generators and the seeding that makes every case reproducible from its id."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from .dtypes import cast

Generator = Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]

GENERATORS: dict[str, Generator] = {
    "normal": lambda rng, shape: rng.standard_normal(shape),
    "offset1e2": lambda rng, shape: 1e2 + rng.standard_normal(shape),
    "offset1e4": lambda rng, shape: 1e4 + rng.standard_normal(shape),
}


def seed_for(case_id: str) -> int:
    """A stable 32-bit seed derived from the case id (same id, same inputs, any machine)."""
    return zlib.crc32(case_id.encode())


def make(name: str, shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """Input ``name`` of ``shape``, rounded to ``dtype``."""
    if name not in GENERATORS:
        raise ValueError(f"unknown input generator {name!r}; known: {', '.join(GENERATORS)}")
    return cast(GENERATORS[name](np.random.default_rng(seed), tuple(shape)), dtype)


def params(shape: tuple[int, ...], dtype: str, seed: int) -> dict[str, np.ndarray]:
    """Non-trivial γ, β, running statistics and an upstream gradient for one case."""
    rng = np.random.default_rng([seed, 1])
    return {
        "gamma": cast(1 + 0.5 * rng.standard_normal(shape), dtype),
        "beta": cast(0.5 * rng.standard_normal(shape), dtype),
        "running_mean": cast(0.5 * rng.standard_normal(shape), dtype),
        "running_var": cast(rng.uniform(0.5, 2.0, shape), dtype),
    }


def upstream(shape: tuple[int, ...], dtype: str, seed: int) -> np.ndarray:
    """The upstream gradient dy fed to a VJP."""
    return cast(np.random.default_rng([seed, 2]).standard_normal(shape), dtype)
