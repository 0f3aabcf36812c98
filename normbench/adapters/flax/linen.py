"""flax.linen LayerNorm, RMSNorm, BatchNorm, GroupNorm and InstanceNorm, applied eagerly with
variables held by the layer.

Defaults as users get them: eps 1e-6 for every op but BatchNorm (1e-5), and use_fast_variance
(one-pass E[x²] − E[x]²) on for every centred op, so the suite sees the statistics users get;
``dtype`` stays None (output dtype inferred), param_dtype is the tested dtype; the mixed-precision
path is flax's documented one, ``dtype=<half>`` with ``param_dtype=float32``. BatchNorm and
InstanceNorm take the channel axis natively (``axis=`` / ``feature_axes=``); GroupNorm only
normalizes features on the last axis, so a channels_first input has its channel axis moved
last and back around the call, inside the jitted function, as a user would. flax's momentum
is ``1 − spec.momentum``; BatchNorm stores biased running variance, starting as float32 and
promoted by the update (float64 under x64), passed through. flax's InstanceNorm keeps no
running statistics, so that option is a skip. float64 needs JAX's x64 mode, which is
process-wide: the first float64 layer switches it on (jax allows this after arrays exist, and
float32 and half-precision results are bit-identical with it on), so a run never depends on
the caller remembering to set JAX_ENABLE_X64. Synchronized BatchNorm (``replicate``, shared
with flax.nnx) is flax's own ``axis_name`` path under jax.shard_map over host CPU devices;
uneven shards are zero-padded to the largest and masked out, since shard_map needs equal shards.
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
    _stat_dtype,
    _tensor,
    describe,
    dtype_args,
    features_last,
    move_channel,
    no_running_stats,
    param_dtype,
)
from .replicas import AXIS, native_inputs, replica_layer, replica_run, shard_inputs, sharded_steps


# The class each op is built from, by the same name in flax.linen and flax.nnx.
def _common(spec: NormSpec, dtype: str) -> dict:
    out = dict(epsilon=spec.eps, use_scale=spec.affine, **dtype_args(spec, dtype))
    if spec.kind.has_bias:
        out["use_bias"] = spec.affine
    return out


def _layer_norm(spec, shape, dtype):
    import flax.linen as nn

    axes = spec.reduce_axes(len(shape))
    return nn.LayerNorm(reduction_axes=axes, feature_axes=axes, **_common(spec, dtype))


def _rms_norm(spec, shape, dtype):
    import flax.linen as nn

    axes = spec.reduce_axes(len(shape))
    return nn.RMSNorm(reduction_axes=axes, feature_axes=axes, **_common(spec, dtype))


def _batch_norm(spec, shape, dtype):
    import flax.linen as nn

    return nn.BatchNorm(axis=spec.feature_axis(len(shape)), momentum=1 - spec.momentum, **_common(spec, dtype))


def _group_norm(spec, shape, dtype):
    import flax.linen as nn

    # Reduces every axis but the first (batch); the channels (last, see features_last) split contiguously.
    return nn.GroupNorm(num_groups=spec.groups, **_common(spec, dtype))


def _instance_norm(spec, shape, dtype):
    import flax.linen as nn

    if reason := no_running_stats(spec):
        raise Unsupported(reason)
    return nn.InstanceNorm(feature_axes=spec.feature_axis(len(shape)), **_common(spec, dtype))


@functools.cache
def _jitted_apply(module, training: bool, stateful: bool, channel: int | None, jit: bool = True):
    """apply under jax.jit, as users run flax; one per layer configuration (modules hash by
    their fields), so only a new shape or dtype compiles. Eager flax compiles every op
    separately for each new shape, ~5x slower."""
    import jax

    def apply(variables, xt, mask):
        xt = move_channel(xt, channel, last=True)
        if not stateful:
            return move_channel(module.apply(variables, xt), channel, last=False), variables
        y, upd = module.apply(variables, xt, use_running_average=not training, mask=mask,
                              mutable=["batch_stats"])
        return move_channel(y, channel, last=False), {**variables, **upd}

    return jax.jit(apply) if jit else apply


@functools.cache
def _jitted_vjp(module, stateful: bool, channel: int | None, jit: bool = True):
    """(dx, d params) of the training-mode output, the upstream gradient cast to y's dtype."""
    import jax

    def vjp(variables, xt, mask, dy):
        def f(xt, params):
            return _jitted_apply(module, True, stateful, channel, jit)({**variables, "params": params}, xt, mask)[0]

        y, pull = jax.vjp(f, xt, variables.get("params", {}))
        return pull(dy.astype(y.dtype))

    return jax.jit(vjp) if jit else vjp


