"""A user-written adapter: a float32 two-pass LayerNorm in plain numpy.

Run the suites on it with:  normbench --adapters examples.my_layernorm:MyLayerNorm
(or register it under the ``normbench.adapters`` entry-point group of your package).
"""

import numpy as np

from normbench import Adapter, Grads, Layer


class MyLayer(Layer):
    def forward(self, x, training, mask=None):
        axes = self.spec.reduce_axes(x.ndim)
        mean = x.mean(axes, keepdims=True)
        xhat = (x - mean) / np.sqrt(((x - mean) ** 2).mean(axes, keepdims=True) + self.spec.eps)
        return xhat * self.gamma + self.beta

    def vjp(self, x, dy, mask=None):
        axes = self.spec.reduce_axes(x.ndim)
        mean = x.mean(axes, keepdims=True)
        rstd = 1 / np.sqrt(((x - mean) ** 2).mean(axes, keepdims=True) + self.spec.eps)
        xhat, g = (x - mean) * rstd, dy * self.gamma
        dx = rstd * (g - g.mean(axes, keepdims=True) - xhat * (g * xhat).mean(axes, keepdims=True))
        lead = tuple(range(x.ndim - self.spec.normalized_ndim))
        return Grads(dx, (dy * xhat).sum(lead), dy.sum(lead))


class MyLayerNorm(Adapter):
    name = "my-layernorm"
    layer = MyLayer
    ops = frozenset({"layer_norm"})
    dtypes = frozenset({"float32"})
    features = frozenset({"eval", "grad"})
