"""The float64 oracle: two-pass statistics, running-statistics update, analytic VJPs.

Every function takes the values the framework received (already rounded to the tested
dtype) and computes in float64. All five ops are one computation: x is viewed as the op's
``stats_view`` (GroupNorm and InstanceNorm split the channel axis into groups), statistics are
taken over the view's reduced axes and spread back to x's shape, and γ/β broadcast along the
op's parameter axes. An op that does not centre (RMSNorm) takes μ = 0, so its "variance" is the
mean square. A mask (BatchNorm) weights positions so statistics cover the unmasked ones only,
while every position is still normalized with them (what Keras and Flax do).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..ops.spec import NormSpec


class Moments(NamedTuple):
    mean: np.ndarray  # x's shape (each group's statistic spread over its members), float64
    var: np.ndarray  # biased (population) variance about ``mean``; mean square where μ = 0
    count: np.ndarray  # number of values each statistic covers, x's shape


class Grads(NamedTuple):
    dx: np.ndarray
    dgamma: np.ndarray | None
    dbeta: np.ndarray | None


def _f64(a) -> np.ndarray:
    return np.asarray(a).astype(np.float64)


def weights(spec: NormSpec, x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """1 where a position counts towards its group's statistics, 0 where the mask drops it, in x's shape.
    A mask of x's own shape weights each element (``envelopes``: the weighting of a layer that broadcasts
    its mask onto the wrong axes)."""
    if mask is None:
        return np.ones_like(x)
    if not spec.kind.maskable:
        raise ValueError(f"{spec.op} takes no mask")
    mask = np.asarray(mask)
    if mask.shape == x.shape and x.ndim > 1:
        return mask.astype(np.float64)
    if mask.shape != spec.mask_shape(x.shape):
        raise ValueError(f"mask shape {mask.shape} does not match {spec.mask_shape(x.shape)}")
    w = np.expand_dims(mask.astype(np.float64), spec.param_axes(x.ndim))
    return np.broadcast_to(w, x.shape)


def group_rows(spec: NormSpec, a) -> tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """Each normalized group of ``a`` as a row (the last axis, the group's axes made contiguous in
    their order), and the function that spreads one value per row back over ``a``'s shape."""
    view, axes = spec.stats_view(np.shape(a))
    kept = [d for i, d in enumerate(view) if i not in axes]
    rows = np.moveaxis(np.asarray(a).reshape(view), axes, range(len(view) - len(axes), len(view))).reshape(*kept, -1)

    def spread(values: np.ndarray) -> np.ndarray:
        one = np.asarray(values).reshape([1 if i in axes else d for i, d in enumerate(view)])
        return np.broadcast_to(one, view).reshape(np.shape(a))

    return rows, spread


def group_sum(spec: NormSpec, a: np.ndarray) -> np.ndarray:
    """Σ of ``a`` over each normalized group, spread back over the group (x's shape). Summed in
    extended precision (x86's 80-bit long double, 11 more bits), over the summed axes made
    contiguous: float64 sums err by up to ~ε·n along a strided axis, ~100 ulp at 1e3 terms of a
    1e2 offset, as much as a careful float64 framework may, and the oracle must be well below that."""
    rows, spread = group_rows(spec, a)
    return spread(rows.astype(np.longdouble).sum(axis=-1).astype(np.float64))


def moments(spec: NormSpec, x, mask=None) -> Moments:
    """Two-pass mean and biased variance over each normalized group (unmasked positions)."""
    x = _f64(x)
    w = weights(spec, x, mask)
    count = group_sum(spec, w)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = group_sum(spec, w * x) / count if spec.kind.centred else np.zeros_like(x)
        var = group_sum(spec, w * (x - mean) ** 2) / count
    return Moments(mean, var, count)


def channel_moments(spec: NormSpec, x, mask=None) -> Moments:
    """Per-channel statistics a running-statistics update takes (shape ``param_shape``):
    BatchNorm's batch statistics; InstanceNorm's batch average of its per-instance ones."""
    m = moments(spec, x, mask)
    keep = spec.param_axes(np.ndim(x))
    axes = tuple(a for a in range(np.ndim(x)) if a not in keep)
    shape = spec.param_shape(np.shape(x))
    # in extended precision too: a float64 mean over strided axes errs by ~ε·n (see group_sum)
    return Moments(*(np.asarray(a, np.longdouble).mean(axis=axes).astype(np.float64).reshape(shape) for a in m))