@functools.cache
def _jitted_jvp(module, stateful: bool, channel: int | None, jit: bool = True):
    """jax.jvp of the training-mode output along tx and the params' tangents (updated stats dropped)."""
    import jax

    def jvp(variables, xt, mask, tx, tparams):
        def f(xt, params):
            return _jitted_apply(module, True, stateful, channel, jit)({**variables, "params": params}, xt, mask)[0]

        return jax.jvp(f, (xt, variables.get("params", {})), (tx, tparams))[1]

    return jax.jit(jvp) if jit else jvp


@functools.cache
def _jitted_second_order(module, stateful: bool, channel: int | None, jit: bool = True):
    """jax.grad of ⟨dx, v⟩ wrt (x, params), dx from the layer's own jax.vjp: grad of grad."""
    import jax
    import jax.numpy as jnp

    def second_order(variables, xt, mask, dy, v):
        def f(xt, params):
            dx = _jitted_vjp(module, stateful, channel, jit)({**variables, "params": params}, xt, mask, dy)[0]
            return jnp.vdot(dx, v)

        return jax.grad(f, argnums=(0, 1))(xt, variables.get("params", {}))

    return jax.jit(second_order) if jit else second_order



@functools.cache
def _jitted_replicas(module, replicas: int):
    """The replicated run of a BatchNorm ``module`` built with axis_name=AXIS (see sharded_steps)."""
    def call(params, stats, x, mask, training):
        y, upd = module.apply({"params": params, "batch_stats": stats}, x, use_running_average=not training,
                              mask=mask, mutable=["batch_stats"])
        return y, upd["batch_stats"]

    return sharded_steps(call, replicas)


@functools.cache
def _variable_shapes(module, native_shape: tuple[int, ...], dtype: str, stateful: bool):
    """The variables' shapes and dtypes, traced once per configuration (modules hash by their fields):
    tracing ``init`` for every layer took 17 s of flax.linen's 157 s verification."""
    import jax

    kw = {"use_running_average": False} if stateful else {}
    x0 = jax.ShapeDtypeStruct(native_shape, resolve(dtype))
    return jax.eval_shape(lambda key, x: module.init(key, x, **kw), jax.random.key(0), x0)


def _default_value(path, leaf):
    import jax.numpy as jnp

    name = getattr(path[-1], "key", "")
    return (jnp.ones if name in ("scale", "var") else jnp.zeros)(leaf.shape, leaf.dtype)


