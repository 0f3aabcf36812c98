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

from ..numerics.dtypes import resolve
from ..numerics.reference import Grads
from ..ops.spec import NormSpec
from .base import Adapter, Layer, MixedPath, ReplicaJob, ReplicaRun, Timed, Unsupported, builder

# The class each op is built from, by the same name in flax.linen and flax.nnx.
CLASSES = {"layer_norm": "LayerNorm", "rms_norm": "RMSNorm", "batch_norm": "BatchNorm",
           "group_norm": "GroupNorm", "instance_norm": "InstanceNorm"}
HALF = ("bfloat16", "float16")


def _enable_x64(dtype: str) -> None:
    if dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)


def _tensor(a: np.ndarray, dtype=None):
    import jax.numpy as jnp

    return jnp.asarray(np.asarray(a), dtype)


def _numpy(t) -> np.ndarray:
    return np.array(t)  # a writable copy; ml_dtypes makes bfloat16 round-trip


def _stat_dtype(dtype: str):
    """The dtype flax's own update leaves running statistics in: float32 or wider."""
    import jax.numpy as jnp

    return jnp.promote_types(jnp.float32, resolve(dtype))


def no_running_stats(spec: NormSpec) -> str | None:
    """Why flax (linen and nnx) cannot build ``spec``: its InstanceNorm has no running statistics."""
    if spec.op == "instance_norm" and spec.running_stats:
        return "flax's InstanceNorm keeps no running statistics (running_stats=True has no flax equivalent)"
    return None


def features_last(spec: NormSpec, ndim: int) -> int | None:
    """The axis to move last around a GroupNorm call (flax's GroupNorm takes features last), or None."""
    if spec.op != "group_norm":
        return None
    axis = spec.feature_axis(ndim)
    return None if axis == ndim - 1 else axis


def move_channel(t, channel: int | None, last: bool):
    """``t`` with ``channel`` moved last (``last``) or back from last; as is for None."""
    if channel is None:
        return t
    import jax.numpy as jnp

    return jnp.moveaxis(t, channel, -1) if last else jnp.moveaxis(t, -1, channel)


def param_dtype(spec: NormSpec, dtype: str) -> str:
    """γ's and β's dtype: float32 on the mixed path (flax's param_dtype), else the tested dtype."""
    return "float32" if spec.precision == "mixed" else dtype


def dtype_args(spec: NormSpec, dtype: str) -> dict:
    """flax's dtype arguments: on the mixed path the documented ``dtype=half`` (computation and
    output) with ``param_dtype=float32``; otherwise dtype None and params in the tested dtype."""
    out = {"param_dtype": resolve(param_dtype(spec, dtype))}
    return {**out, "dtype": resolve(dtype)} if spec.precision == "mixed" else out


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
def _jitted_apply(module, training: bool, stateful: bool, channel: int | None):
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

    return jax.jit(apply)


@functools.cache
def _jitted_vjp(module, stateful: bool, channel: int | None):
    """(dx, d params) of the training-mode output, the upstream gradient cast to y's dtype."""
    import jax

    def vjp(variables, xt, mask, dy):
        def f(xt, params):
            return _jitted_apply(module, True, stateful, channel)({**variables, "params": params}, xt, mask)[0]

        y, pull = jax.vjp(f, xt, variables.get("params", {}))
        return pull(dy.astype(y.dtype))

    return jax.jit(vjp)


@functools.cache
def _jitted_jvp(module, stateful: bool, channel: int | None):
    """jax.jvp of the training-mode output along tx and the params' tangents (updated stats dropped)."""
    import jax

    def jvp(variables, xt, mask, tx, tparams):
        def f(xt, params):
            return _jitted_apply(module, True, stateful, channel)({**variables, "params": params}, xt, mask)[0]

        return jax.jvp(f, (xt, variables.get("params", {})), (tx, tparams))[1]

    return jax.jit(jvp)


@functools.cache
def _jitted_second_order(module, stateful: bool, channel: int | None):
    """jax.grad of ⟨dx, v⟩ wrt (x, params), dx from the layer's own jax.vjp: grad of grad."""
    import jax
    import jax.numpy as jnp

    def second_order(variables, xt, mask, dy, v):
        def f(xt, params):
            dx = _jitted_vjp(module, stateful, channel)({**variables, "params": params}, xt, mask, dy)[0]
            return jnp.vdot(dx, v)

        return jax.grad(f, argnums=(0, 1))(xt, variables.get("params", {}))

    return jax.jit(second_order)


