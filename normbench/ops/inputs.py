"""Named input generators and the seeding that makes every case reproducible from its id."""

from __future__ import annotations

import zlib
from collections.abc import Callable

import numpy as np

from .dtypes import cast

View = tuple[tuple[int, ...], tuple[int, ...]]  # (shape x is viewed as, axes normalized together)
Generator = Callable[[np.random.Generator, tuple[int, ...], View], np.ndarray]


def _per_group(rng: np.random.Generator, shape, view: View) -> np.ndarray:
    """One standard-normal value per normalized group, repeated over the group."""
    vshape, axes = view
    reduced = tuple(1 if a in axes else d for a, d in enumerate(vshape))
    return np.broadcast_to(rng.standard_normal(reduced), vshape).reshape(shape)


# Each takes (rng, shape, the op's stats view). The names are what records and reports show.
GENERATORS: dict[str, Generator] = {
    "normal": lambda rng, shape, view: rng.standard_normal(shape),
    "offset1e2": lambda rng, shape, view: 1e2 + rng.standard_normal(shape),
    "offset1e4": lambda rng, shape, view: 1e4 + rng.standard_normal(shape),
    # spread 1e-3: variance 1e-6, below the default eps, so eps dominates the denominator
    "tiny_variance": lambda rng, shape, view: 1 + 1e-3 * rng.standard_normal(shape),
    # variance exactly 0 in every normalized group: the output must be β, and finite
    "constant": lambda rng, shape, view: _per_group(rng, shape, view),
    # near the float16 limit (65504): a float16 sum, or a float16 x², overflows
    "large": lambda rng, shape, view: rng.uniform(-6e4, 6e4, shape),
    # multiples of 2⁻¹⁰ below 8: exact in float32 even after ×2ᵏ and +integer shifts
    "quantized": lambda rng, shape, view: np.clip(np.round(rng.standard_normal(shape) * 1024), -8191, 8191)
    / 1024,
}


SHIFTED = "shifted"  # parametric inputs: "shifted:<offset>:<scale>", offset + scale·N(0, 1)


def _number(value: float) -> str:
    """The shortest text that reads back as exactly ``value`` (``:g`` where it round-trips)."""
    text = f"{value:g}"
    return text if float(text) == value else repr(float(value))


def shifted(offset: float, scale: float) -> str:
    """The input name of ``offset + scale·N(0, 1)``: the numbers live in the name, so a case id
    (and a record's ``input``) regenerates exactly these values, with no side channel."""
    offset, scale = float(offset) + 0.0, float(scale)  # + 0.0: -0.0 is spelled 0
    if not (np.isfinite(offset) and np.isfinite(scale) and scale > 0):
        raise ValueError(f"a shifted input needs a finite offset and a finite scale > 0, got {offset!r}, {scale!r}")
    return f"{SHIFTED}:{_number(offset)}:{_number(scale)}"


def parse_shifted(name: str) -> tuple[float, float] | None:
    """(offset, scale) of a shifted input's name; None for any other name. Only the canonical
    spelling (what :func:`shifted` writes) parses, so one input has one name and one case id."""
    kind, _, rest = str(name).partition(":")
    offset, _, scale = rest.partition(":")
    if kind != SHIFTED:
        return None
    try:
        values = float(offset), float(scale)
        canonical = shifted(*values)
    except ValueError:
        return None
    return values if canonical == name else None


def _generator(name: str) -> Generator:
    if name in GENERATORS:
        return GENERATORS[name]
    found = parse_shifted(name)
    if found is None:
        raise ValueError(f"unknown input generator {name!r}; known: {', '.join(GENERATORS)}, "
                         f"or {SHIFTED}:<offset>:<scale> (e.g. {shifted(1e4, 1)})")
    offset, scale = found
    return lambda rng, shape, view: offset + scale * rng.standard_normal(shape)


def seed_for(case_id: str) -> int:
    """A stable 32-bit seed derived from the case id (same id, same inputs, any machine)."""
    return zlib.crc32(case_id.encode())


def make(name: str, shape: tuple[int, ...], dtype: str, seed: int, view: View | None = None) -> np.ndarray:
    """Input ``name`` (a generator's name, or a :func:`shifted` one) of ``shape``, rounded to
    ``dtype``; ``view`` (``NormSpec.stats_view``) says which values are normalized together, for
    inputs built per group."""
    generate = _generator(name)
    shape = tuple(shape)
    return cast(generate(np.random.default_rng(seed), shape, view or (shape, ())), dtype)


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


def tangents(shape: tuple[int, ...], pshape: tuple[int, ...], dtype: str, seed: int) -> dict[str, np.ndarray]:
    """Directions for forward-mode (tx, tγ, tβ) and second-order (v) derivatives."""
    rng = np.random.default_rng([seed, 4])
    return {"tx": cast(rng.standard_normal(shape), dtype), "tgamma": cast(rng.standard_normal(pshape), dtype),
            "tbeta": cast(rng.standard_normal(pshape), dtype), "v": cast(rng.standard_normal(shape), dtype)}


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


def scaled_shifted(case, x: np.ndarray) -> np.ndarray:
    """a·x + b with a > 0 a power of two and b an integer, each constant over a normalized
    group (b = 0 where the op does not centre), exact in the tested dtype: the input of the
    metamorphic scale-shift check (``case`` is an ``ops.case.Case``)."""
    spec = case.spec
    rng = np.random.default_rng([case.seed, 4])
    view, axes = spec.stats_view(x.shape)
    groups = tuple(1 if a in axes else d for a, d in enumerate(view))
    a, b = 2.0 ** rng.integers(-2, 4, groups), rng.integers(-64, 65, groups).astype(np.float64)
    if not spec.kind.shift_invariant:
        b = np.zeros_like(b)
    a, b = (np.broadcast_to(v, view).reshape(x.shape) for v in (a, b))
    x64 = np.asarray(x, np.float64)
    x2 = cast(a * x64 + b, case.dtype)
    if not np.array_equal(np.asarray(x2, np.float64), a * x64 + b):
        raise ValueError(f"the scaled input is not exact in {case.dtype}")
    return x2