class FlaxLinenLayer(Layer):
    def __init__(self, spec, shape, dtype, native, mode=None):
        super().__init__(spec, shape, dtype, native, mode)
        _enable_x64(dtype)
        import jax

        self.module = native(spec, self.shape, dtype)
        self._stateful = spec.has_running_stats
        self._channel = features_last(spec, len(shape))
        # Only the variables' structure is traced; running init eagerly compiles every op
        # for every new shape (~0.5 s). Values are flax's defaults: γ=1, β=0, mean 0, var 1.
        c = self._channel
        native_shape = self.shape if c is None else (*shape[:c], *shape[c + 1:], shape[c])
        tree = _variable_shapes(self.module, tuple(native_shape), dtype, self._stateful)
        self.variables = jax.tree_util.tree_map_with_path(_default_value, dict(tree))

    def _to_native(self, x: np.ndarray):
        return _tensor(x, resolve(self.dtype))

    def _mask(self, mask, ndim: int):
        """BatchNorm's mask, expanded at the feature axis."""
        return None if mask is None else _tensor(np.expand_dims(mask, self.spec.feature_axis(ndim)), bool)

    def _apply(self, training: bool):
        return _jitted_apply(self.module, training, self._stateful, self._channel, self.mode is None)

    def _vjp(self):
        return _jitted_vjp(self.module, self._stateful, self._channel, self.mode is None)

    def set_params(self, gamma: np.ndarray, beta: np.ndarray | None) -> None:
        dt = resolve(param_dtype(self.spec, self.dtype))
        self.variables["params"] = {"scale": _tensor(gamma, dt)}
        if beta is not None:
            self.variables["params"]["bias"] = _tensor(beta, dt)

    def set_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        dt = _stat_dtype(self.dtype)
        self.variables["batch_stats"] = {"mean": _tensor(mean, dt), "var": _tensor(var, dt)}

    def running(self) -> tuple[np.ndarray, np.ndarray]:
        stats = self.variables["batch_stats"]
        return _numpy(stats["mean"]), _numpy(stats["var"])

    def forward(self, x: np.ndarray, training: bool, mask: np.ndarray | None = None) -> np.ndarray:
        y, self.variables = self._apply(training)(self.variables, self._to_native(x), self._mask(mask, x.ndim))
        return _numpy(y)

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        dx, dp = self._vjp()(self.variables, self._to_native(x), self._mask(mask, x.ndim), _tensor(dy))
        return Grads(_numpy(dx), *(_numpy(dp[k]) if k in dp else None for k in ("scale", "bias")))

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        dt, pt = resolve(self.dtype), resolve(param_dtype(self.spec, self.dtype))
        tparams = {k: _tensor(t, pt) for k, t in (("scale", tgamma), ("bias", tbeta)) if t is not None}
        fn = _jitted_jvp(self.module, self._stateful, self._channel, self.mode is None)
        return _numpy(fn(self.variables, self._to_native(x), self._mask(mask, x.ndim), _tensor(tx, dt), tparams))

    def second_order(self, x, dy, v, mask=None):
        fn = _jitted_second_order(self.module, self._stateful, self._channel, self.mode is None)
        ddx, dp = fn(self.variables, self._to_native(x), self._mask(mask, x.ndim), _tensor(dy), self._to_native(v))
        return _numpy(ddx), _numpy(dp["scale"]) if "scale" in dp else None

    def timed(self, x, mode, dy=None):
        import jax

        # The same variables every call: "train" drops its updated stats, keeping the call pure.
        xt, v = self._to_native(x), self.variables
        if mode == "forward_backward":
            fn, args = self._vjp(), (v, xt, None, self._to_native(dy))
        else:
            fn, args = self._apply(mode == "train"), (v, xt, None)
        # jit dispatches asynchronously; the first call compiles (cached per configuration and shape)
        return Timed(lambda: jax.block_until_ready(fn(*args)), _SYNC, getattr(fn, "_cache_size", None))


class FlaxLinenAdapter(Adapter):
    name = "flax.linen"
    modes = MODES
    builders = {op: builder(FlaxLinenLayer, native) for op, native in (
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
        """flax.linen.BatchNorm(axis_name=AXIS) under jax.shard_map, one host CPU device per replica."""
        x, mask, dy, n = shard_inputs(job)
        layer = replica_layer(self.builders["batch_norm"], job, (n, *x.shape[1:]))
        fn = _jitted_replicas(layer.module.clone(axis_name=AXIS), job.replicas)
        y, dx, dp, stats, y_eval = fn(layer.variables.get("params", {}), layer.variables["batch_stats"],
                                      *native_inputs(job, x, mask, dy))
        engine = f"jax.shard_map over {job.replicas} CPU devices, flax.linen.BatchNorm(axis_name={AXIS!r})"
        return replica_run(job, engine, n, y, dx, dp.get("scale"), dp.get("bias"), stats["mean"], stats["var"],
                           y_eval)

    def mixed_precision(self, spec, dtype):
        """Statistics and the whole normalization run in float32: ``_compute_stats`` casts x to at
        least float32 and ``_normalize`` subtracts that float32 mean from x, so the rest promotes
        to float32 with the float32 γ, β (and running statistics, kept float32); only the output
        is cast to ``dtype``. dγ, dβ come back float32; dx in x's half dtype, but x is upcast twice
        (once per function), so JAX sums two half-rounded cotangents in half: not float32-accurate."""
        if dtype not in HALF:
            return None
        return MixedPath(f"flax.linen.{CLASSES[spec.op]}(dtype=jnp.{dtype}, param_dtype=jnp.float32): statistics "
                         f"and normalization in float32, output cast to {dtype}", "float32",
                         "https://github.com/google/flax/blob/main/flax/linen/normalization.py")

    def defaults(self, op):
        import flax.linen as nn

        return describe(getattr(nn, CLASSES[op])(), op)

