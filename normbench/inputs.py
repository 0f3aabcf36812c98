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


def mask(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """A BatchNorm mask shaped like padded sequences: along axis 1 each row keeps a prefix
    of random length (at least one position), so every statistic covers some values."""
    rng = np.random.default_rng([seed, 3])
    out = np.zeros(shape, bool)
    if len(shape) == 1:
        out[: rng.integers(1, shape[0] + 1)] = True
        return out
    lengths = rng.integers(1, shape[1] + 1, size=shape[0])
    for row, n in enumerate(lengths):
        out[row, :n] = True
    return out
