"""The float64 oracle: two-pass statistics, running-statistics update, analytic VJPs.

Every function takes the values the framework received (already rounded to the tested
dtype) and computes in float64. LayerNorm and BatchNorm are one computation, normalizing
over ``spec.reduce_axes`` with γ/β broadcast by ``spec.broadcast_shape``; a BatchNorm mask
weights positions so statistics cover the unmasked ones only, while every position is
still normalized with them (what Keras and Flax do).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .spec import NormSpec


class Moments(NamedTuple):
    mean: np.ndarray  # keepdims shape, float64
    var: np.ndarray  # biased (population) variance, keepdims shape
    count: np.ndarray  # number of values each statistic covers, keepdims shape


class Grads(NamedTuple):
    dx: np.ndarray
    dgamma: np.ndarray | None
    dbeta: np.ndarray | None


def _f64(a) -> np.ndarray:
    return np.asarray(a).astype(np.float64)


def _weights(spec: NormSpec, x: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    if mask is None:
        return np.ones_like(x)
    if spec.op != "batch_norm":
        raise ValueError("a mask applies to batch_norm only")
    mask = np.asarray(mask)
    if mask.shape != spec.mask_shape(x.shape):
        raise ValueError(f"mask shape {mask.shape} does not match {spec.mask_shape(x.shape)}")
    w = np.expand_dims(mask.astype(np.float64), spec.feature_axis(x.ndim))
    return np.broadcast_to(w, x.shape)


def moments(spec: NormSpec, x, mask=None) -> Moments:
    """Two-pass mean and biased variance over the normalized axes (unmasked positions)."""
    x = _f64(x)
    axes = spec.reduce_axes(x.ndim)
    w = _weights(spec, x, mask)
    count = w.sum(axis=axes, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (w * x).sum(axis=axes, keepdims=True) / count
        var = (w * (x - mean) ** 2).sum(axis=axes, keepdims=True) / count
    return Moments(mean, var, count)


def _affine(spec: NormSpec, shape, gamma, beta) -> tuple[np.ndarray, np.ndarray]:
    b = spec.broadcast_shape(shape)
    g = np.ones(b) if gamma is None else _f64(gamma).reshape(b)
    o = np.zeros(b) if beta is None else _f64(beta).reshape(b)
    return g, o


def forward(spec: NormSpec, x, gamma=None, beta=None, mask=None) -> np.ndarray:
    """Training-mode output (and LayerNorm's only output): normalize with batch statistics."""
    x = _f64(x)
    m = moments(spec, x, mask)
    g, o = _affine(spec, x.shape, gamma, beta)
    return g * (x - m.mean) / np.sqrt(m.var + spec.eps) + o


def forward_eval(spec: NormSpec, x, gamma, beta, running_mean, running_var) -> np.ndarray:
    """BatchNorm inference: normalize with the running statistics."""
    x = _f64(x)
    b = spec.broadcast_shape(x.shape)
    g, o = _affine(spec, x.shape, gamma, beta)
    rm, rv = _f64(running_mean).reshape(b), _f64(running_var).reshape(b)
    return g * (x - rm) / np.sqrt(rv + spec.eps) + o


def update_running(
    spec: NormSpec, running_mean, running_var, x, mask=None, *, unbiased: bool
) -> tuple[np.ndarray, np.ndarray]:
    """One training step's running statistics; unbiased stores var·n/(n−1) like torch."""
    m = moments(spec, x, mask)
    var = m.var
    if unbiased:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(m.count > 1, var * m.count / (m.count - 1), np.nan)
    k = spec.momentum
    new_mean = (1 - k) * _f64(running_mean) + k * m.mean.reshape(-1)
    new_var = (1 - k) * _f64(running_var) + k * var.reshape(-1)
    return new_mean, new_var


def vjp(spec: NormSpec, x, gamma, dy, mask=None) -> Grads:
    """Analytic gradients of the training-mode output, given the upstream gradient dy.

    With ŷ = (x − μ)/s, s = √(σ² + eps), w the mask weights and N = Σw:
    dx_i = (g_i − w_i/N · Σ_j g_j − w_i/N · x̂_i · Σ_j g_j x̂_j) / s, where g = dy·γ.
    The sums run over every position, masked or not, since all outputs use the statistics.
    """
    x, dy = _f64(x), _f64(dy)
    if dy.shape != x.shape:
        raise ValueError(f"dy shape {dy.shape} does not match x shape {x.shape}")
    axes = spec.reduce_axes(x.ndim)
    w = _weights(spec, x, mask)
    m = moments(spec, x, mask)
    s = np.sqrt(m.var + spec.eps)
    xhat = (x - m.mean) / s
    gam, _ = _affine(spec, x.shape, gamma, None)
    g = dy * gam
    sum_g = g.sum(axis=axes, keepdims=True)
    sum_gx = (g * xhat).sum(axis=axes, keepdims=True)
    dx = (g - w / m.count * sum_g - w / m.count * xhat * sum_gx) / s
    if not spec.affine:
        return Grads(dx, None, None)
    param_axes = tuple(a for a in range(x.ndim) if a not in spec.param_axes(x.ndim))
    shape = spec.param_shape(x.shape)
    dgamma = (dy * xhat).sum(axis=param_axes).reshape(shape)
    dbeta = dy.sum(axis=param_axes).reshape(shape)
    return Grads(dx, dgamma, dbeta)