def affine(spec: NormSpec, shape, gamma, beta) -> tuple[np.ndarray, np.ndarray]:
    """γ and β shaped to broadcast against an input of ``shape`` (ones and zeros where absent), in float64."""
    b = spec.broadcast_shape(shape)
    g = np.ones(b) if gamma is None else _f64(gamma).reshape(b)
    o = np.zeros(b) if beta is None else _f64(beta).reshape(b)
    return g, o


def _normalizer(spec: NormSpec, m: Moments, stats) -> tuple[np.ndarray, np.ndarray]:
    """(μ, s = √(σ² + eps)) over x's shape: the exact ones, or ``stats`` where given."""
    return stats if stats is not None else (m.mean, np.sqrt(m.var + spec.eps))


def forward(spec: NormSpec, x, gamma=None, beta=None, mask=None, stats=None) -> np.ndarray:
    """Training-mode output (the only output of an op without running statistics). ``stats``: the
    (μ, s) a layer normalized with instead of the exact ones (an envelope's what-if), over x's shape."""
    x = _f64(x)
    mean, s = _normalizer(spec, moments(spec, x, mask), stats)
    g, o = affine(spec, x.shape, gamma, beta)
    return g * (x - mean) / s + o


def forward_eval(spec: NormSpec, x, gamma, beta, running_mean, running_var) -> np.ndarray:
    """Inference with running statistics: normalize with them, per channel."""
    x = _f64(x)
    b = spec.broadcast_shape(x.shape)
    g, o = affine(spec, x.shape, gamma, beta)
    rm, rv = _f64(running_mean).reshape(b), _f64(running_var).reshape(b)
    return g * (x - rm) / np.sqrt(rv + spec.eps) + o


