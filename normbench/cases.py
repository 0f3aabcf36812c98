"""The case matrices the suites and the project's own tests share.

Stress inputs reuse the shapes of the ordinary cases, so frameworks that compile per shape
(JAX) compile each layer configuration once and the matrix stays quick on two cores.
"""

from __future__ import annotations

from .checks import Case
from .spec import NormSpec

SHAPES = ((8, 16), (4, 6, 10), (2, 3, 5, 7))
DTYPES = ("float32", "float64", "float16", "bfloat16")
STRESS = ("offset1e2", "offset1e4", "tiny_variance", "constant", "large")
LN = NormSpec("layer_norm")
BN_LAST = NormSpec("batch_norm", layout="channels_last")


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
        Case(BN_LAST, (4, 6, 10), dtype, input, masked=True),
        Case(BN_LAST, (2, 3, 5, 7), dtype, input, masked=True),
        Case(NormSpec("batch_norm"), (8, 16), dtype, input, masked=True),
        Case(NormSpec("batch_norm"), (4, 10, 6), dtype, input, masked=True),
    ]


def agreement_cases() -> list[Case]:
    """Every dtype on ordinary inputs and on inputs that stress the numerics, plus
    non-default eps, momentum and affine settings."""
    out = []
    for dtype in DTYPES:
        out += layer_norm_cases(dtype) + batch_norm_cases(dtype)
        for name in STRESS:
            out += [Case(LN, (8, 16), dtype, name), Case(BN_LAST, (4, 6, 10), dtype, name)]
    out += [
        Case(NormSpec("layer_norm", eps=0.1), (8, 16)),
        Case(NormSpec("layer_norm", affine=False), (4, 6, 10)),
        Case(NormSpec("batch_norm", eps=0.1, momentum=0.3), (4, 6, 10)),
        Case(NormSpec("batch_norm", eps=1e-3, affine=False), (2, 3, 5, 7)),
    ]
    return out + masked_batch_norm_cases() + masked_batch_norm_cases("float64")


def metamorphic_cases() -> list[Case]:
    """A negligible eps (2⁻⁸⁰; torch refuses 0) and exactly representable inputs, so the
    invariances hold to below float64 rounding."""
    return [
        Case(NormSpec(op, eps=2.0**-80, layout="channels_last"), shape, dtype, "quantized")
        for dtype in ("float32", "float64")
        for op, shape in (("layer_norm", (8, 16)), ("batch_norm", (4, 6, 10)))
    ]


def train_eval_cases() -> list[Case]:
    return [Case(NormSpec("batch_norm"), (8, 16)), Case(BN_LAST, (4, 6, 10))]


def sequence_cases(pad: str, masked: bool = False) -> list[Case]:
    """(batch, time, channels) sequences of random lengths, padded with ``pad``."""
    spec = BN_LAST if masked else LN
    return [Case(spec, (4, 9, 8), pad=pad, masked=masked)]
