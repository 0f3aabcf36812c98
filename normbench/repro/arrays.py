"""A case's arrays written into a script exactly.

Every tested dtype's values are float64 values too (the case rounds float64 draws to its dtype), so a script
holds them as float64 and each framework's layer casts them to the tested dtype, which is exact: a short array
as a literal list, a longer one as base64 of its little-endian bytes.
"""

from __future__ import annotations

import base64
import textwrap

import numpy as np

from ..adapters.repro import py

SHORT = 48  # arrays up to this many values are written as lists people can read
WIDTH = 96  # characters of base64 per line

HELPER = '''
def array(shape, data):
    """float64 values from their little-endian bytes (``data``, base64), in ``shape``."""
    return np.frombuffer(base64.b64decode(data), "<f8").reshape(shape).copy()
'''


def embed(name: str, a: np.ndarray | None) -> tuple[str, bool]:
    """(``name = ...``, whether it needs ``HELPER``) for ``a``: None, a bool mask, or float values."""
    if a is None:
        return f"{name} = None", False
    a = np.asarray(a)
    if a.dtype == bool:
        return f"{name} = np.array({a.tolist()!r}, dtype=bool)", False
    a = a.astype(np.float64)
    if a.size <= SHORT or not np.isfinite(a).all():
        if a.size > SHORT:  # non-finite values in a long array: a literal list still reads back exactly
            return f"{name} = np.array({py(a.ravel().tolist())}).reshape({py(a.shape)})", False
        values = textwrap.fill(py(a.ravel().tolist()), WIDTH, subsequent_indent="    ", break_long_words=False)
        return f"{name} = np.array({values}, dtype=np.float64).reshape({py(a.shape)})", False
    data = base64.b64encode(a.astype("<f8").tobytes()).decode()
    chunks = "\n".join(f'    "{data[i:i + WIDTH]}"' for i in range(0, len(data), WIDTH))
    return f"{name} = array({py(a.shape)},\n{chunks})", True
