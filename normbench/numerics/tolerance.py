"""The one tolerance policy: how far from the float64 oracle a correct implementation may be.

A norm computes ``y = γ·(x − μ)/s + β`` with ``s = √(σ² + eps)``. Rounding in the tested
dtype (machine epsilon ε) perturbs μ and σ² by about ε·√n of the summed magnitudes (the
probabilistic bound for summing n terms, Higham & Mary 2019), and an error δμ reaches the
output divided by s. So a correct two-pass implementation is off by about

    ε · (1 + √n · (1 + κ)) · M,        κ = |μ| / s

where n is the reduction size, κ the conditioning of the normalized group (how far its
mean sits from zero relative to its spread) and M the magnitude of the quantity (for the
output ``|γ|·(1 + |x̂|) + |β|``). The first term covers the final rounding. A mean offset
of 1e4 at std 1 in float32 (κ = 1e4) is therefore allowed ~1e-3: that is conditioning,
not a bug. A one-pass E[x²] − E[x]² variance errs by ε·√n·κ² and fails once κ ≳ λ.

λ = 4 makes the probabilistic bound hold for all but ~2·exp(−λ²/2) ≈ 7e-4 of terms, and
more in practice since rounding errors partly cancel. Nothing else in normbench sets a
tolerance; the helpers below only say which n, κ and M each compared quantity has.

The random walk assumes the roundings of a sum are independent. They are not where the terms
agree in every bit below the spacing of the partial sums: a constant row, or one whose spread is
tiny next to its mean. Then every addition of a binade rounds the same way, and a sequential sum
errs by up to ε·n/4 of its value (``lockstep``): torch's float32 BatchNorm mean of 9,207 equal
values came out 524 ε off where λ·√n = 384. That term is added where it applies, and only there.

Every error above is relative (ε times a magnitude), which holds for normal numbers only:
below the dtype's smallest normal the spacing stops shrinking at the smallest subnormal τ,
so the tolerance has a floor in absolute terms (``subnormal_floor``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..ops.dtypes import DTYPES, machine_eps, overflow_threshold, resolve
from ..ops.spec import NormSpec
from . import reference

LAMBDA = 4.0


def smallest_subnormal(dtype: str) -> float:
    """τ: the spacing of ``dtype``'s numbers below its smallest normal one (2⁻²⁴ in float16)."""
    return 2.0**-133 if dtype == "bfloat16" else float(np.finfo(resolve(dtype)).smallest_subnormal)


def subnormal_floor(dtype: str) -> float:
    """λ·τ/2 (τ: ``smallest_subnormal``): the floor of every tolerance in ``dtype``.

    Rounding the exact value to the output dtype alone costs half the spacing at that value.
    ε·M prices that as a relative error, which holds down to the smallest normal number; below
    it the spacing is τ however small the value (2⁻²⁴ in float16), so the rounding costs up to
    τ/2 = 2⁻²⁵ where ε·M may be far less. Found by `normbench search`: a float16 RMSNorm dx of
    exactly −1.9375e-7 (3.25 subnormal steps) comes back from every correct implementation as the
    nearest float16, −1.7881e-7, off by 2.2e-8 where λ·ε·(…)·M allowed 7.9e-9. The floor counts
    λ such roundings, as the relative terms count λ: 2⁻²³ ≈ 1.2e-7 in float16, 1.8e-40 in
    bfloat16, 2.8e-45 in float32, so it decides only within a few subnormal steps of zero.
    A floor (the larger of the two), not a sum: elsewhere the tolerance is what it was."""
    return LAMBDA * smallest_subnormal(dtype) / 2