def update_running(
    spec: NormSpec, running_mean, running_var, x, mask=None, *, unbiased: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One training step's running statistics; unbiased stores var·n/(n−1) like torch."""
    m = channel_moments(spec, x, mask)
    var = m.var
    if unbiased:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(m.count > 1, var * m.count / (m.count - 1), np.nan)
    k = spec.momentum
    new_mean = (1 - k) * _f64(running_mean) + k * m.mean
    new_var = (1 - k) * _f64(running_var) + k * var
    return new_mean.reshape(-1), new_var.reshape(-1)


def vjp(spec: NormSpec, x, gamma, dy, mask=None, stats=None) -> Grads:
    """Analytic gradients of the training-mode output, given the upstream gradient dy.

    With x̂ = (x − μ)/s, s = √(σ² + eps), w the mask weights, N = Σw over the group and
    g = dy·γ: dx_i = (g_i − c·w_i/N · Σ_j g_j − w_i/N · x̂_i · Σ_j g_j x̂_j) / s, where c is 1
    for an op that centres and 0 for RMSNorm (μ = 0 has no derivative). The sums run over the
    whole group, masked or not, since every output uses the statistics. ``stats`` as in ``forward``.
    """
    x, dy = _f64(x), _f64(dy)
    if dy.shape != x.shape:
        raise ValueError(f"dy shape {dy.shape} does not match x shape {x.shape}")
    w = weights(spec, x, mask)
    m = moments(spec, x, mask)
    mean, s = _normalizer(spec, m, stats)
    xhat = (x - mean) / s
    gam, _ = affine(spec, x.shape, gamma, None)
    g = dy * gam
    dx = g - w / m.count * xhat * group_sum(spec, g * xhat)
    if spec.kind.centred:
        dx = dx - w / m.count * group_sum(spec, g)
    dx = dx / s
    if not spec.affine:
        return Grads(dx, None, None)
    param_axes = tuple(a for a in range(x.ndim) if a not in spec.param_axes(x.ndim))
    shape = spec.param_shape(x.shape)
    dgamma = (dy * xhat).sum(axis=param_axes).reshape(shape)
    dbeta = dy.sum(axis=param_axes).reshape(shape) if spec.kind.has_bias else None
    return Grads(dx, dgamma, dbeta)


def jvp(spec: NormSpec, x, gamma, tx, tgamma=None, tbeta=None, mask=None) -> np.ndarray:
    """Forward-mode derivative of the training-mode output along tangents (tx, tγ, tβ).

    With P(u) = (u − c·m(u) − x̂·m(x̂·u)) / s, m the weighted mean over the group (weights w/N):
    ẏ = γ·P(tx) + tγ·x̂ + tβ. P is the Jacobian of x̂; the VJP is its transpose (``vjp``).
    """
    x, tx = _f64(x), _f64(tx)
    w, m = weights(spec, x, mask), moments(spec, x, mask)
    s = np.sqrt(m.var + spec.eps)
    xhat = (x - m.mean) / s
    g, _ = affine(spec, x.shape, gamma, None)
    out = g * _project(spec, tx, xhat, s, w, m.count)
    if tgamma is not None:
        out = out + affine(spec, x.shape, tgamma, None)[0] * xhat
    if tbeta is not None:
        out = out + affine(spec, x.shape, None, tbeta)[1]
    return out


def _project(spec: NormSpec, u, xhat, s, w, count) -> np.ndarray:
    """P(u) = (u − c·Σwu/N − x̂·Σwx̂u/N) / s: x̂'s Jacobian applied to u."""
    out = u - xhat * group_sum(spec, w * xhat * u) / count
    if spec.kind.centred:
        out = out - group_sum(spec, w * u) / count
    return out / s


def _transpose(spec: NormSpec, u, xhat, s, w, count) -> np.ndarray:
    """Pᵀ(u) = (u − c·w·Σu/N − w·x̂·Σx̂u/N) / s: x̂'s Jacobian transposed, applied to u."""
    out = u - w / count * xhat * group_sum(spec, u * xhat)
    if spec.kind.centred:
        out = out - w / count * group_sum(spec, u)
    return out / s


def second_order(spec: NormSpec, x, gamma, dy, v, mask=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Gradients of f = ⟨dx, v⟩ with respect to x and γ, where dx is the VJP of dy: what a
    gradient penalty or a Hessian-vector product differentiates.

    dx = Pᵀ(g) with g = γ·dy, so f = ⟨g, P(v)⟩ = (A − B)/s with A = Σg·v − c·m(v)·Σg (free of
    x) and B = m(x̂·v)·Σg·x̂. Since ∂s/∂x = w·x̂/N and ∂(Σu·x̂)/∂x = Pᵀ(u):
    ∂f/∂x = −(A − B)·w·x̂/(N·s²) − (Pᵀ(w·v)·Σg·x̂/N + m(x̂·v)·Pᵀ(g)) / s, and ∂f/∂γ = Σ dy·P(v)
    over each parameter's positions. The project's tests check both against finite differences.
    """
    x, dy, v = _f64(x), _f64(dy), _f64(v)
    w, m = weights(spec, x, mask), moments(spec, x, mask)
    s = np.sqrt(m.var + spec.eps)
    xhat = (x - m.mean) / s
    gam, _ = affine(spec, x.shape, gamma, None)
    g = dy * gam
    n = m.count
    mv = group_sum(spec, w * v) / n if spec.kind.centred else 0.0
    a = group_sum(spec, g * v) - mv * group_sum(spec, g)
    big_g = group_sum(spec, g * xhat)
    mxv = group_sum(spec, w * xhat * v) / n
    ddx = (-(a - mxv * big_g) * w * xhat / (n * s**2)
           - (_transpose(spec, w * v, xhat, s, w, n) * big_g / n + mxv * _transpose(spec, g, xhat, s, w, n)) / s)
    if not spec.affine:
        return ddx, None
    param_axes = tuple(ax for ax in range(x.ndim) if ax not in spec.param_axes(x.ndim))
    ddgamma = (dy * _project(spec, v, xhat, s, w, n)).sum(axis=param_axes).reshape(spec.param_shape(x.shape))
    return ddx, ddgamma
