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

import numpy as np

from ..dtypes import resolve
from ..reference import Grads
from ..spec import NormSpec
from .base import Adapter, Layer
from .flax_linen import _enable_x64, _numpy, _tensor


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

    def _call(self, module, xt, training: bool, mask=None):
        """Call ``module`` (this layer's or a merged copy); BatchNorm's mask is expanded."""
        if self.spec.op == "layer_norm":
            return module(xt)
        if mask is not None:
            mask = _tensor(np.expand_dims(mask, self.spec.feature_axis(xt.ndim)), bool)
        return module(xt, use_running_average=not training, mask=mask)

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
        return _numpy(self._call(self.module, self._to_native(x), training, mask))

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        import jax
        from flax import nnx

        graph, params, rest = nnx.split(self.module, nnx.Param, ...)

        def f(xt, p):
            return self._call(nnx.merge(graph, p, rest, copy=True), xt, True, mask)

        y, pull = jax.vjp(f, self._to_native(x), params)
        dx, dp = pull(_tensor(dy, y.dtype))
        if not self.spec.affine:
            return Grads(_numpy(dx), None, None)
        pshape = self.spec.param_shape(self.shape)
        return Grads(_numpy(dx), *(_numpy(dp[k][...]).reshape(pshape) for k in ("scale", "bias")))


class FlaxNnxAdapter(Adapter):
    name = "flax.nnx"
    layer = FlaxNnxLayer
    requires = ("jax", "flax")
    extra = "jax"
    version_of = "flax"
