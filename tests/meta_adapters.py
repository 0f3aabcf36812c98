"""Adapters for the meta-tests: a correct implementation of all five norms written from scratch,
and copies of it with one planted bug each, which the suites must catch.

``Independent`` shares no code with ``normbench.numerics.reference``: it computes like a framework
does, in float64 for float64 inputs and float32 otherwise, and returns the input dtype. Each
broken subclass overrides the one small method its bug lives in.

    normbench --adapters tests.meta_adapters:Independent,tests.meta_adapters:EpsOutsideSqrt
"""

from __future__ import annotations

import dataclasses

import numpy as np

from normbench import Adapter, Grads, Layer, NormSpec
from normbench.adapters.base import MixedPath, Mode


class IndependentLayer(Layer):
    """Two-pass statistics over unmasked positions; every position is normalized with them.
    Channel ops work on a channels-first copy, GroupNorm and InstanceNorm on it viewed as
    (N, groups, channels per group, ...). Training updates running statistics where the op keeps
    them (momentum = weight of the batch, biased variance, InstanceNorm's the batch average of
    its per-instance ones, stored in the input dtype); eval normalizes with them."""

    def forward(self, x, training, mask=None):
        return self._forward(self.spec, x, training, mask)

    def vjp(self, x, dy, mask=None):
        return self._vjp(self.spec, x, dy, mask)

    # Forward-mode and second-order derivatives by the complex step: f(x + i·h·t) = f(x) + i·h·f'(x)·t
    # + O(h²) with no subtraction, so Im(...)/h is exact to rounding for a tiny h. dx is the gradient
    # of ⟨y, dy⟩, so its derivative along v is the Hessian times v: ∂⟨dx, v⟩/∂x, and dγ's is ∂⟨dx, v⟩/∂γ.

    _STEP = 1e-20

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        saved = self.gamma, self.beta, self.running_mean, self.running_var
        h, c = self._STEP, np.complex128 if x.dtype == np.float64 else np.complex64
        try:
            if tgamma is not None:
                self.gamma = self.gamma.astype(c) + 1j * h * tgamma
            if tbeta is not None:
                self.beta = self.beta.astype(c) + 1j * h * tbeta
            y = self._forward(self.spec, x.astype(c) + 1j * h * tx, True, mask)
        finally:
            self.gamma, self.beta, self.running_mean, self.running_var = saved
        return (y.imag / h).astype(x.dtype)

    def second_order(self, x, dy, v, mask=None):
        h, c = self._STEP, np.complex128 if x.dtype == np.float64 else np.complex64
        dx, dgamma, _ = self._vjp(self.spec, x.astype(c) + 1j * h * v, dy, mask)
        return (dx.imag / h).astype(x.dtype), None if dgamma is None else (dgamma.imag / h).astype(x.dtype)

    # ---- the pieces the broken adapters override ----

    def _sum(self, a, axes):
        return a.sum(axis=axes, keepdims=True)

    def _batch_stats(self, x, w, axes):
        n = self._sum(w, axes)
        mean = self._sum(w * x, axes) / n if self.spec.kind.centred else 0 * n
        return mean, self._sum(w * (x - mean) ** 2, axes) / n, n

    def _inv_std(self, var):
        return 1 / np.sqrt(var + self.spec.eps)

    def _dx(self, g, xhat, w, n, inv_s, axes):
        centre = w / n * self._sum(g, axes) if self.spec.kind.centred else 0
        return (g - centre - w / n * xhat * self._sum(g * xhat, axes)) * inv_s

    def _group_order(self, channels, groups):
        """Channel indices in group order: contiguous channels share a group."""
        return np.arange(channels)

    def _use_running(self, training):
        return not training

    # ---- the computation ----

    def _channel(self, spec, ndim):
        return ndim - 1 if spec.layout == "channels_last" and ndim > 2 else 1

    def _setup(self, spec: NormSpec, x: np.ndarray, mask):
        """x in the arithmetic dtype (channels first, channels in group order, for channel ops),
        the shape statistics view it as, their axes in that view, the shape γ/β broadcast as,
        the channel order, and mask weights."""
        xa = x.astype(x.dtype if x.dtype.kind == "c" else np.float64 if x.dtype == np.float64 else np.float32)
        if spec.op in ("layer_norm", "rms_norm"):
            if mask is not None:
                raise ValueError(f"{spec.op} takes no mask")
            axes = tuple(range(x.ndim - spec.normalized_ndim, x.ndim))
            pshape = tuple(d if a in axes else 1 for a, d in enumerate(x.shape))
            return xa, xa.shape, axes, pshape, None, np.ones_like(xa)
        xc = np.moveaxis(xa, self._channel(spec, x.ndim), 1)
        n, c, *rest = xc.shape
        pshape = (1, c) + (1,) * len(rest)
        if spec.op == "batch_norm":
            w = np.ones_like(xc) if mask is None else \
                np.broadcast_to(np.expand_dims(mask, 1), xc.shape).astype(xc.dtype)
            return xc, xc.shape, tuple(a for a in range(xc.ndim) if a != 1), pshape, None, w
        groups = c if spec.op == "instance_norm" else spec.groups
        order = self._group_order(c, groups)
        view = (n, groups, c // groups, *rest)
        return xc[:, order], view, tuple(range(2, len(view))), pshape, order, np.ones(view, xc.dtype)

    def _back(self, spec, a, x, order):
        """A result in the computation's arrangement, back in x's layout and channel order."""
        if spec.op in ("layer_norm", "rms_norm"):
            return a
        if order is not None:
            a = a[:, np.argsort(order)]
        return np.moveaxis(a, 1, self._channel(spec, x.ndim))

    def _forward(self, spec, x, training, mask):
        xc, view, axes, pshape, order, w = self._setup(spec, x, mask)
        gamma, beta = (np.asarray(p).astype(xc.dtype).reshape(pshape) for p in (self.gamma, self.beta))
        if order is not None:
            gamma, beta = gamma[:, order], beta[:, order]
        if spec.has_running_stats and self._use_running(training):
            mean, var = (np.asarray(r).astype(xc.dtype).reshape(pshape) for r in self.running())
            if order is not None:
                mean, var = mean[:, order], var[:, order]
            xhat = (xc - mean) * self._inv_std(var)
        else:
            xv = xc.reshape(view)
            mean, var, _ = self._batch_stats(xv, w, axes)
            xhat = ((xv - mean) * self._inv_std(var)).reshape(xc.shape)
            if spec.has_running_stats and training:
                self._update_running(x, xc, view, order, mean, var)
        with np.errstate(over="ignore"):
            return self._back(spec, xhat * gamma + beta, x, order).astype(x.dtype)

    def _update_running(self, x, xc, view, order, mean, var):
        """Per channel: BatchNorm's batch statistics, InstanceNorm's batch average of its own."""
        k, (rm, rv) = self.spec.momentum, (np.asarray(r).astype(xc.dtype) for r in self.running())
        spread = [np.broadcast_to(s, view).reshape(xc.shape) for s in (mean, var)]
        if order is not None:
            spread = [a[:, np.argsort(order)] for a in spread]
        others = tuple(a for a in range(xc.ndim) if a != 1)
        cm, cv = (self._average(a, others) for a in spread)
        kept = np.asarray(self.running_mean).dtype  # the input's dtype, or float32 on a mixed path
        with np.errstate(over="ignore"):  # float16 variance of ~6e4 inputs is rightly inf
            self.running_mean = ((1 - k) * rm + k * cm).astype(kept)
            self.running_var = ((1 - k) * rv + k * cv).astype(kept)

    def _average(self, a, axes):
        """The batch average of per-group statistics (a running-statistics update)."""
        return a.mean(axis=axes)

    def _vjp(self, spec, x, dy, mask):
        xc, view, axes, pshape, order, w = self._setup(spec, x, mask)
        dyc = dy.astype(xc.dtype)
        if spec.op not in ("layer_norm", "rms_norm"):
            dyc = np.moveaxis(dyc, self._channel(spec, x.ndim), 1)
            dyc = dyc if order is None else dyc[:, order]
        gamma = np.asarray(self.gamma).astype(xc.dtype).reshape(pshape)
        gamma = gamma if order is None else gamma[:, order]
        xv = xc.reshape(view)
        mean, var, n = self._batch_stats(xv, w, axes)
        inv_s = self._inv_std(var)
        xhat = (xv - mean) * inv_s
        g = (dyc * gamma).reshape(view)
        dx = self._back(spec, self._dx(g, xhat, w, n, inv_s, axes).reshape(xc.shape), x, order).astype(x.dtype)
        if not spec.affine:
            return Grads(dx, None, None)
        xhat = xhat.reshape(xc.shape)
        summed = tuple(a for a in range(xc.ndim) if pshape[a] == 1)  # γ is constant along
        back = (lambda a: a) if order is None else (lambda a: a[:, np.argsort(order)])
        shape = np.shape(self.gamma)
        kept = np.result_type(self.gamma, x)  # γ's own dtype (float32 on a mixed path), or complex for the step
        dgamma = back(self._sum(dyc * xhat, summed)).reshape(shape).astype(kept)
        dbeta = back(self._sum(dyc, summed)).reshape(shape).astype(kept) if spec.kind.has_bias else None
        return Grads(dx, dgamma, dbeta)


OPS = ("layer_norm", "batch_norm", "rms_norm", "group_norm", "instance_norm")


def _builds(layer: type[Layer], ops=OPS) -> dict:
    return dict.fromkeys(ops, layer)


class Independent(Adapter):
    """Correct: every check must pass (``defaults`` is a skip)."""

    name = "meta-independent"
    builders = _builds(IndependentLayer)
    version_of = "numpy"
    running_var = "biased"

    def mixed_precision(self, spec, dtype):
        """Half inputs are computed on in float32, the output rounded back to their dtype; the
        float32 parameters and running statistics stay float32."""
        return MixedPath("float32 arithmetic around half inputs", "float32", "tests/meta_adapters.py")


class _EpsOutsideSqrtLayer(IndependentLayer):
    def _inv_std(self, var):
        return 1 / (np.sqrt(var) + self.spec.eps)


class EpsOutsideSqrt(Independent):
    """Bug: (x − μ) / (√σ² + eps) instead of (x − μ) / √(σ² + eps)."""

    name = "meta-eps-outside-sqrt"
    builders = _builds(_EpsOutsideSqrtLayer)


class _UnbiasedNormalizationLayer(IndependentLayer):
    def _batch_stats(self, x, w, axes):
        mean, var, n = super()._batch_stats(x, w, axes)
        with np.errstate(divide="ignore", invalid="ignore"):
            return mean, var * n / (n - 1), n


class UnbiasedNormalization(Independent):
    """Bug: normalizes with the unbiased variance σ²·n/(n − 1) (numpy's ``ddof=1``)."""

    name = "meta-unbiased-normalization"
    builders = _builds(_UnbiasedNormalizationLayer)


class _EvalUsesBatchStatsLayer(IndependentLayer):
    def forward(self, x, training, mask=None):
        return super().forward(x, True, mask)


class EvalUsesBatchStats(Independent):
    """Bug: ignores the mode, so eval normalizes with (and updates) batch statistics."""

    name = "meta-eval-uses-batch-stats"
    builders = _builds(_EvalUsesBatchStatsLayer)


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
    builders = _builds(_WrongAxisLayer)


class _GradMissingTermLayer(IndependentLayer):
    def _dx(self, g, xhat, w, n, inv_s, axes):
        return (g - w / n * self._sum(g, axes)) * inv_s


class GradMissingTerm(Independent):
    """Bug: dx drops the −x̂·mean(g·x̂) term (the gradient through the variance)."""

    name = "meta-grad-missing-term"
    builders = _builds(_GradMissingTermLayer)


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
    builders = _builds(_Float16AccumulationLayer)


class RmsEpsOutsideSqrt(Independent):
    """Bug: RMSNorm as x / (√mean(x²) + eps) instead of x / √(mean(x²) + eps)."""

    name = "meta-rms-eps-outside-sqrt"
    builders = _builds(_EpsOutsideSqrtLayer, ("rms_norm",))


class _StridedGroupsLayer(IndependentLayer):
    def _group_order(self, channels, groups):
        return np.arange(channels).reshape(channels // groups, groups).T.reshape(-1)


class StridedGroups(Independent):
    """Bug: GroupNorm groups channels strided (c mod groups) instead of contiguous blocks, as a
    reshape of (N, C, ...) to (N, C/groups, groups, ...) does."""

    name = "meta-group-norm-strided-groups"
    builders = _builds(_StridedGroupsLayer, ("group_norm",))


class _RunningStatsInTrainingLayer(IndependentLayer):
    def _use_running(self, training):
        return True


class InstanceNormRunningInTraining(Independent):
    """Bug: InstanceNorm with running statistics normalizes with them in training too."""

    name = "meta-instance-norm-running-in-training"
    builders = _builds(_RunningStatsInTrainingLayer, ("instance_norm",))


class _SecondOrderFrozenScaleLayer(IndependentLayer):
    frozen = False

    def _inv_std(self, var):
        return 1 / np.sqrt((var.real if self.frozen else var) + self.spec.eps)

    def second_order(self, x, dy, v, mask=None):
        self.frozen = True
        try:
            return super().second_order(x, dy, v, mask)
        finally:
            self.frozen = False


class SecondOrderFrozenScale(Independent):
    """Bug: differentiating its own backward pass, it treats 1/s as a constant (a backward that is
    not itself differentiable through the variance): dx and the forward-mode derivative are right,
    ∂⟨dx, v⟩/∂x and ∂⟨dx, v⟩/∂γ miss the terms through s."""

    name = "meta-second-order-frozen-scale"
    builders = _builds(_SecondOrderFrozenScaleLayer)


class _DowncastBeforeReductionLayer(IndependentLayer):
    def _sum(self, a, axes):
        if self.spec.precision != "mixed":
            return super()._sum(a, axes)
        half = np.asarray(a).astype(self.dtype)  # the half-precision input's dtype
        moved = np.moveaxis(half, axes, range(-len(axes), 0))
        flat = moved.reshape(*moved.shape[: half.ndim - len(axes)], -1)
        total = np.add.accumulate(flat, axis=-1, dtype=flat.dtype)[..., -1]  # each partial sum rounded
        return np.expand_dims(total, axes).astype(a.dtype)


class DowncastBeforeReduction(Independent):
    """Bug: on its mixed-precision path it casts to the half-precision input dtype before the
    reductions (every partial sum of the statistics rounded to bfloat16/float16), where it
    documents float32 statistics."""

    name = "meta-downcast-before-reduction"
    builders = _builds(_DowncastBeforeReductionLayer)


class MisdeclaredRunningVar(Independent):
    """Bug: declares torch's unbiased running variance but stores the biased one."""

    name = "meta-misdeclared-running-var"
    running_var = "unbiased"


class _CompiledOnePassLayer(IndependentLayer):
    def _batch_stats(self, x, w, axes):
        if self.mode is None or not self.spec.kind.centred:
            return super()._batch_stats(x, w, axes)
        n = self._sum(w, axes)
        mean = self._sum(w * x, axes) / n
        return mean, self._sum(w * x * x, axes) / n - mean**2, n


class CompiledOnePass(Independent):
    """Bug in its compiled mode alone: the statistics take one pass, E[x²] − E[x]² (what XLA's
    BatchNormExpander does), which cancels when |mean| ≫ std. Its eager mode is right. Not in
    BROKEN: the modes meta-test runs it (tests/test_modes.py)."""

    name = "meta-compiled-one-pass"
    builders = _builds(_CompiledOnePassLayer)
    modes = (Mode("eager", "numpy, two-pass statistics"),
             Mode("compiled", "numpy, one-pass statistics (the planted bug)", compiled=True))


BROKEN = (EpsOutsideSqrt, UnbiasedNormalization, EvalUsesBatchStats, WrongAxis, GradMissingTerm,
          Float16Accumulation, RmsEpsOutsideSqrt, StridedGroups, InstanceNormRunningInTraining,
          MisdeclaredRunningVar, SecondOrderFrozenScale, DowncastBeforeReduction)
