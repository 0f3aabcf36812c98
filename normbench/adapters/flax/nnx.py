"""flax.nnx LayerNorm, RMSNorm, BatchNorm, GroupNorm and InstanceNorm, called eagerly as
stateful modules.

Conventions match flax.linen (see linen.py: eps 1e-6 for every op but BatchNorm's 1e-5,
flax momentum = 1 − spec.momentum, default use_fast_variance, dtype None, param_dtype = tested
dtype (on the mixed path dtype=<half>, param_dtype=float32), biased running variance,
GroupNorm's channels moved last around the call, no running statistics for InstanceNorm, x64
switched on by the first float64 layer). nnx specifics, passed through: BatchNorm's running
statistics are float32 Variables updated in place, so they stay float32 even for float64 (JAX
warns about the float64→float32 scatter), and they promote x, so a float16/bfloat16 BatchNorm
with dtype None returns float32. Every nnx norm takes a flat ``num_features`` and
reshapes its (n,) scale to the feature axes, so γ is loaded flattened and dγ reshaped back to
param_shape (which only changes anything for LayerNorm and RMSNorm over several axes).
Synchronized BatchNorm runs as in linen.py, with nnx.BatchNorm(axis_name=...).
"""

from __future__ import annotations

import functools

import numpy as np

from ...numerics.reference import Grads
from ...ops.dtypes import resolve
from ...ops.spec import NormSpec
from ..base import Adapter, Layer, MixedPath, ReplicaJob, ReplicaRun, Timed, Unsupported, builder
from .common import (
    _SYNC,
    CLASSES,
    HALF,
    MODES,
    _enable_x64,
    _numpy,
    _tensor,
    describe,
    dtype_args,
    features_last,
    move_channel,
    no_running_stats,
    param_dtype,
)
from .replicas import AXIS, native_inputs, replica_layer, replica_run, shard_inputs, sharded_steps


def _common(spec: NormSpec, dtype: str) -> dict:
    from flax import nnx

    out = dict(epsilon=spec.eps, use_scale=spec.affine, rngs=nnx.Rngs(0), **dtype_args(spec, dtype))
    if spec.kind.has_bias:
        out["use_bias"] = spec.affine
    return out


def _layer_norm(spec, shape, dtype):
    from flax import nnx

    axes = spec.reduce_axes(len(shape))
    return nnx.LayerNorm(int(np.prod(spec.param_shape(shape))), reduction_axes=axes, feature_axes=axes,
                         **_common(spec, dtype))


def _rms_norm(spec, shape, dtype):
    from flax import nnx

    axes = spec.reduce_axes(len(shape))
    return nnx.RMSNorm(int(np.prod(spec.param_shape(shape))), reduction_axes=axes, feature_axes=axes,
                       **_common(spec, dtype))


def _batch_norm(spec, shape, dtype, axis_name: str | None = None):
    from flax import nnx

    return nnx.BatchNorm(spec.param_shape(shape)[0], axis=spec.feature_axis(len(shape)),
                         momentum=1 - spec.momentum, axis_name=axis_name, **_common(spec, dtype))


def _group_norm(spec, shape, dtype):
    from flax import nnx

    # Reduces every axis but the first (batch); the channels (last, see features_last) split contiguously.
    return nnx.GroupNorm(spec.param_shape(shape)[0], num_groups=spec.groups, **_common(spec, dtype))


def _instance_norm(spec, shape, dtype):
    from flax import nnx

    if reason := no_running_stats(spec):
        raise Unsupported(reason)
    return nnx.InstanceNorm(spec.param_shape(shape)[0], feature_axes=spec.feature_axis(len(shape)),
                            **_common(spec, dtype))


def _run(module, xt, training: bool, stateful: bool, channel: int | None, mask):
    xt = move_channel(xt, channel, last=True)
    y = module(xt, use_running_average=not training, mask=mask) if stateful else module(xt)
    return move_channel(y, channel, last=False)


@functools.cache
def _jitted_apply(graph, training: bool, stateful: bool, channel: int | None, jit: bool = True):
    """A pure, jitted call of the module described by ``graph`` (hashable, so one compile per
    configuration and shape); eager nnx compiles every op separately for each new shape."""
    import jax
    from flax import nnx

    def apply(state, xt, mask):
        module = nnx.merge(graph, state)
        y = _run(module, xt, training, stateful, channel, mask)
        return y, nnx.state(module)

    return jax.jit(apply) if jit else apply


