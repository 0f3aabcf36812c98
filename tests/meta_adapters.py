"""Adapters for the meta-tests: a correct LayerNorm/BatchNorm written from scratch, and copies
of it with one planted bug each, which the suites must catch.

``Independent`` shares no code with ``normbench.reference``: it computes like a framework
does, in float64 for float64 inputs and float32 otherwise, and returns the input dtype. Each
broken subclass overrides the one small method its bug lives in.

    normbench --adapters tests.meta_adapters:Independent,tests.meta_adapters:EpsOutsideSqrt
"""

from __future__ import annotations

import dataclasses

import numpy as np

from normbench import Adapter, Grads, Layer, NormSpec


class IndependentLayer(Layer):
    """Two-pass statistics over unmasked positions; every position is normalized with them.
    BatchNorm training updates the running statistics (momentum = weight of the batch, biased
    variance, stored in the input dtype); eval normalizes with them."""

    def forward(self, x, training, mask=None):
        return self._forward(self.spec, x, training, mask)

    def vjp(self, x, dy, mask=None):
        return self._vjp(self.spec, x, dy, mask)

    # ---- the pieces the broken adapters override ----

    def _sum(self, a, axes):
        return a.sum(axis=axes, keepdims=True)

    def _batch_stats(self, x, w, axes):
        n = self._sum(w, axes)
        mean = self._sum(w * x, axes) / n
        return mean, self._sum(w * (x - mean) ** 2, axes) / n, n

    def _inv_std(self, var):
        return 1 / np.sqrt(var + self.spec.eps)

    def _dx(self, g, xhat, w, n, inv_s, axes):
        return (g - w / n * self._sum(g, axes) - w / n * xhat * self._sum(g * xhat, axes)) * inv_s

    # ---- the computation ----

    def _setup(self, spec: NormSpec, x: np.ndarray, mask):
        """x in the arithmetic dtype, the reduced axes, the shape γ/β broadcast as, mask weights."""
        xa = x.astype(np.float64 if x.dtype == np.float64 else np.float32)
        if spec.op == "layer_norm":
            if mask is not None:
                raise ValueError("a mask applies to batch_norm only")
            axes = tuple(range(x.ndim - spec.normalized_ndim, x.ndim))
            keep = axes
            w = np.ones_like(xa)
        else:
            c = x.ndim - 1 if spec.layout == "channels_last" and x.ndim > 2 else 1
            axes, keep = tuple(a for a in range(x.ndim) if a != c), (c,)
            w = np.ones_like(xa) if mask is None else \
                np.broadcast_to(np.expand_dims(mask, c), x.shape).astype(xa.dtype)
        pshape = tuple(d if a in keep else 1 for a, d in enumerate(x.shape))
        return xa, axes, pshape, w

    def _forward(self, spec, x, training, mask):
        xa, axes, pshape, w = self._setup(spec, x, mask)
        if spec.op == "batch_norm" and not training:
            mean, var = (np.asarray(r).astype(xa.dtype).reshape(pshape) for r in self.running())
        else:
            mean, var, _ = self._batch_stats(xa, w, axes)
            if spec.op == "batch_norm":
                k, (rm, rv) = spec.momentum, (np.asarray(r).astype(xa.dtype) for r in self.running())
                with np.errstate(over="ignore"):  # float16 variance of ~6e4 inputs is rightly inf
                    self.running_mean = ((1 - k) * rm + k * mean.reshape(-1)).astype(x.dtype)
                    self.running_var = ((1 - k) * rv + k * var.reshape(-1)).astype(x.dtype)
        gamma, beta = (np.asarray(p).astype(xa.dtype).reshape(pshape) for p in (self.gamma, self.beta))
        with np.errstate(over="ignore"):
            return ((xa - mean) * self._inv_std(var) * gamma + beta).astype(x.dtype)

    def _vjp(self, spec, x, dy, mask):
        xa, axes, pshape, w = self._setup(spec, x, mask)
        mean, var, n = self._batch_stats(xa, w, axes)
        inv_s = self._inv_std(var)
        xhat, dya = (xa - mean) * inv_s, dy.astype(xa.dtype)
        g = dya * np.asarray(self.gamma).astype(xa.dtype).reshape(pshape)
        dx = self._dx(g, xhat, w, n, inv_s, axes).astype(x.dtype)
        if not spec.affine:
            return Grads(dx, None, None)
        summed = axes if spec.op == "batch_norm" else tuple(range(x.ndim - spec.normalized_ndim))  # γ is constant along
        pshape = np.shape(self.gamma)
        dgamma = self._sum(dya * xhat, summed).reshape(pshape).astype(x.dtype)
        return Grads(dx, dgamma, self._sum(dya, summed).reshape(pshape).astype(x.dtype))


