"""The case matrix the suites and the project's own tests share."""

from __future__ import annotations

from .checks import Case
from .spec import NormSpec

SHAPES = ((8, 16), (4, 6, 10), (2, 3, 5, 7))


def layer_norm_cases(dtype: str = "float32", input: str = "normal") -> list[Case]:
    """LayerNorm over the last axis, and over the last two where the rank allows."""
    out = []
    for shape in SHAPES:
        for k in range(1, min(2, len(shape) - 1) + 1):
            out.append(Case(NormSpec("layer_norm", normalized_ndim=k), shape, dtype, input))
    return out


def batch_norm_cases(dtype: str = "float32", input: str = "normal") -> list[Case]:
    """BatchNorm on 2-D, 3-D and 4-D inputs, in both layouts where the layout means something."""
    out = []
    for shape in SHAPES:
        layouts = ("channels_first",) if len(shape) == 2 else ("channels_first", "channels_last")
        out += [Case(NormSpec("batch_norm", layout=lay), shape, dtype, input) for lay in layouts]
    return out


def masked_batch_norm_cases(dtype: str = "float32", input: str = "normal") -> list[Case]:
    """Padded (batch, time, channels) sequences and a 2-D batch with masked-out rows."""
    return [
        Case(NormSpec("batch_norm", layout="channels_last"), (4, 6, 10), dtype, input, masked=True),
        Case(NormSpec("batch_norm", layout="channels_last"), (2, 3, 5, 7), dtype, input, masked=True),
        Case(NormSpec("batch_norm"), (8, 16), dtype, input, masked=True),
    ]