@functools.cache
def _jitted_vjp(graph, stateful: bool, channel: int | None, jit: bool = True):
    """(dx, d params) of the training-mode output; a merged copy leaves the layer's stats alone."""
    import jax
    from flax import nnx

    def vjp(params, rest, xt, mask, dy):
        def f(xt, p):
            return _run(nnx.merge(graph, p, rest, copy=True), xt, True, stateful, channel, mask)

        y, pull = jax.vjp(f, xt, params)
        return pull(dy.astype(y.dtype))

    return jax.jit(vjp) if jit else vjp


@functools.cache
def _jitted_jvp(graph, stateful: bool, channel: int | None, jit: bool = True):
    """jax.jvp of the training-mode output along tx and the params' tangents, on a merged copy."""
    import jax
    from flax import nnx

    def jvp(params, rest, xt, mask, tx, tparams):
        def f(xt, p):
            return _run(nnx.merge(graph, p, rest, copy=True), xt, True, stateful, channel, mask)

        return jax.jvp(f, (xt, params), (tx, tparams))[1]

    return jax.jit(jvp) if jit else jvp


@functools.cache
def _jitted_second_order(graph, stateful: bool, channel: int | None, jit: bool = True):
    """jax.grad of ⟨dx, v⟩ wrt (x, params), dx from the layer's own jax.vjp: grad of grad."""
    import jax
    import jax.numpy as jnp

    def second_order(params, rest, xt, mask, dy, v):
        def f(xt, p):
            return jnp.vdot(_jitted_vjp(graph, stateful, channel, jit)(p, rest, xt, mask, dy)[0], v)

        return jax.grad(f, argnums=(0, 1))(xt, params)

    return jax.jit(second_order) if jit else second_order


@functools.cache
def _jitted_replicas(graph, replicas: int):
    """The replicated run of the BatchNorm ``graph`` built with axis_name=AXIS (see sharded_steps)."""
    from flax import nnx

    def call(params, stats, x, mask, training):
        module = nnx.merge(graph, params, stats)
        y = module(x, use_running_average=not training, mask=mask)
        return y, nnx.state(module, nnx.BatchStat)

    return sharded_steps(call, replicas)


class FlaxNnxLayer(Layer):
    def __init__(self, spec, shape, dtype, native, mode=None):
        super().__init__(spec, shape, dtype, native, mode)
        _enable_x64(dtype)
        self.module = native(spec, self.shape, dtype)
        self._stateful = spec.has_running_stats
        self._channel = features_last(spec, len(shape))

    def _to_native(self, x: np.ndarray):
        return _tensor(x, resolve(self.dtype))

    def _mask(self, mask, ndim: int):
        """BatchNorm's mask, expanded at the feature axis."""
        return None if mask is None else _tensor(np.expand_dims(mask, self.spec.feature_axis(ndim)), bool)

    def _apply(self, graph, training: bool):
        return _jitted_apply(graph, training, self._stateful, self._channel, self.mode is None)

    def _vjp(self, graph):
        return _jitted_vjp(graph, self._stateful, self._channel, self.mode is None)

    def set_params(self, gamma: np.ndarray, beta: np.ndarray | None) -> None:
        dt = resolve(param_dtype(self.spec, self.dtype))
        self.module.scale[...] = _tensor(np.reshape(gamma, -1), dt)
        if beta is not None:
            self.module.bias[...] = _tensor(np.reshape(beta, -1), dt)

    def set_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        # In the Variables' own dtype (float32), as nnx's in-place update keeps them.
        self.module.mean[...] = _tensor(mean, self.module.mean[...].dtype)
        self.module.var[...] = _tensor(var, self.module.var[...].dtype)

    def running(self) -> tuple[np.ndarray, np.ndarray]:
        return _numpy(self.module.mean[...]), _numpy(self.module.var[...])

    def forward(self, x: np.ndarray, training: bool, mask: np.ndarray | None = None) -> np.ndarray:
        """Call the module under jit; its updated state (running statistics) is written back."""
        from flax import nnx

        graph, state = nnx.split(self.module)
        y, state = self._apply(graph, training)(state, self._to_native(x), self._mask(mask, x.ndim))
        nnx.update(self.module, state)
        return _numpy(y)

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        from flax import nnx

        graph, params, rest = nnx.split(self.module, nnx.Param, ...)
        dx, dp = self._vjp(graph)(params, rest, self._to_native(x), self._mask(mask, x.ndim), _tensor(dy))
        pshape = self.spec.param_shape(self.shape)
        return Grads(_numpy(dx), *(_numpy(dp[k][...]).reshape(pshape) if k in dp else None
                                   for k in ("scale", "bias")))

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        import jax
        from flax import nnx

        graph, params, rest = nnx.split(self.module, nnx.Param, ...)
        tangent = {"scale": tgamma, "bias": tbeta}  # flattened to nnx's (n,) params
        tparams = jax.tree_util.tree_map_with_path(
            lambda path, a: _tensor(np.reshape(tangent[path[0].key], -1), a.dtype), params)
        fn = _jitted_jvp(graph, self._stateful, self._channel, self.mode is None)
        return _numpy(fn(params, rest, self._to_native(x), self._mask(mask, x.ndim), self._to_native(tx), tparams))

    def second_order(self, x, dy, v, mask=None):
        from flax import nnx

        graph, params, rest = nnx.split(self.module, nnx.Param, ...)
        fn = _jitted_second_order(graph, self._stateful, self._channel, self.mode is None)
        ddx, dp = fn(params, rest, self._to_native(x), self._mask(mask, x.ndim), _tensor(dy), self._to_native(v))
        pshape = self.spec.param_shape(self.shape)
        return _numpy(ddx), _numpy(dp["scale"][...]).reshape(pshape) if "scale" in dp else None

    def timed(self, x, mode, dy=None):
        import jax
        from flax import nnx

        # Split once; "train" drops the returned state, so the module's stats stay as they are.
        xt = self._to_native(x)
        if mode == "forward_backward":
            graph, params, rest = nnx.split(self.module, nnx.Param, ...)
            fn, args = self._vjp(graph), (params, rest, xt, None, self._to_native(dy))
        else:
            graph, state = nnx.split(self.module)
            fn, args = self._apply(graph, mode == "train"), (state, xt, None)
        # jit dispatches asynchronously; the first call compiles (cached per configuration and shape)
        return Timed(lambda: jax.block_until_ready(fn(*args)), _SYNC, getattr(fn, "_cache_size", None))


