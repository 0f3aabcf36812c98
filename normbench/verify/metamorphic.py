"""Metamorphic checks: relations a correct norm satisfies whatever its exact output.

They compare a layer with itself, so they catch bugs the oracle would share (a wrong
axis, leaking batch statistics) and need no trust in the reference. Each compared output
carries its own policy tolerance, so two correct outputs may differ by their sum.
"""

from __future__ import annotations

import numpy as np

from ..adapters.base import Adapter
from ..numerics import reference, tolerance
from ..ops.inputs import scaled_shifted
from ..results.kinds import Check, Suite
from ..results.records import Record
from .checks import Case, judged, run_check


def _both(a: tolerance.Bound, b: tolerance.Bound) -> tolerance.Bound:
    return tolerance.Bound(a.tol + b.tol, a.unit)


def finite_output(spec, x, p) -> np.ndarray:
    """Where the true output is finite: there a relation between two NaN outputs is no relation."""
    with np.errstate(all="ignore"):
        return np.isfinite(reference.forward(spec, x, p.gamma, p.beta))


def nonfinite(spec, x, p, y) -> int:
    """How many of a layer's outputs ``y`` are non-finite where the true output is finite."""
    return int((finite_output(spec, x, p) & ~np.isfinite(np.asarray(y, np.float64))).sum())


def scale_shift(adapter: Adapter, case: Case, *, suite: Suite = Suite.AGREEMENT) -> list[Record]:
    """y(a·x + b) = y(x) for a > 0 and b constant over each normalized group (per position for
    LayerNorm, per channel for BatchNorm, per sample and group for GroupNorm, per sample and
    channel for InstanceNorm); b = 0 for an op that does not centre (RMSNorm: only a positive
    scale is invariant). Exact when eps = 0 (2⁻⁸⁰ is as good at these variances); a
    power-of-two a and integer b keep the quantized input exact in the tested dtype, so
    nothing but the layer can break it."""
    spec, dtype = case.spec, case.dtype
    if spec.eps > 2.0**-60 or case.input != "quantized":
        raise ValueError("scale_shift needs a negligible eps and the quantized input")

    def body(layer, x, p):
        x2 = scaled_shifted(case, x)
        y1, y2 = layer.forward(x, True), layer.forward(x2, True)
        bound = _both(tolerance.forward_bound(spec, dtype, x, p.gamma, p.beta),
                      tolerance.forward_bound(spec, dtype, x2, p.gamma, p.beta))
        verdict = tolerance.judge("y(a·x+b) vs y(x)", y2, y1, bound, finite_output(spec, x, p))
        yield judged(Check.SCALE_SHIFT_INVARIANCE, verdict)

    return run_check(adapter, case, suite, Check.SCALE_SHIFT_INVARIANCE, (), body)


def _pieces_agree(adapter: Adapter, case: Case, check: str, suite: str, pieces) -> list[Record]:
    """Each piece of x, normalized alone, equals the same piece of x normalized whole."""
    spec, dtype = case.spec, case.dtype

    def body(layer, x, p):
        whole = np.asarray(layer.forward(x, True))
        b_whole = tolerance.forward_bound(spec, dtype, x, p.gamma, p.beta)
        finite = finite_output(spec, x, p)
        verdicts = []
        for index in pieces(p):
            part = np.ascontiguousarray(x[index])
            alone = layer.forward(part, True)
            b_part = tolerance.forward_bound(spec, dtype, part, p.gamma, p.beta)
            bound = tolerance.Bound(b_whole.tol[index] + b_part.tol, b_part.unit)
            verdicts.append(tolerance.judge(f"y{index}", alone, whole[index], bound, finite[index]))
        yield judged(check, max(verdicts, key=lambda v: v.ratio))

    return run_check(adapter, case, suite, check, (), body)


def sample_independence(adapter: Adapter, case: Case, *, suite: Suite = Suite.AGREEMENT) -> list[Record]:
    """A per-sample norm of one sample does not depend on the rest of the batch."""
    if not case.spec.kind.per_sample:
        raise ValueError(f"{case.spec.op} mixes samples: sample independence does not hold")
    rows = [(slice(i, i + 1),) for i in range(case.shape[0])]
    return _pieces_agree(adapter, case, Check.SAMPLE_INDEPENDENCE, suite, lambda p: rows)


def sequence_alone(adapter: Adapter, case: Case, *, suite: Suite = Suite.SEQUENCE_LENGTHS) -> list[Record]:
    """A per-token norm (LayerNorm, RMSNorm) on a padded (B, T, C) batch: each sequence's valid
    tokens equal the norm of that sequence alone, unpadded."""
    if not case.spec.kind.per_token or not case.pad:
        raise ValueError("sequence_alone needs a padded case of a per-token op")

    def pieces(p):
        lengths = p.valid.sum(axis=1)
        return [(slice(b, b + 1), slice(0, int(n))) for b, n in enumerate(lengths)]

    return _pieces_agree(adapter, case, Check.SEQUENCE_ALONE, suite, pieces)
