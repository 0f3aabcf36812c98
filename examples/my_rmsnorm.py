"""A third-party RMSNorm adapter: a float32 numpy kernel, verified by every suite.

    normbench verify --adapters examples.my_rmsnorm:MyRMSNormAdapter
"""

import numpy as np

from normbench import Adapter, Grads, Layer


class MyRMSNorm(Layer):
    """y = γ · x / √(mean(x²) + eps) over the trailing normalized axes; no β."""

    def _rstd(self, x):
        axes = self.spec.reduce_axes(x.ndim)
        return 1 / np.sqrt((x * x).mean(axes, keepdims=True) + self.spec.eps), axes

    def forward(self, x, training, mask=None):
        rstd, _ = self._rstd(x)
        return (x * rstd * self.gamma).astype(x.dtype)

    def vjp(self, x, dy, mask=None):
        rstd, axes = self._rstd(x)
        xhat, g = x * rstd, dy * self.gamma
        dx = rstd * (g - xhat * (g * xhat).mean(axes, keepdims=True))
        lead = tuple(range(x.ndim - self.spec.normalized_ndim))
        return Grads(dx.astype(x.dtype), (dy * xhat).sum(lead).astype(x.dtype), None)


class MyRMSNormAdapter(Adapter):
    name = "my-rmsnorm"
    builders = {"rms_norm": MyRMSNorm}  # the ops it builds; every other op is a skip
    dtypes = frozenset({"float32"})
    features = frozenset({"eval", "grad"})