class FlaxNnxAdapter(Adapter):
    name = "flax.nnx"
    modes = MODES
    builders = {op: builder(FlaxNnxLayer, native) for op, native in (
        ("layer_norm", _layer_norm), ("rms_norm", _rms_norm), ("batch_norm", _batch_norm),
        ("group_norm", _group_norm), ("instance_norm", _instance_norm))}
    requires = ("jax", "flax")
    extra = "jax"
    group = "jax"  # linen and nnx share one process: one JAX start-up
    version_of = "flax"
    momentum_convention = "old"
    running_var = "biased"
    preferred_layout = "channels_last"

    def unsupported(self, spec, shape, dtype, features=()):
        return no_running_stats(spec) or super().unsupported(spec, shape, dtype, features)

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        """flax.nnx.BatchNorm(axis_name=AXIS) under jax.shard_map, one host CPU device per replica."""
        from flax import nnx

        x, mask, dy, n = shard_inputs(job)
        build = builder(FlaxNnxLayer, functools.partial(_batch_norm, axis_name=AXIS))
        layer = replica_layer(build, job, (n, *x.shape[1:]))
        graph, params, stats = nnx.split(layer.module, nnx.Param, nnx.BatchStat)
        y, dx, dp, stats, y_eval = _jitted_replicas(graph, job.replicas)(params, stats,
                                                                        *native_inputs(job, x, mask, dy))
        pshape = job.spec.param_shape(job.shards[0].shape)
        dgamma, dbeta = (dp[k][...].reshape(pshape) if k in dp else None for k in ("scale", "bias"))
        engine = f"jax.shard_map over {job.replicas} CPU devices, flax.nnx.BatchNorm(axis_name={AXIS!r})"
        return replica_run(job, engine, n, y, dx, dgamma, dbeta, stats["mean"][...], stats["var"][...], y_eval)

    def mixed_precision(self, spec, dtype):
        """Statistics run in float32 (``_compute_stats`` casts x up), but ``promote_dtype`` first casts
        γ, β (and BatchNorm's float32 running statistics) to ``dtype``: training normalizes in float32
        with half-rounded γ and β, eval BatchNorm entirely in half, and dγ, dβ, though float32, pass
        through that cast and come back rounded to the half dtype. So the documented compute dtype is
        the half one; the running statistics themselves stay float32 Variables."""
        if dtype not in HALF:
            return None
        cast = ("γ, β" if spec.kind.has_bias else "γ") + (" and running statistics" if spec.op == "batch_norm" else "")
        return MixedPath(f"flax.nnx.{CLASSES[spec.op]}(num_features, dtype=jnp.{dtype}, param_dtype=jnp.float32): "
                         f"statistics in float32, {cast} cast to {dtype} first", dtype,
                         "https://github.com/google/flax/blob/main/flax/nnx/nn/normalization.py")

    def defaults(self, op):
        from flax import nnx

        # 32 features: GroupNorm's default 32 groups divide them
        return describe(getattr(nnx, CLASSES[op])(32, rngs=nnx.Rngs(0)), op)