_SYNC = "jax.block_until_ready on every output"

AXIS = "replica"  # the mesh axis that BatchNorm(axis_name=AXIS) synchronizes over


def host_mesh(replicas: int):
    """A one-axis Mesh over the first ``replicas`` host CPU devices; JAX fixes their number when
    its CPU backend starts, so too few is a skip that says how to ask for more."""
    import jax
    from jax.sharding import Mesh

    devices = jax.devices("cpu")
    if len(devices) < replicas:
        raise Unsupported(f"{replicas} replicas need {replicas} JAX CPU devices but {len(devices)} exist: start "
                          f"the process with XLA_FLAGS=--xla_force_host_platform_device_count={replicas}")
    return Mesh(np.array(devices[:replicas]), (AXIS,))


def shard_inputs(job: ReplicaJob) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, int]:
    """x, the mask (None if nothing is masked) and dy as global arrays of equal shards, each shard
    zero-padded to the largest: shard_map needs equal shards, so a JAX user pads and masks the
    padding out of the statistics. The mask is expanded at the feature axis, as flax takes it."""
    n = max(len(s) for s in job.shards)

    def pad(parts):
        return np.concatenate([np.concatenate([a, np.zeros((n - len(a), *a.shape[1:]), a.dtype)]) for a in parts])

    x = pad(job.shards)
    masks = job.masks
    if masks is None and any(len(s) < n for s in job.shards):
        masks = [np.ones(job.spec.mask_shape(s.shape), bool) for s in job.shards]
    mask = None if masks is None else np.expand_dims(pad([np.asarray(m, bool) for m in masks]),
                                                     job.spec.feature_axis(x.ndim))
    return x, mask, pad(job.dys), n


def sharded_steps(call, replicas: int):
    """The jitted replicated run: ``call(params, stats, x, mask, training) -> (y, stats)`` applies
    one replica's BatchNorm under jax.shard_map; params enter replicated, so the transpose of
    shard_map sums their gradients over replicas (JAX's reduction, as in a data-parallel step),
    while each replica keeps its own copy of the running statistics (a leading replica axis).
    One compile covers every step: the first step's y and gradients are returned, later steps
    only update the statistics (γ and β do not change, so neither would their gradients), then
    every replica runs inference."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    mesh = host_mesh(replicas)

    def sharded(training: bool):
        def one(params, stats, x, mask):
            y, stats = call(params, jax.tree.map(lambda a: a[0], stats), x, mask, training)
            return y, jax.tree.map(lambda a: a[None], stats)

        return jax.shard_map(one, mesh=mesh, in_specs=(P(), P(AXIS), P(AXIS), P(AXIS)),
                             out_specs=(P(AXIS), P(AXIS)))

    train, infer = sharded(True), sharded(False)

    def run(params, stats, x, mask, dy, steps):
        stats = jax.tree.map(lambda a: jnp.broadcast_to(a, (replicas, *a.shape)), stats)  # one copy per replica
        y, pull, stats = jax.vjp(lambda p, xt: train(p, stats, xt, mask), params, x, has_aux=True)
        dparams, dx = pull(dy.astype(y.dtype))
        stats = jax.lax.fori_loop(1, steps, lambda _, s: train(params, s, x, mask)[1], stats)
        return y, dx, dparams, stats, infer(params, stats, x, None)[0]

    return jax.jit(run)


def replica_layer(build, job: ReplicaJob, shape: tuple[int, ...]) -> Layer:
    """One replica's BatchNorm layer for its (padded) shard shape, holding the job's γ, β and
    running statistics: what every replica starts from."""
    layer = build(job.spec, shape, job.dtype)
    if job.gamma is not None:
        layer.set_params(job.gamma, job.beta)
    layer.set_running(job.running_mean, job.running_var)
    return layer


def native_inputs(job: ReplicaJob, x: np.ndarray, mask: np.ndarray | None, dy: np.ndarray) -> tuple:
    """x, mask, dy and the step count as sharded_steps' run takes them."""
    dt = resolve(job.dtype)
    return _tensor(x, dt), None if mask is None else _tensor(mask, bool), _tensor(dy, dt), np.int32(job.steps)


