"""Dtype names shared by every adapter: numpy has no bfloat16, so it comes from ml_dtypes."""

from __future__ import annotations

import numpy as np

DTYPES = ("float64", "float32", "float16", "bfloat16")


def resolve(name: str) -> np.dtype:
    """The numpy dtype for a normbench dtype name."""
    if name not in DTYPES:
        raise ValueError(f"unknown dtype {name!r}; expected one of {', '.join(DTYPES)}")
    if name == "bfloat16":
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)
    return np.dtype(name)


def machine_eps(name: str) -> float:
    """Distance from 1.0 to the next representable number (2**-23 for float32)."""
    if name == "bfloat16":
        return 2.0**-7
    return float(np.finfo(resolve(name)).eps)


def overflow_threshold(name: str) -> float:
    """Smallest magnitude that rounds to inf: the largest finite value plus half its ulp
    (65520 for float16, whose largest finite value is 65504)."""
    if name == "bfloat16":
        import ml_dtypes

        largest = float(ml_dtypes.finfo(ml_dtypes.bfloat16).max)
    else:
        largest = float(np.finfo(resolve(name)).max)
    eps = machine_eps(name)
    return largest * (1 + eps / (2 * (2 - eps)))


def cast(x: np.ndarray, name: str) -> np.ndarray:
    """Round to the tested dtype; the oracle then works on exactly these values."""
    return np.asarray(x).astype(resolve(name))
