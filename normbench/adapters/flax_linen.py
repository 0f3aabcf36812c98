"""flax.linen.LayerNorm and BatchNorm, applied eagerly with variables held by the layer.

Both BatchNorm layouts are native (``axis=``); flax's momentum is ``1 − spec.momentum``.
use_fast_variance keeps flax's default (one-pass E[x²] − E[x]²) and ``dtype`` stays None, so
the suite sees the statistics and output dtype users get; param_dtype is the tested dtype.
flax stores biased running variance, starting as float32 and promoted by the update
(float64 under x64), passed through. float64 needs JAX's x64 mode, which is process-wide:
the first float64 layer switches it on (jax allows this after arrays exist, and float32 and
half-precision results are bit-identical with it on), so a run never depends on the caller
remembering to set JAX_ENABLE_X64.
"""

from __future__ import annotations

import functools

import numpy as np

from ..dtypes import resolve
from ..reference import Grads
from ..spec import NormSpec
from .base import Adapter, Layer, Timed


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


@functools.cache
def _jitted_apply(module, training: bool):
    """apply under jax.jit, as users run flax; one per layer configuration (modules hash by
    their fields), so only a new shape or dtype compiles. Eager flax compiles every op
    separately for each new shape, ~5x slower."""
    import flax.linen as nn
    import jax

    def apply(variables, xt, mask):
        if isinstance(module, nn.LayerNorm):
            return module.apply(variables, xt), variables
        y, upd = module.apply(variables, xt, use_running_average=not training, mask=mask,
                              mutable=["batch_stats"])
        return y, {**variables, **upd}

    return jax.jit(apply)


@functools.cache
def _jitted_vjp(module):
    """(dx, d params) of the training-mode output, the upstream gradient cast to y's dtype."""
    import jax

    def vjp(variables, xt, mask, dy):
        def f(xt, params):
            return _jitted_apply(module, True)({**variables, "params": params}, xt, mask)[0]

        y, pull = jax.vjp(f, xt, variables.get("params", {}))
        return pull(dy.astype(y.dtype))

    return jax.jit(vjp)


_SYNC = "jax.block_until_ready on every output"


def _default_value(path, leaf):
    import jax.numpy as jnp

    name = getattr(path[-1], "key", "")
    return (jnp.ones if name in ("scale", "var") else jnp.zeros)(leaf.shape, leaf.dtype)


class FlaxLinenLayer(Layer):
    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str) -> None:
        super().__init__(spec, shape, dtype)
        _enable_x64(dtype)
        import flax.linen as nn
        import jax

        common = dict(epsilon=spec.eps, use_scale=spec.affine, use_bias=spec.affine,
                      param_dtype=resolve(dtype))
        if spec.op == "layer_norm":
            axes = spec.reduce_axes(len(shape))
            self.module = nn.LayerNorm(reduction_axes=axes, feature_axes=axes, **common)
        else:
            self.module = nn.BatchNorm(axis=spec.feature_axis(len(shape)),
                                       momentum=1 - spec.momentum, **common)
        kw = {} if spec.op == "layer_norm" else {"use_running_average": False}
        # Only the variables' structure is traced; running init eagerly compiles every op
        # for every new shape (~0.5 s). Values are flax's defaults: γ=1, β=0, mean 0, var 1.
        x0 = jax.ShapeDtypeStruct(shape, resolve(dtype))
        tree = jax.eval_shape(lambda key, x: self.module.init(key, x, **kw), jax.random.key(0), x0)
        self.variables = jax.tree_util.tree_map_with_path(_default_value, dict(tree))

    def _to_native(self, x: np.ndarray):
        return _tensor(x, resolve(self.dtype))

    def _call(self, variables: dict, xt, training: bool, mask=None):
        """(y, variables after the call); BatchNorm's mask is expanded at the feature axis."""
        if mask is not None:
            mask = _tensor(np.expand_dims(mask, self.spec.feature_axis(xt.ndim)), bool)
        return _jitted_apply(self.module, training)(variables, xt, mask)

    def set_params(self, gamma: np.ndarray, beta: np.ndarray) -> None:
        dt = resolve(self.dtype)
        self.variables["params"] = {"scale": _tensor(gamma, dt), "bias": _tensor(beta, dt)}

    def set_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        dt = _stat_dtype(self.dtype)
        self.variables["batch_stats"] = {"mean": _tensor(mean, dt), "var": _tensor(var, dt)}

    def running(self) -> tuple[np.ndarray, np.ndarray]:
        stats = self.variables["batch_stats"]
        return _numpy(stats["mean"]), _numpy(stats["var"])

    def forward(self, x: np.ndarray, training: bool, mask: np.ndarray | None = None) -> np.ndarray:
        y, self.variables = self._call(self.variables, self._to_native(x), training, mask)
        return _numpy(y)

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        if mask is not None:
            mask = _tensor(np.expand_dims(mask, self.spec.feature_axis(x.ndim)), bool)
        dx, dp = _jitted_vjp(self.module)(self.variables, self._to_native(x), mask, _tensor(dy, None))
        if not self.spec.affine:
            return Grads(_numpy(dx), None, None)
        return Grads(_numpy(dx), _numpy(dp["scale"]), _numpy(dp["bias"]))

    def timed(self, x, mode, dy=None):
        import jax

        # The same variables every call: "train" drops its updated stats, keeping the call pure.
        xt, v = self._to_native(x), self.variables
        if mode == "forward_backward":
            fn, args = _jitted_vjp(self.module), (v, xt, None, self._to_native(dy))
        else:
            fn, args = _jitted_apply(self.module, mode == "train"), (v, xt, None)
        # jit dispatches asynchronously; the first call compiles (cached per configuration and shape)
        return Timed(lambda: jax.block_until_ready(fn(*args)), _SYNC, fn._cache_size)


class FlaxLinenAdapter(Adapter):
    name = "flax.linen"
    layer = FlaxLinenLayer
    requires = ("jax", "flax")
    extra = "jax"
    group = "jax"  # linen and nnx share one process: one JAX start-up
    version_of = "flax"
    momentum_convention = "old"
    preferred_layout = "channels_last"

    def defaults(self, op):
        import flax.linen as nn

        if op == "layer_norm":
            return {"eps": nn.LayerNorm().epsilon}
        layer = nn.BatchNorm()
        return {"eps": layer.epsilon, "momentum": layer.momentum}
