"""Hypothesis strategies over the case space of every op, for the adapter under test.

What is drawn, in an order that shrinks toward the ordinary case (float32, small shapes, default
eps, affine, mean 0 and std 1):

- dtype: those the adapter supports (float32 first);
- rank: those the op accepts, 2 to 4 (asked of the op's ``check_shape``);
- shape: every axis small (1 to 4), except at most one "long" axis of up to 4096 (half the time
  one the normalized groups span), drawn uniformly, from the top quarter, odd from the top
  quarter, or around powers of two (2ᵏ − 1, 2ᵏ, 2ᵏ + 1), under 2¹⁷ elements in all; batch sizes
  and sequence lengths are axes like any other, so a normalized size that is odd and above 1000
  is one long axis away;
- the spec fields the op says apply (``Op.fields``): eps (1e-5, or m·10⁻ᵉ for m in 1..9, e in
  0..12), affine, layout (those the adapter supports), normalized_ndim, groups (a divisor of the
  channels), running_stats, momentum (where statistics are kept);
- a mask, where the op takes one and the adapter passes it;
- the input: a named generator (``normal``, the stress inputs) or ``shifted:<offset>:<scale>``
  with offsets 0 or ±m·10ᵉ and scales m·10ᵉ, bounded so the dtype holds the values.

Every case is a plain ``Case``: its id regenerates its arrays (``Case.from_record``). Cases
whose statistics cover a single value are left out: what a layer does there is behaviour the
batch_size_one suite records, not agreement.
"""

from __future__ import annotations

import math
from functools import cache

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st

from ..adapters.base import Adapter
from ..ops import inputs
from ..ops.base import DTYPES, Op
from ..ops.case import Case
from ..ops.dtypes import overflow_threshold
from ..ops.spec import LAYOUTS, NormSpec

RANKS = (2, 3, 4)
SMALL = 4  # short axes: 1 to SMALL (batch 1 included)
LONG = 4096  # the one long axis: up to this
MAX_ELEMENTS = 1 << 17
EDGES = tuple(sorted({2**k + d for k in range(2, 13) for d in (-1, 0, 1)}))
NAMED = ("normal", "offset1e2", "offset1e4", "tiny_variance", "constant", "large")
EPS_DEFAULT = NormSpec.eps
MOMENTA = (NormSpec.momentum, 0.01, 0.3, 0.5, 0.9, 1.0)


def _probe_spec(op: Op) -> NormSpec:
    """The op's default spec, with the fields it cannot leave unset (GroupNorm's groups) at 1."""
    return NormSpec(op.name, **({"groups": 1} if "groups" in op.fields else {}))


@cache
def ranks(op: Op) -> tuple[int, ...]:
    """The ranks of RANKS the op takes, asked of its own shape rule."""
    spec, out = _probe_spec(op), []
    for rank in RANKS:
        try:
            spec.check_shape((2,) * rank)
        except ValueError:
            continue
        out.append(rank)
    return tuple(out)


