"""How far a known cause can move a record: the envelope mathematics of known divergences.

An envelope is the largest ``max_abs_err / tolerance`` a cause explains for a record, computed on
the record's regenerated arrays (``Case.from_record``, cached per record): a one-pass variance
errs by about ε·√n·κ², so at most ~(1+κ) policy tolerances; a float32 computation by the float32
tolerance; statistics taken over the wrong values by the gap between the two float64 references.
The measured quantities here (conditioning, saved reciprocal standard deviation, group sums) also
let an entry match by what an input measures, not by its name.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np

from ..ops.case import Case
from ..ops.dtypes import machine_eps
from ..ops.inputs import scaled_shifted
from . import reference, replicas
from .tolerance import LAMBDA

Row = dict[str, Any]
Envelope = Callable[[Row], float]  # the largest max_abs_err / tolerance the cause explains for a record


def number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


# What a record says about its case: enough to regenerate the arrays it was computed from.
_CASE_FIELDS = ("op", "params", "shape", "dtype", "input", "case", "check")


def from_arrays(measure: Callable[..., float]) -> Callable[..., float]:
    """``measure(row, case, x, p, *args)`` on the record's regenerated arrays (``Case.from_record``),
    computed once per record and arguments: explaining and reporting a record both ask for it."""

    @cache
    def cached(key: str, *args) -> float:
        row = json.loads(key)
        case = Case.from_record(row)
        x, p = case.data()
        with np.errstate(all="ignore"):
            return measure(row, case, x, p, *args)

    def envelope(row: Row, *args) -> float:
        return cached(json.dumps({k: row.get(k) for k in _CASE_FIELDS}, sort_keys=True), *args)

    return envelope


def within_tolerances(row: Row, error: float) -> float:
    """An absolute error the cause explains on top of each element's own tolerance, as the largest ratio of
    error to tolerance (the record's ``max_abs_err / tolerance``) it lets the record reach.

    Exact where the record carries its ``excess`` (the largest error past its own element's tolerance): the
    record is within the envelope exactly when that excess is at most ``error``. The summary tolerance can
    only bound the excess from above (by ``max_abs_err · (1 − 1/ratio)``: the largest error, and the largest
    ratio, may be at different elements), and a record without one is judged by that bound. tf_keras's float16
    LayerNorm of ``layer_norm-843x1x2x2-float16-shifted:1:100`` erred at most 1.054 past its elements' own
    tolerances, within the 1.079 its cause explains, where the bound said 1.460 and the search called it a
    failure."""
    tol, excess = number(row.get("tolerance")), number(row.get("excess"))
    ratio = number(row.get("max_abs_err")) / tol if tol > 0 else math.nan
    if 0 < excess < math.inf and 1 < ratio < math.inf:
        return 1 + error * (ratio - 1) / excess
    return 1 + error / tol if tol > 0 else math.inf


PROMOTED = "promoted"  # a cause computing in the tested dtype promoted to at least float32 (half inputs upcast)


def compute_eps(compute: str | None, dtype: str) -> float:
    """Machine epsilon of what a cause computes in: ``compute``, the tested dtype (None), or that
    dtype promoted to at least float32 (PROMOTED)."""
    if compute == PROMOTED:
        return min(machine_eps(dtype), machine_eps("float32"))
    return machine_eps(compute or dtype)


def _one_pass_error(m, eps: float):
    """δ = λ·ε·√n·E[x²]: how far E[x²] − E[x]² computed at ``eps`` may be from each group's variance."""
    return LAMBDA * eps * np.sqrt(m.count) * (m.var + m.mean**2)


@from_arrays
def _one_pass_factor(row: Row, case, x, p, compute: str | None, masked: bool = True) -> float:
    """``masked`` False: statistics over every position, as a kernel that ignores the mask takes them."""
    eps = compute_eps(compute, case.dtype)
    inputs = [x]
    if row.get("check") == "scale_shift_invariance":  # the layer also saw a·x + b
        inputs.append(scaled_shifted(case, x))
    worst = 0.0
    for xi in inputs:
        m = reference.moments(case.spec, xi, p.mask if masked else None)
        s = np.sqrt(m.var + case.spec.eps)
        kappa = np.abs(m.mean) / s
        delta = _one_pass_error(m, eps)
        q = s / np.sqrt(np.maximum(m.var - delta, 0) + case.spec.eps)
        worst = max(worst, float(np.nanmax(2 * (1 + kappa) * q**3)))
    return worst * eps / machine_eps(case.dtype)


@from_arrays
def _one_pass_running_var(row: Row, case, x, p, compute: str | None, steps: int, masked: bool = True) -> float:
    """The stored variance errs by δ itself, not through 1/s: each step's batch variance by up to
    δ = λ·ε·√n·E[x²] (σ² once it cancels to 0 and is clamped), times n/(n − 1) where unbiased, and
    K steps of momentum k carry Σ k(1 − k)^j = 1 − (1 − k)^K of it. An absolute error."""
    m = reference.moments(case.spec, x, p.mask if masked else None)
    delta = _one_pass_error(m, compute_eps(compute, case.dtype)) * m.count / np.maximum(m.count - 1, 1)
    return (1 - (1 - case.spec.momentum) ** steps) * float(np.nanmax(delta))


def one_pass_variance(row: Row) -> float:
    """var = E[x²] − E[x]² errs by up to δ = λ·ε·√n·E[x²] = λ·ε·√n·(1 + κ²)·σ² where two passes
    err by λ·ε·√n·(1 + κ)·σ²: about (1 + κ) policy tolerances (×2 for slack) while δ < σ². Past
    that the variance can cancel to 0 (frameworks clamp it), the normalizer s falls to
    s_low = √(max(σ² − δ, 0) + eps), and dx, which holds 1/s three times, grows by q³, q = s/s_low."""
    return one_pass_variance_in(None)(row)


def one_pass_variance_in(compute: str | None) -> Envelope:
    """``one_pass_variance`` for a cause that also computes in ``compute`` (None: the tested dtype)."""
    def envelope(row: Row) -> float:
        if row.get("check") == "running_var":
            steps = int((row.get("facts") or {}).get("steps", 1))
            return within_tolerances(row, _one_pass_running_var(row, compute, steps))
        return _one_pass_factor(row, compute)

    return envelope


@from_arrays
def _saturation(row: Row, case, x, p) -> float:
    check = row.get("check")
    if check in ("grad_dx", "grad_dgamma"):  # x̂ = 0 and 1/s = 0: dx and dγ are 0, off by their whole value
        ref = reference.vjp(case.spec, x, p.gamma, p.dy, p.mask)[("grad_dx", "grad_dgamma").index(check)]
        return 0.0 if ref is None else float(np.nanmax(np.abs(ref)))
    y = reference.forward(case.spec, x, p.gamma, p.beta, p.mask)
    beta = reference.forward(case.spec, np.zeros_like(x, np.float64) + 1.0, p.gamma, p.beta)
    return float(np.nanmax(np.abs(y - beta)))


def variance_overflows(row: Row) -> float:
    """A variance that overflows the compute dtype to inf makes x̂ and 1/s 0: the output is β, off by |γ·x̂|,
    and dx and dγ are 0, off by their whole value (normbench search: tf_keras's float16 GroupNorm dγ of
    group_norm-1x4x1-float16-shifted:0:3000-channels_first-groups1 came back −0 where float64 gives −1.04)."""
    return within_tolerances(row, _saturation(row))


def _keras_mask(x: np.ndarray, mask: np.ndarray) -> np.ndarray | None:
    """The weights Keras's masked BatchNorm moments take: the mask expanded on the last axis and broadcast
    to x's shape (``ops.broadcast_to(ops.expand_dims(mask, -1), inputs.shape)``), None where that does not
    broadcast (Keras raises there)."""
    try:
        return np.broadcast_to(np.expand_dims(mask, -1), x.shape)
    except ValueError:
        return None


@from_arrays
def _mask_effect(row: Row, case, x, p, taken: str = "ignored") -> float:
    """How far the float64 references part when the statistics take the mask as a layer does (``taken``:
    "ignored", over every position; "last_axis", as Keras broadcasts it) instead of as given."""
    check, spec = row["check"], case.spec
    g, b, rm, rv = p.gamma, p.beta, p.running_mean, p.running_var
    wrong = None if taken == "ignored" else _keras_mask(x, p.mask)
    if taken != "ignored" and wrong is None:
        return 0.0
    if check.startswith("grad_"):
        i = ("grad_dx", "grad_dgamma", "grad_dbeta").index(check)
        pair = [reference.vjp(spec, x, g, p.dy, m)[i] for m in (p.mask, wrong)]
    elif check in ("running_mean", "running_var"):
        i = ("running_mean", "running_var").index(check)
        pair = [reference.update_running(spec, rm, rv, x, m, unbiased=u)[i] for m in (p.mask, wrong)
                for u in (False, True)]
        pair = [pair[0], max(pair[2:], key=lambda a: float(np.max(np.abs(a - pair[0]))))]
    else:
        pair = [reference.forward(spec, x, g, b, m) for m in (p.mask, wrong)]
    return float(np.max(np.abs(pair[1] - pair[0])))


def ignores_mask(row: Row) -> float:
    """Statistics over every position instead of the unmasked ones: the record may be off by
    the difference between the two float64 references, plus its own tolerance."""
    return within_tolerances(row, 2 * _mask_effect(row))


def mask_on_last_axis(row: Row) -> float:
    """Statistics weighted by the mask as Keras expands it, on the last axis whatever the channel axis: where
    that broadcasts (channels first, the mask's last length equal to the channels' or 1) an element counts
    as the mask says of another position. The record may be off by the difference between the float64
    references with that weighting and with the mask's own, plus its own tolerance."""
    return within_tolerances(row, 2 * _mask_effect(row, "last_axis"))


def ignores_mask_one_pass_in(compute: str | None) -> Envelope:
    """A kernel that ignores the mask and takes E[x²] − E[x]² (in ``compute``) over every position: the
    two errors add, each bounded as its own cause bounds it (``ignores_mask``, ``one_pass_variance_in``)."""
    def envelope(row: Row) -> float:
        if row.get("check") == "running_var":
            steps = int((row.get("facts") or {}).get("steps", 1))
            return within_tolerances(row, 2 * _mask_effect(row) + _one_pass_running_var(row, compute, steps, False))
        return ignores_mask(row) + _one_pass_factor(row, compute, False)

    return envelope


@from_arrays
def _replica_gap(row: Row, case, x, p, kind: str, steps: int) -> float:
    """How far the record's quantity moves between the global batch's statistics and ``kind``
    (``numerics.replicas``): for running statistics, from any replica's copy, either variance."""
    spec, check, xs = case.spec, row["check"], case.split(x)
    masks = case.split(p.mask) if case.masked else None
    if check.startswith("grad_"):
        i = ("grad_dx", "grad_dgamma", "grad_dbeta").index(check)
        pair = [replicas.vjp(spec, xs, p.gamma, case.split(p.dy), masks, k)[i] for k in ("global", kind)]
    elif check in ("running_mean", "running_var"):
        i = ("running_mean", "running_var").index(check)
        pair, groups = [], [(xs, masks)] if kind != "local" else [([a], None if masks is None else [masks[r]])
                                                                  for r, a in enumerate(xs)]
        for unbiased in (False, True):
            base = replicas.update_running(spec, p.running_mean, p.running_var, xs, masks,
                                           unbiased=unbiased, steps=steps)[i]
            for shards, shard_masks in groups:
                k = "global" if kind == "local" else kind
                other = replicas.update_running(spec, p.running_mean, p.running_var, shards, shard_masks,
                                                unbiased=unbiased, steps=steps, kind=k)[i]
                pair.append(float(np.nanmax(np.abs(other - base))))
        return max(pair)
    else:
        pair = [replicas.forward(spec, xs, p.gamma, p.beta, masks, k) for k in ("global", kind)]
    a, b = (replicas.concatenated(v) if isinstance(v, list) else v for v in pair)
    return float(np.nanmax(np.abs(a - b)))


def replica_statistics(kind: str) -> Envelope:
    """The layer normalizes with ``kind`` statistics instead of the global batch's: the record
    may be off by twice the gap between the two float64 references, plus its own tolerance."""
    return lambda row: within_tolerances(row, 2 * _replica_gap(row, kind, int((row.get("facts") or {})
                                                                              .get("steps", 1))))


@from_arrays
def _gradient_scale(row: Row, case, x, p) -> float:
    """The largest a gradient of this layer can be for the record's upstream values in any order:
    |dx| ≤ |γ|·max|dy|·(2 + max|x̂|²)/s, |dγ|, |dβ| ≤ n·max|dy|·max(1, |x̂|) over n summed terms."""
    m = reference.moments(case.spec, x)
    s = np.sqrt(m.var + case.spec.eps)
    xhat = np.abs((np.asarray(x, np.float64) - m.mean) / s)
    dy = float(np.max(np.abs(np.asarray(p.dy, np.float64))))
    gamma = 1.0 if p.gamma is None else float(np.max(np.abs(np.asarray(p.gamma, np.float64))))
    if row["check"] == "grad_dx":
        return float(gamma * dy * (2 + xhat.max() ** 2) / s.min())
    terms = x.size // int(np.prod(case.spec.param_shape(x.shape)))
    return float(terms * dy * max(1.0, xhat.max()))


def wrong_gradient(row: Row) -> float:
    """A gradient computed from the right values in the wrong arrangement: off by up to twice the
    largest such a gradient can be."""
    return within_tolerances(row, 2 * _gradient_scale(row))


@from_arrays
def _stopped_mean_term(row: Row, case, x, p) -> float:
    """The term a variance taken about stop_gradient(mean) drops from ∂⟨dx, v⟩/∂x: its second
    derivative is (2/n)·I instead of (2/n)(I − 11ᵀ/n), which leaves −(Σγ·dy·x̂)(Σv)/(n²·s²) on
    every position of a group."""
    spec = case.spec
    m = reference.moments(spec, x)
    s = np.sqrt(m.var + spec.eps)
    xhat = (np.asarray(x, np.float64) - m.mean) / s
    gamma = np.ones(spec.broadcast_shape(x.shape)) if p.gamma is None else \
        np.asarray(p.gamma, np.float64).reshape(spec.broadcast_shape(x.shape))
    g = gamma * np.asarray(p.dy, np.float64)
    term = reference.group_sum(spec, g * xhat) * reference.group_sum(spec, np.asarray(p.v, np.float64))
    return float(np.nanmax(np.abs(term / (m.count**2 * s**2))))


def stopped_mean_gradient(row: Row) -> float:
    """A second derivative missing the stopped mean's term: off by that term, twice for slack."""
    return within_tolerances(row, 2 * _stopped_mean_term(row))


def scalar_welford(rows: np.ndarray, eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Mean and 1/√(var + eps) of each row (the last axis), as a scalar float32 Welford loop takes
    them: mean += δ/k, M2 += δ·(x − mean), var = M2/n, each step rounded to float32."""
    f = np.float32
    x = np.asarray(rows, f)
    mean, m2 = np.zeros(x.shape[:-1], f), np.zeros(x.shape[:-1], f)
    for k in range(x.shape[-1]):
        delta = x[..., k] - mean
        mean = mean + delta / f(k + 1)
        m2 = m2 + delta * (x[..., k] - mean)
    return mean, f(1) / np.sqrt(np.maximum(m2 / f(x.shape[-1]), f(0)) + f(eps))


@from_arrays
def group_size(row: Row, case, x, p) -> float:
    """How many values each normalized group holds."""
    view, axes = case.spec.stats_view(x.shape)
    return float(np.prod([view[a] for a in axes]))


def _welford_stats(case, x) -> tuple[np.ndarray, np.ndarray]:
    """(μ, s) as ``scalar_welford`` takes them over each normalized group in memory order, over x's shape."""
    rows, spread = reference.group_rows(case.spec, x)
    mean, rstd = scalar_welford(rows, case.spec.eps)
    return spread(mean.astype(np.float64)), spread(1 / rstd.astype(np.float64))


@from_arrays
def _welford_gap(row: Row, case, x, p) -> float:
    """How far the record's quantity moves when the statistics are the float32 scalar Welford's
    instead of the exact ones, the rest computed exactly."""
    spec, stats = case.spec, _welford_stats(case, x)
    if row["check"].startswith("forward"):
        pair = [reference.forward(spec, x, p.gamma, p.beta, stats=s) for s in (stats, None)]
    else:
        field = "dx" if row["check"] == "grad_dx" else "dgamma"
        pair = [getattr(reference.vjp(spec, x, p.gamma, p.dy, stats=s), field) for s in (stats, None)]
    return float(np.nanmax(np.abs(pair[0] - pair[1])))


@from_arrays
def _welford_q(row: Row, case, x, p) -> float:
    """q = s/ŝ: how much larger the Welford loop's 1/√(var + eps) is than the exact 1/s."""
    m = reference.moments(case.spec, x)
    return float(np.nanmax(np.sqrt(m.var + case.spec.eps) / _welford_stats(case, x)[1]))


def welford_statistics(row: Row) -> float:
    """Statistics from a scalar float32 Welford loop: off by twice what those statistics move the
    record's quantity; and the rest of its float32 computation rounds q = s·rstd times more for each
    1/s the quantity holds (y and dγ one, as in x·(rstd·γ) + b; dx three), as under a one-pass
    variance (``_one_pass_factor``)."""
    rounding = 2 * _welford_q(row) ** (3 if row["check"] == "grad_dx" else 1)
    return within_tolerances(row, 2 * _welford_gap(row)) + rounding


LANES = 8  # float32 values per vector register in the widest kernel a sum's bound assumes (AVX2)


@from_arrays
def _uncentred_dx(row: Row, case, x, p) -> float:
    """What torch's dx = a·dy·γ + b·x + c adds to a centred computation, in float32: b = (Σg·μ − Σg·x)·a³/N
    and c = −b·μ − Σg·a/N with g = dy·γ and a = 1/√(var + eps). Σg·x, summed in LANES lanes then
    across them, errs by up to (⌈N/LANES⌉ + log₂ LANES)·u·Σ|g·x|, and Σg·μ by u·|μ·Σg|; a³/N carries
    both into b. Then b·x, b·μ, the sums with c and x − μ through torch's float32 μ each round by
    about u·|b|·max|x|: five of them. Centred, the same sums would hold g·(x − μ) and cancel nothing."""
    spec, u = case.spec, machine_eps("float32") / 2
    x = np.asarray(x, np.float64)
    m = reference.moments(spec, x)
    a = 1 / np.sqrt(m.var + spec.eps)
    g = np.asarray(p.dy, np.float64) * reference.affine(spec, x.shape, p.gamma, None)[0]
    n = m.count
    b = a**3 / n * reference.group_sum(spec, g * (m.mean - x))
    lanes = np.ceil(n / LANES) + math.log2(LANES)
    sums = lanes * u * reference.group_sum(spec, np.abs(g * x)) + u * np.abs(m.mean * reference.group_sum(spec, g))
    rows, spread = reference.group_rows(spec, np.abs(x))
    return float(np.nanmax(5 * u * spread(rows.max(axis=-1)) * (np.abs(b) + a**3 * sums / n)))


def uncentred_backward(row: Row) -> float:
    """dx from sums of g·x and g over x's raw values (torch's CPU LayerNorm and GroupNorm): the
    rounding of those sums, which a³ magnifies, on top of the record's tolerance (``_uncentred_dx``)."""
    return within_tolerances(row, _uncentred_dx(row))


def computes_in(dtype: str) -> Envelope:
    """The cause computes (or rounds a parameter to) ``dtype``: the policy tolerance of that
    dtype, which is the record's tolerance scaled by the ratio of machine epsilons."""
    return lambda row: machine_eps(dtype) / machine_eps(row["dtype"])


@from_arrays
def worst_kappa(row: Row, case, x, p) -> float:
    m = reference.moments(case.spec, x, p.mask)
    kappa = np.abs(m.mean) / np.sqrt(m.var + case.spec.eps)
    return float(np.nanmax(np.where(m.count >= 2, kappa, 0.0), initial=0.0))  # x² − x² of one value is exact


@from_arrays
def largest_rstd(row: Row, case, x, p) -> float:
    m = reference.moments(case.spec, x, p.mask)
    return float(np.nanmax(1 / np.sqrt(m.var + case.spec.eps)))


@from_arrays
def group_sums(row: Row, case, x, p) -> float:
    """The largest of each group's Σx and Σ(x − mean)², which a layer computing in the tested
    dtype accumulates."""
    m = reference.moments(case.spec, x, p.mask)
    return float(np.nanmax(m.count * np.maximum(np.abs(m.mean), m.var)))


def measured(measure: Callable[[Row], float], row: Row) -> float:
    """``measure`` of a record's regenerated arrays; NaN for a record its case cannot be rebuilt from."""
    try:
        return measure(row)
    except (KeyError, TypeError, ValueError):
        return math.nan