def lockstep(dtype: str, n, mean, spread) -> np.ndarray:
    """L: how many epsilons of its value a sum of ``n`` terms may err by beyond the random walk,
    because its terms (of this ``mean`` and ``spread``, their standard deviation) round alike.

    Adding a term to a partial sum S rounds it by at most half the spacing at S, ε·|S|/2; the
    rounding depends on the term's bits below that spacing. Once S has k₀ = spread/(ε·|mean|)
    terms, its spacing exceeds the terms' spread and every term leaves the same bits there: the
    additions of a binade round alike instead of at random. The deterministic bound then holds
    for the additions from k₀ to n, Σ ε·k·|mean|/2 ≈ ε·|mean|·(n² − k₀²)/4, which is
    ε·(n/4)·(1 − (k₀/n)²) of the sum n·|mean|. Where k₀ ≥ n (any spread well above ε·n·|mean|)
    it is 0 and the random walk stands alone. The bound is a sequential sum's, the worst order:
    blocked and pairwise sums err less. Checked against np.add.accumulate in float32
    (tests/test_tolerance.py): the worst of 200 constant rows of 9,207 reached 0.42 of it."""
    eps = machine_eps(dtype)
    n, mean, spread = (np.asarray(a, dtype=np.float64) for a in (n, mean, spread))
    with np.errstate(invalid="ignore", divide="ignore"):
        k0 = np.where(mean != 0, spread / (eps * np.abs(mean)), np.inf)
        out = n / 4 * (1 - (k0 / n) ** 2)
    return np.where(np.isfinite(out) & (k0 < n), out, 0.0)


def tolerance(dtype: str, n, kappa, magnitude, locked=0.0) -> np.ndarray:
    """Absolute tolerance: (λ·(1 + √n·(1 + κ)) + locked)·ε·M, elementwise, and never below
    ``subnormal_floor`` (which leaves every tolerance above it exactly as it was). ``locked``: the
    epsilons that sums of terms rounding alike add (``lockstep``, weighed by what each sum reaches);
    0 for all but near-constant groups."""
    eps = machine_eps(dtype)
    n, kappa, magnitude, locked = (np.asarray(a, dtype=np.float64) for a in (n, kappa, magnitude, locked))
    return np.maximum((LAMBDA * (1 + np.sqrt(n) * (1 + kappa)) + locked) * eps * magnitude, subnormal_floor(dtype))


@dataclass(frozen=True)
class Bound:
    """What one compared quantity may deviate by, and the scale its error is measured in."""

    tol: np.ndarray  # absolute tolerance, elementwise
    unit: np.ndarray  # ε·M: error divided by this is "error in epsilons"
    dtype: str | None = None  # the dtype the computation is allowed to have been done in


def _bound(dtype: str, n, kappa, magnitude, locked=0.0) -> Bound:
    magnitude = np.asarray(magnitude, dtype=np.float64)
    return Bound(tolerance(dtype, n, kappa, magnitude, locked), machine_eps(dtype) * magnitude, dtype)


def _normalized(spec: NormSpec, dtype: str, x, mask=None):
    """x, its moments, s, x̂, κ and the lockstep of its two sums (``_locks``), all in x's shape. κ = |μ|/s
    measures the cancellation in x − μ; an op that does not centre (RMSNorm) subtracts nothing, so
    its κ is 0."""
    x = np.asarray(x, dtype=np.float64)
    m = reference.moments(spec, x, mask)
    s = np.sqrt(m.var + spec.eps)
    with np.errstate(invalid="ignore", divide="ignore"):
        kappa = np.abs(m.mean) / s
    return x, m, s, (x - m.mean) / s, kappa, _locks(spec, dtype, x, m, mask)