def long_sizes(cap: int) -> st.SearchStrategy[int]:
    """A long axis: uniform; in the top quarter (rounding errors grow with the reduction size); odd
    there too (a vectorised kernel leaves a tail); or next to a power of two (where kernels switch
    paths)."""
    edges = [e for e in EDGES if e <= cap]
    top = st.integers(max(1, cap // 4), cap)
    odd = top.map(lambda v: min(v | 1, cap - 1 + cap % 2))
    return st.one_of(st.integers(1, cap), top, odd, *([st.sampled_from(edges)] if edges else []))


def eps_values() -> st.SearchStrategy[float]:
    """1e-5 (the default), or m·10⁻ᵉ: values a case id's ``eps{:g}`` spells exactly."""
    other = st.builds(lambda m, e: float(f"{m}e-{e}"), st.integers(1, 9), st.integers(0, 12))
    return st.one_of(st.just(EPS_DEFAULT), other)


def _decimal(m: int, e: int) -> float:
    return float(f"{m}e{e}")


def input_names(dtype: str) -> st.SearchStrategy[str]:
    """A named generator, or ``shifted:<offset>:<scale>`` whose values the dtype holds: offsets of
    up to 1e6 and scales of 1e-6 to 1e3, both below a fifth of the dtype's overflow threshold."""
    top = max(0, min(6, math.floor(math.log10(overflow_threshold(dtype) / 5)) - 1))
    offset = st.one_of(st.just(0.0), st.builds(lambda s, m, e: s * _decimal(m, e), st.sampled_from((1, -1)),
                                               st.integers(1, 9), st.integers(0, top)))
    scale = st.one_of(st.just(1.0), st.builds(_decimal, st.integers(1, 9), st.integers(-6, min(3, top))))
    shifted = st.builds(inputs.shifted, offset, scale)
    return st.one_of(st.sampled_from(NAMED), shifted)


def _ordered(allowed, order) -> list:
    return [x for x in order if x in allowed]


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def reduced_axes(spec: NormSpec, rank: int) -> tuple[int, ...]:
    """The axes a normalized group spans, asked of the op's geometry: doubling such an axis doubles
    the group size."""
    base = (2,) * rank
    n = spec.kind.group_size(spec, base)
    return tuple(a for a in range(rank) if spec.kind.group_size(spec, base[:a] + (4,) + base[a + 1:]) == 2 * n)


@st.composite
def _shape(draw, spec: NormSpec, rank: int) -> tuple[int, ...]:
    """Short axes, and at most one long one: none (which shrinks first), any axis, or, as often, an
    axis the normalized groups span, so that long reductions are common."""
    dims = [draw(st.integers(1, SMALL)) for _ in range(rank)]
    long_axis = draw(st.one_of(st.integers(0, rank).map(lambda i: i - 1),
                               st.sampled_from(reduced_axes(spec, rank))))
    if long_axis >= 0:
        rest = math.prod(d for a, d in enumerate(dims) if a != long_axis)
        dims[long_axis] = draw(long_sizes(max(1, min(LONG, MAX_ELEMENTS // rest))))
    return tuple(dims)


@st.composite
def cases(draw, adapter: Adapter, op: Op) -> Case:
    """One case of ``op`` the adapter declares it can run (see the module docstring)."""
    dtype = draw(st.sampled_from(_ordered(adapter.dtypes, ("float32", *DTYPES))))
    rank = draw(st.sampled_from(ranks(op)))
    fields = op.fields
    kw: dict = {}
    if "eps" in fields:
        kw["eps"] = draw(eps_values())
    if "affine" in fields:
        kw["affine"] = not draw(st.booleans())  # shrinks to affine, the default
    if "layout" in fields and rank > 2:  # a 2-D input has its channels at axis 1 in either layout
        kw["layout"] = draw(st.sampled_from(_ordered(adapter.layouts, LAYOUTS)))
    if "normalized_ndim" in fields:
        kw["normalized_ndim"] = draw(st.integers(1, rank - 1))
    if "running_stats" in fields:
        kw["running_stats"] = draw(st.booleans())
    probe = NormSpec(op.name, **kw, **({"groups": 1} if "groups" in fields else {}))
    shape = draw(_shape(probe, rank))
    if "groups" in fields:
        kw["groups"] = draw(st.sampled_from(_divisors(shape[op.feature_axis(probe, rank)])))
    spec = NormSpec(op.name, **kw)
    if "momentum" in fields and spec.has_running_stats:
        spec = NormSpec(op.name, **kw, momentum=draw(st.sampled_from(MOMENTA)))
    masked = op.maskable and "mask" in adapter.features and draw(st.booleans())
    name = draw(input_names(dtype))
    try:
        case = Case(spec, shape, dtype, name, masked=masked)
    except ValueError:  # a shape the op refuses
        assume(False)
    assume(group_sizes(case).min() >= 2)
    return case


def group_sizes(case: Case) -> np.ndarray:
    """How many values each statistic of ``case`` covers (a mask shortens them)."""
    view, axes = case.spec.stats_view(case.shape)
    valid = case.valid()
    if valid is None or not case.masked:
        return np.array([math.prod(view[a] for a in axes)])
    weights = np.broadcast_to(case.spread(valid), case.shape).reshape(view)
    return np.asarray(weights.sum(axis=axes)).ravel()