def replica_run(job: ReplicaJob, engine: str, n: int, y, dx, dgamma, dbeta, mean, var, y_eval) -> ReplicaRun:
    """A ReplicaRun from the global outputs (replica r holds rows r·n to r·n + its shard), the
    running statistics per replica (leading axis) and the facts of how it ran."""
    def rows(a):
        a = _numpy(a)
        return [a[r * n:r * n + len(s)] for r, s in enumerate(job.shards)]

    mean, var = _numpy(mean), _numpy(var)
    facts = {"engine": engine, "devices": job.replicas,
             "replicas_agree": bool((mean == mean[0]).all() and (var == var[0]).all())}
    if any(len(s) < n for s in job.shards):
        facts["uneven"] = "padded to the largest shard and masked (shard_map needs equal shards)"
    return ReplicaRun(rows(y), rows(dx), None if dgamma is None else _numpy(dgamma),
                      None if dbeta is None else _numpy(dbeta), mean[0], var[0], rows(y_eval), facts)


@functools.cache
def _jitted_replicas(module, replicas: int):
    """The replicated run of a BatchNorm ``module`` built with axis_name=AXIS (see sharded_steps)."""
    def call(params, stats, x, mask, training):
        y, upd = module.apply({"params": params, "batch_stats": stats}, x, use_running_average=not training,
                              mask=mask, mutable=["batch_stats"])
        return y, upd["batch_stats"]

    return sharded_steps(call, replicas)


def _default_value(path, leaf):
    import jax.numpy as jnp

    name = getattr(path[-1], "key", "")
    return (jnp.ones if name in ("scale", "var") else jnp.zeros)(leaf.shape, leaf.dtype)


class FlaxLinenLayer(Layer):
    def __init__(self, spec, shape, dtype, native):
        super().__init__(spec, shape, dtype, native)
        _enable_x64(dtype)
        import jax

        self.module = native(spec, self.shape, dtype)
        self._stateful = spec.has_running_stats
        self._channel = features_last(spec, len(shape))
        # Only the variables' structure is traced; running init eagerly compiles every op
        # for every new shape (~0.5 s). Values are flax's defaults: γ=1, β=0, mean 0, var 1.
        c = self._channel
        native_shape = self.shape if c is None else (*shape[:c], *shape[c + 1:], shape[c])
        kw = {"use_running_average": False} if self._stateful else {}
        x0 = jax.ShapeDtypeStruct(native_shape, resolve(dtype))
        tree = jax.eval_shape(lambda key, x: self.module.init(key, x, **kw), jax.random.key(0), x0)
        self.variables = jax.tree_util.tree_map_with_path(_default_value, dict(tree))

    def _to_native(self, x: np.ndarray):
        return _tensor(x, resolve(self.dtype))

    def _mask(self, mask, ndim: int):
        """BatchNorm's mask, expanded at the feature axis."""
        return None if mask is None else _tensor(np.expand_dims(mask, self.spec.feature_axis(ndim)), bool)

    def _apply(self, training: bool):
        return _jitted_apply(self.module, training, self._stateful, self._channel)

    def _vjp(self):
        return _jitted_vjp(self.module, self._stateful, self._channel)

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
        fn = _jitted_jvp(self.module, self._stateful, self._channel)
        return _numpy(fn(self.variables, self._to_native(x), self._mask(mask, x.ndim), _tensor(tx, dt), tparams))

    def second_order(self, x, dy, v, mask=None):
        fn = _jitted_second_order(self.module, self._stateful, self._channel)
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
        return Timed(lambda: jax.block_until_ready(fn(*args)), _SYNC, fn._cache_size)


def describe(layer, op: str) -> dict:
    """The defaults of a flax (linen or nnx) layer: the attribute names are the same in both."""
    out = {"eps": layer.epsilon}
    if op == "batch_norm":
        out["momentum"] = layer.momentum
    out["affine"] = bool(layer.use_scale and getattr(layer, "use_bias", True))
    if op == "group_norm":
        out["num_groups"] = layer.num_groups
    if op == "instance_norm":
        out["track_running_stats"] = False  # flax has no such option
    if op != "rms_norm":  # RMSNorm takes no mean, so the flag changes nothing there
        out["use_fast_variance"] = layer.use_fast_variance
    return out


class FlaxLinenAdapter(Adapter):
    name = "flax.linen"
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