class Independent(Adapter):
    """Correct: every check must pass (``defaults`` is a skip)."""

    name = "meta-independent"
    layer = IndependentLayer
    version_of = "numpy"


class _EpsOutsideSqrtLayer(IndependentLayer):
    def _inv_std(self, var):
        return 1 / (np.sqrt(var) + self.spec.eps)


class EpsOutsideSqrt(Independent):
    """Bug: (x − μ) / (√σ² + eps) instead of (x − μ) / √(σ² + eps)."""

    name = "meta-eps-outside-sqrt"
    layer = _EpsOutsideSqrtLayer


class _UnbiasedNormalizationLayer(IndependentLayer):
    def _batch_stats(self, x, w, axes):
        mean, var, n = super()._batch_stats(x, w, axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return mean, var * n / (n - 1), n


class UnbiasedNormalization(Independent):
    """Bug: normalizes with the unbiased variance σ²·n/(n − 1) (numpy's ``ddof=1``)."""

    name = "meta-unbiased-normalization"
    layer = _UnbiasedNormalizationLayer


class _EvalUsesBatchStatsLayer(IndependentLayer):
    def forward(self, x, training, mask=None):
        return super().forward(x, True, mask)


class EvalUsesBatchStats(Independent):
    """Bug: ignores the mode, so eval normalizes with (and updates) batch statistics."""

    name = "meta-eval-uses-batch-stats"
    layer = _EvalUsesBatchStatsLayer


class _WrongAxisLayer(IndependentLayer):
    def _scrambled(self, x):
        return self.spec.op == "batch_norm" and self.spec.layout == "channels_last" and np.ndim(x) > 2

    def _as_channels_first(self, a):
        return None if a is None else np.reshape(a, (a.shape[0], a.shape[-1], *a.shape[1:-1]))

    def forward(self, x, training, mask=None):
        if not self._scrambled(x):
            return super().forward(x, training, mask)
        spec = dataclasses.replace(self.spec, layout="channels_first")
        return self._forward(spec, self._as_channels_first(x), training, mask).reshape(x.shape)

    def vjp(self, x, dy, mask=None):
        if not self._scrambled(x):
            return super().vjp(x, dy, mask)
        spec = dataclasses.replace(self.spec, layout="channels_first")
        dx, dgamma, dbeta = self._vjp(spec, self._as_channels_first(x), self._as_channels_first(dy), mask)
        return Grads(dx.reshape(x.shape), dgamma, dbeta)


class WrongAxis(Independent):
    """Bug: channels_last BatchNorm turns (N, ..., C) into (N, C, ...) with a reshape instead of
    moving the axis, so each "channel" it normalizes mixes values of several real channels."""

    name = "meta-wrong-axis"
    layer = _WrongAxisLayer


class _GradMissingTermLayer(IndependentLayer):
    def _dx(self, g, xhat, w, n, inv_s, axes):
        return (g - w / n * self._sum(g, axes)) * inv_s


class GradMissingTerm(Independent):
    """Bug: dx drops the −x̂·mean(g·x̂) term (the gradient through the variance)."""

    name = "meta-grad-missing-term"
    layer = _GradMissingTermLayer


class _Float16AccumulationLayer(IndependentLayer):
    def _sum(self, a, axes):
        if self.dtype != "float16":
            return super()._sum(a, axes)
        moved = np.moveaxis(a.astype(np.float16), axes, range(-len(axes), 0))
        flat = moved.reshape(*moved.shape[: a.ndim - len(axes)], -1)
        total = np.add.accumulate(flat, axis=-1, dtype=np.float16)[..., -1]  # each partial sum rounded
        return np.expand_dims(total, axes).astype(a.dtype)


class Float16Accumulation(Independent):
    """Bug: float16 inputs are summed in float16 (a running float16 total) instead of float32,
    so the sums of large inputs, and of their squares, overflow."""

    name = "meta-float16-accumulation"
    layer = _Float16AccumulationLayer


BROKEN = (EpsOutsideSqrt, UnbiasedNormalization, EvalUsesBatchStats, WrongAxis, GradMissingTerm,
          Float16Accumulation)
