"""flax.nnx.LayerNorm and BatchNorm, called eagerly as stateful modules.

Conventions match flax.linen (see flax_linen.py: flax momentum = 1 − spec.momentum, default
use_fast_variance, dtype None, param_dtype = tested dtype, biased running variance, x64
switched on by the first float64 layer). nnx specifics, passed through: BatchNorm's running
statistics are float32 Variables updated in place, so they stay float32 even for float64
(JAX warns about the float64→float32 scatter), and they promote x, so a float16/bfloat16
BatchNorm returns float32. nnx.LayerNorm takes a flat ``num_features`` and reshapes its (n,)
scale to the feature axes, so γ is loaded flattened and dγ reshaped back to param_shape.
"""

from __future__ import annotations

import functools

import numpy as np

from ..dtypes import resolve
from ..reference import Grads
from ..spec import NormSpec
from .base import Adapter, Layer, Timed
from .flax_linen import _SYNC, _enable_x64, _numpy, _tensor


def _run(module, op: str, xt, training: bool, mask):
    if op == "layer_norm":
        return module(xt)
    return module(xt, use_running_average=not training, mask=mask)


@functools.cache
def _jitted_apply(graph, op: str, training: bool):
    """A pure, jitted call of the module described by ``graph`` (hashable, so one compile per
    configuration and shape); eager nnx compiles every op separately for each new shape."""
    import jax
    from flax import nnx

    def apply(state, xt, mask):
        module = nnx.merge(graph, state)
        y = _run(module, op, xt, training, mask)
        return y, nnx.state(module)

    return jax.jit(apply)


@functools.cache
def _jitted_vjp(graph, op: str):
    """(dx, d params) of the training-mode output; a merged copy leaves the layer's stats alone."""
    import jax
    from flax import nnx

    def vjp(params, rest, xt, mask, dy):
        def f(xt, p):
            return _run(nnx.merge(graph, p, rest, copy=True), op, xt, True, mask)

        y, pull = jax.vjp(f, xt, params)
        return pull(dy.astype(y.dtype))

    return jax.jit(vjp)


class FlaxNnxLayer(Layer):
    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str) -> None:
        super().__init__(spec, shape, dtype)
        _enable_x64(dtype)
        from flax import nnx

        pshape = spec.param_shape(shape)
        common = dict(epsilon=spec.eps, use_scale=spec.affine, use_bias=spec.affine,
                      param_dtype=resolve(dtype), rngs=nnx.Rngs(0))
        if spec.op == "layer_norm":
            axes = spec.reduce_axes(len(shape))
            self.module = nnx.LayerNorm(int(np.prod(pshape)), reduction_axes=axes,
                                        feature_axes=axes, **common)
        else:
            self.module = nnx.BatchNorm(pshape[0], axis=spec.feature_axis(len(shape)),
                                        momentum=1 - spec.momentum, **common)

    def _to_native(self, x: np.ndarray):
        return _tensor(x, resolve(self.dtype))

    def _call(self, xt, training: bool, mask=None):
        """Call the module under jit; its updated state (running statistics) is written back."""
        from flax import nnx

        if mask is not None:
            mask = _tensor(np.expand_dims(mask, self.spec.feature_axis(xt.ndim)), bool)
        graph, state = nnx.split(self.module)
        y, state = _jitted_apply(graph, self.spec.op, training)(state, xt, mask)
        nnx.update(self.module, state)
        return y

    def set_params(self, gamma: np.ndarray, beta: np.ndarray) -> None:
        dt = resolve(self.dtype)
        self.module.scale[...] = _tensor(np.reshape(gamma, -1), dt)
        self.module.bias[...] = _tensor(np.reshape(beta, -1), dt)

    def set_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        # In the Variables' own dtype (float32), as nnx's in-place update keeps them.
        self.module.mean[...] = _tensor(mean, self.module.mean[...].dtype)
        self.module.var[...] = _tensor(var, self.module.var[...].dtype)

    def running(self) -> tuple[np.ndarray, np.ndarray]:
        return _numpy(self.module.mean[...]), _numpy(self.module.var[...])

    def forward(self, x: np.ndarray, training: bool, mask: np.ndarray | None = None) -> np.ndarray:
        return _numpy(self._call(self._to_native(x), training, mask))

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        from flax import nnx

        if mask is not None:
            mask = _tensor(np.expand_dims(mask, self.spec.feature_axis(x.ndim)), bool)
        graph, params, rest = nnx.split(self.module, nnx.Param, ...)
        dx, dp = _jitted_vjp(graph, self.spec.op)(params, rest, self._to_native(x), mask, _tensor(dy))
        if not self.spec.affine:
            return Grads(_numpy(dx), None, None)
        pshape = self.spec.param_shape(self.shape)
        return Grads(_numpy(dx), *(_numpy(dp[k][...]).reshape(pshape) for k in ("scale", "bias")))

    def timed(self, x, mode, dy=None):
        import jax
        from flax import nnx

        # Split once; "train" drops the returned state, so the module's stats stay as they are.
        xt, op = self._to_native(x), self.spec.op
        if mode == "forward_backward":
            graph, params, rest = nnx.split(self.module, nnx.Param, ...)
            fn, args = _jitted_vjp(graph, op), (params, rest, xt, None, self._to_native(dy))
        else:
            graph, state = nnx.split(self.module)
            fn, args = _jitted_apply(graph, op, mode == "train"), (state, xt, None)
        # jit dispatches asynchronously; the first call compiles (cached per configuration and shape)
        return Timed(lambda: jax.block_until_ready(fn(*args)), _SYNC, fn._cache_size)


class FlaxNnxAdapter(Adapter):
    name = "flax.nnx"
    layer = FlaxNnxLayer
    requires = ("jax", "flax")
    extra = "jax"
    group = "jax"  # linen and nnx share one process: one JAX start-up
    version_of = "flax"
    momentum_convention = "old"
    preferred_layout = "channels_last"

    def defaults(self, op):
        from flax import nnx

        if op == "layer_norm":
            return {"eps": nnx.LayerNorm(4, rngs=nnx.Rngs(0)).epsilon}
        layer = nnx.BatchNorm(4, rngs=nnx.Rngs(0))
        return {"eps": layer.epsilon, "momentum": layer.momentum}