def _locked(spec: NormSpec, m, kappa, locks: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """What the two sums of a group add where their terms round alike (``lockstep``), in epsilons of
    M: the mean's sum errs by L·ε·|μ|, which reaches the output as L·κ (as the random walk's does);
    the second moment's errs by L'·ε·σ² (σ² the mean square where nothing is centred), which moves
    s by half that, of s² = σ² + eps, on every x̂."""
    first, second = locks
    with np.errstate(invalid="ignore", divide="ignore"):
        share = m.var / (m.var + spec.eps)
    return np.nan_to_num(first * kappa + second * share / 2)


def _locks(spec: NormSpec, dtype: str, x, m, mask=None) -> tuple[np.ndarray, np.ndarray]:
    """``lockstep`` of each group's mean sum (terms x: 0 where nothing is centred) and of its
    second-moment sum (terms (x − μ)²), elementwise."""
    w = reference.weights(spec, x, mask)
    with np.errstate(invalid="ignore", divide="ignore"):
        spread = np.sqrt(reference.group_sum(spec, np.where(w > 0, ((x - m.mean) ** 2 - m.var) ** 2, 0.0)) / m.count)
        first = lockstep(dtype, m.count, m.mean, np.sqrt(m.var)) if spec.kind.centred else np.zeros_like(x)
        return first, lockstep(dtype, m.count, m.var, spread)


def _gamma_beta(spec: NormSpec, shape, gamma, beta):
    b = spec.broadcast_shape(shape)
    g = np.ones(b) if gamma is None else np.abs(np.asarray(gamma, np.float64)).reshape(b)
    o = np.zeros(b) if beta is None else np.abs(np.asarray(beta, np.float64)).reshape(b)
    return g, o


def forward_bound(spec: NormSpec, dtype: str, x, gamma=None, beta=None, mask=None) -> Bound:
    """Training-mode (batch statistics) output."""
    x, m, _, xhat, kappa, locks = _normalized(spec, dtype, x, mask)
    g, o = _gamma_beta(spec, x.shape, gamma, beta)
    return _bound(dtype, m.count, kappa, g * (1 + np.abs(xhat)) + o, _locked(spec, m, kappa, locks))


def eval_bound(spec: NormSpec, dtype: str, x, gamma, beta, running_mean, running_var) -> Bound:
    """Inference output from running statistics: no reduction, κ = |running mean| / s."""
    x = np.asarray(x, dtype=np.float64)
    b = spec.broadcast_shape(x.shape)
    rm = np.asarray(running_mean, np.float64).reshape(b)
    s = np.sqrt(np.asarray(running_var, np.float64).reshape(b) + spec.eps)
    g, o = _gamma_beta(spec, x.shape, gamma, beta)
    return _bound(dtype, 1, np.abs(rm) / s, g * (1 + np.abs(x - rm) / s) + o)


def running_bound(spec: NormSpec, dtype: str, running_mean, running_var, x, mask=None):
    """Running mean and variance after one training step (either variance convention).

    The batch variance also carries the square of its mean's error, (1/n)·Σ(x − μ̂)² = σ² + (μ̂ − μ)²
    with |μ̂ − μ| up to λ·ε·(1 + √n)·|μ|: second order, and all there is when σ² = 0 (a constant
    channel, whose float32 variance comes out ~1e-14, not 0). The mean's terms are each group's
    mean: InstanceNorm averages its instances' means, which may be far larger than their average
    (instances at ±5e4 averaging −125), so the magnitude is the average |group mean|. Where a
    group's sums round alike (``lockstep``), the mean errs by L·ε·|μ| and the variance by L'·ε·σ² more."""
    x, g, _, _, kappa, (first, second) = _normalized(spec, dtype, x, mask)
    eps = machine_eps(dtype)
    m = reference.channel_moments(spec, x, mask)
    k = spec.momentum
    _, var, count = (np.asarray(a).reshape(-1) for a in m)
    keep = spec.param_axes(x.ndim)
    summed = tuple(a for a in range(x.ndim) if a not in keep)
    terms = np.abs(g.mean).mean(axis=summed).reshape(-1)  # average |group mean|
    locked_mean = eps * (first * np.abs(g.mean)).mean(axis=summed).reshape(-1)

    def per_channel(a):  # the largest over each channel's groups
        return np.moveaxis(np.broadcast_to(a, x.shape), keep[0], 0).reshape(len(count), -1).max(axis=1)

    kappa_c = per_channel(kappa)
    mean_mag = (1 - k) * np.abs(running_mean) + k * (terms + np.sqrt(var))
    with np.errstate(invalid="ignore", divide="ignore"):
        unbiased = np.where(count > 1, count / np.maximum(count - 1, 1), 1.0)
    var_mag = (1 - k) * np.abs(running_var) + k * var * unbiased
    var_b = _bound(dtype, count, kappa_c, var_mag)
    mean_err = LAMBDA * eps * (1 + np.sqrt(per_channel(g.count))) * per_channel(np.abs(g.mean))
    mean_err = mean_err + per_channel(eps * first * np.abs(g.mean))
    var_locked = eps * per_channel(second) * var
    mean_b = _bound(dtype, count, 0.0, mean_mag)
    # The update may be evaluated as (1 − k)·r + k·v or as r − k·(r − v) (TensorFlow's assign_moving_average),
    # which rounds r − v once: up to ε·|r − v|/2 ≤ ε·(|r| + |v|)/2, times k. Found by normbench search: tf_keras
    # at momentum 1 stored 1.788e-7 for a batch variance of 2.05e-7 replacing 1.0 (290x a tolerance that
    # counted (1 − k)·|r| = 0 of the old value).
    return (
        Bound(mean_b.tol + k * (locked_mean + eps * np.abs(running_mean)), mean_b.unit, dtype),
        Bound(var_b.tol + k * (unbiased * (mean_err**2 + var_locked) + eps * np.abs(running_var)), var_b.unit, dtype),
    )


def running_steps_bound(spec: NormSpec, dtype: str, states, x, mask=None) -> tuple[Bound, Bound]:
    """Running mean and variance after several training steps on the same batch, from the
    reference states before each step (``states``): step k's rounding error is carried on with
    weight (1 − momentum) by every later step, so the bound is Σ_k (1 − momentum)^(K−1−k)·bound_k."""
    k, steps = spec.momentum, len(states)
    parts = [running_bound(spec, dtype, rm, rv, x, mask) for rm, rv in states]
    out = []
    for i in (0, 1):
        tol = sum((1 - k) ** (steps - 1 - j) * p[i].tol for j, p in enumerate(parts))
        out.append(Bound(tol, np.maximum.reduce([p[i].unit for p in parts]), dtype))
    return out[0], out[1]


def grad_bounds(spec: NormSpec, dtype: str, x, gamma, dy, mask=None) -> tuple[Bound, ...]:
    """Bounds for (dx, dγ, dβ). dγ = Σ dy·x̂ inherits x̂'s error; dβ = Σ dy does not."""
    x, m, s, xhat, kappa, locks = _normalized(spec, dtype, x, mask)
    locked = _locked(spec, m, kappa, locks)
    dy = np.asarray(dy, dtype=np.float64)
    g_abs = np.abs(dy) * _gamma_beta(spec, x.shape, gamma, None)[0]
    mean_g = reference.group_sum(spec, g_abs) / m.count if spec.kind.centred else 0.0
    mean_gx = reference.group_sum(spec, g_abs * np.abs(xhat)) / m.count
    # x̂_i · Σ g x̂ multiplies two rounded factors, so its error counts twice.
    dx = _bound(dtype, m.count, kappa, (g_abs + mean_g + 2 * np.abs(xhat) * mean_gx) / s, locked)
    param_axes = tuple(a for a in range(x.ndim) if a not in spec.param_axes(x.ndim))
    shape = spec.param_shape(x.shape)
    terms = int(np.prod([x.shape[a] for a in param_axes]))
    n = np.maximum(m.count.max(axis=param_axes).reshape(shape), terms)
    kappa_p = kappa.max(axis=param_axes).reshape(shape)
    dgamma_mag = (np.abs(dy) * (1 + np.abs(xhat))).sum(axis=param_axes).reshape(shape)
    dgamma = _bound(dtype, n, kappa_p, dgamma_mag, locked.max(axis=param_axes).reshape(shape))
    dbeta = _bound(dtype, terms, 0.0, np.abs(dy).sum(axis=param_axes).reshape(shape))
    return dx, dgamma, dbeta


def _mean_abs(spec: NormSpec, a, count) -> np.ndarray:
    return reference.group_sum(spec, np.abs(a)) / count


def jvp_bound(spec: NormSpec, dtype: str, x, gamma, tx, tgamma=None, tbeta=None, mask=None) -> Bound:
    """Forward-mode derivative ẏ = γ·P(tx) + tγ·x̂ + tβ, P(u) = (u − c·m(u) − x̂·m(x̂·u))/s: the
    dx bound's form with the tangent in place of the upstream gradient (the same sums, the other
    way round), plus the output bound's form for tγ·x̂ + tβ."""
    x, m, s, xhat, kappa, locks = _normalized(spec, dtype, x, mask)
    locked = _locked(spec, m, kappa, locks)
    g = _gamma_beta(spec, x.shape, gamma, None)[0]
    tx = np.abs(np.asarray(tx, np.float64))
    mean_t = _mean_abs(spec, tx, m.count) if spec.kind.centred else 0.0
    # x̂_i · m(x̂·u) multiplies two rounded factors, so its error counts twice.
    mag = g * (tx + mean_t + 2 * np.abs(xhat) * _mean_abs(spec, xhat * tx, m.count)) / s
    tg, tb = _gamma_beta(spec, x.shape, tgamma, tbeta)
    return _bound(dtype, m.count, kappa, mag + tg * (1 + np.abs(xhat)) + tb, locked)


def second_order_bounds(spec: NormSpec, dtype: str, x, gamma, dy, v, mask=None) -> tuple[Bound, Bound]:
    """∂⟨dx, v⟩/∂x and ∂⟨dx, v⟩/∂γ (``reference.second_order``), derived as the first-order
    bounds are: the magnitude M is the expression with every factor and sum replaced by its
    absolute value, and since each term multiplies up to three factors that carry the first-order
    rounding (x̂, 1/s, a group sum), that error counts three times. ∂/∂γ = Σ dy·P(v) is the dγ
    bound's form with P(v) for x̂ (one factor more: counted twice)."""
    x, m, s, xhat, kappa, locks = _normalized(spec, dtype, x, mask)
    locked = _locked(spec, m, kappa, locks)
    n, c = m.count, 1.0 if spec.kind.centred else 0.0
    gam = _gamma_beta(spec, x.shape, gamma, None)[0]
    dy, v = (np.abs(np.asarray(a, np.float64)) for a in (dy, v))
    g, ax = dy * gam, np.abs(xhat)

    def transpose(u):  # |Pᵀ(u)| term by term
        return (u + c * reference.group_sum(spec, u) / n + ax * reference.group_sum(spec, u * ax) / n) / s

    a = reference.group_sum(spec, g * v) + c * _mean_abs(spec, v, n) * reference.group_sum(spec, g)
    gx, mxv = reference.group_sum(spec, g * ax), _mean_abs(spec, ax * v, n)
    ddx = (a + mxv * gx) * ax / (n * s**2) + (transpose(v) * gx / n + mxv * transpose(g)) / s
    project = (v + c * _mean_abs(spec, v, n) + ax * mxv) / s
    param_axes = tuple(i for i in range(x.ndim) if i not in spec.param_axes(x.ndim))
    shape = spec.param_shape(x.shape)
    terms = int(np.prod([x.shape[i] for i in param_axes]))
    count = np.maximum(n.max(axis=param_axes).reshape(shape), terms)
    kappa_p = kappa.max(axis=param_axes).reshape(shape)
    ddgamma = (dy * 2 * project).sum(axis=param_axes).reshape(shape)
    return (_bound(dtype, n, kappa, 3 * ddx, locked),
            _bound(dtype, count, kappa_p, ddgamma, locked.max(axis=param_axes).reshape(shape)))


@dataclass(frozen=True)
class Verdict:
    passed: bool
    max_abs_err: float
    err_eps: float  # worst error in epsilons of the value's own scale
    tolerance: float  # max_abs_err / ratio: max_abs_err <= tolerance exactly when passed
    ratio: float  # the largest elementwise error / tolerance; <= 1 passes
    message: str
    # The largest elementwise error beyond that element's own tolerance (absolute; <= 0 passes): what a known
    # divergence's envelope must explain. ``tolerance`` cannot say it, since the element with the largest error
    # need not be the one furthest past its tolerance.
    excess: float


def returned_in(bound: Bound, actual, expected) -> Bound:
    """A value computed in ``bound.dtype`` and returned rounded to a coarser format (the output of
    a mixed-precision path, in its half-precision input's dtype): one rounding more, of at most
    half the spacing at the value, which is ε·|value|/2 for a normal value and τ/2 for a
    subnormal one (τ the smallest subnormal, see ``subnormal_floor``): twice that, the larger of
    ε·|value| and τ, leaves room for a value near a binade edge. Only for
    what the path documents as half precision: running statistics and γ's and β's gradients
    belong to float32 variables and get no such allowance."""
    name = np.asarray(actual).dtype.name
    if name not in DTYPES or bound.dtype is None or machine_eps(name) <= machine_eps(bound.dtype):
        return bound
    expected = np.asarray(expected, np.float64)
    with np.errstate(invalid="ignore"):
        extra = machine_eps(name) * np.where(np.isfinite(expected), np.abs(expected), 0.0)
    extra = np.maximum(extra, smallest_subnormal(name))
    return Bound(bound.tol + extra, bound.unit, bound.dtype)


def judge(name: str, actual, expected, bound: Bound, finite=None) -> Verdict:
    """Compare elementwise; a non-finite result where the oracle is finite is infinitely wrong.

    An exact value that rounds to ±inf in the format the result came in makes ±inf a correct
    answer (float16 running variance of ~6e4 inputs), and so is a finite one within tolerance of
    the exact value (a float16 dx of 65504 where the exact 65530 rounds to inf). ``finite`` marks where the true
    value is known to be finite, for comparisons whose ``expected`` is itself a layer output
    (metamorphic relations): there, NaN against NaN is two wrong answers, not agreement.
    """
    actual = np.asarray(actual)
    limit = overflow_threshold(actual.dtype.name) if actual.dtype.name in DTYPES else np.inf
    exact = np.asarray(expected, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        beyond = np.isfinite(exact) & (np.abs(exact) >= limit)
        expected = np.where(beyond, np.sign(exact) * np.inf, exact)
    actual = actual.astype(np.float64)
    if actual.shape != expected.shape:
        return Verdict(False, np.inf, np.inf, 0.0, np.inf,
                       f"{name}: shape {actual.shape} != expected {expected.shape}", np.inf)
    tol = np.broadcast_to(bound.tol, expected.shape)
    unit = np.broadcast_to(bound.unit, expected.shape)
    same_nonfinite = ~np.isfinite(expected) & (np.isnan(expected) == np.isnan(actual))
    same_nonfinite &= np.isnan(expected) | (actual == expected)
    should_be_finite = np.zeros(expected.shape, bool) if finite is None else np.broadcast_to(finite, expected.shape)
    same_nonfinite &= ~should_be_finite
    with np.errstate(invalid="ignore"):
        err = np.where(same_nonfinite, 0.0, np.abs(actual - np.where(beyond & np.isfinite(actual), exact, expected)))
    err = np.where(np.isnan(err), np.inf, err)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(err == 0, 0.0, err / tol)
        in_eps = np.where(err == 0, 0.0, err / unit)
    if err.size == 0:
        return Verdict(True, 0.0, 0.0, 0.0, 0.0, f"{name}: empty", 0.0)
    worst = np.unravel_index(int(np.argmax(np.where(np.isnan(ratio), np.inf, ratio))), err.shape)
    max_err, worst_ratio = float(err.max()), float(ratio[worst])
    # Tolerances differ per element (each group has its own κ); the summary tolerance is
    # scaled so that max_abs_err <= tolerance exactly when every element is within its own.
    summary_tol = max_err / worst_ratio if 0 < worst_ratio < np.inf else float(tol[worst])
    detail = (
        f"{name}: max |err| {max_err:.3g} ({float(in_eps.max()):.3g} eps), {worst_ratio:.3g}x its "
        f"tolerance at {tuple(int(i) for i in worst)}: got {actual[worst]:.8g}, expected "
        f"{expected[worst]:.8g}, tolerance there {float(tol[worst]):.3g}"
    )
    nonfinite = int((should_be_finite & ~(np.isfinite(actual) & np.isfinite(expected))).sum())
    if nonfinite:
        detail += f"; {nonfinite} non-finite values where the reference is finite"
    with np.errstate(invalid="ignore"):
        excess = float(np.max(err - tol))  # NaN only for an infinite error at an infinite tolerance
    return Verdict(bool(np.all(ratio <= 1)), max_err, float(in_eps.max()), summary_tol, worst_ratio, detail, excess)
