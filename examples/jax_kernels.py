"""Five norms as one hand-written JAX kernel, the way a kernel author brings one to normbench: every op,
both layouts, every dtype (statistics accumulated in float32 for half inputs), gradients, JVP and
second order by JAX's own autodiff, and a benchmark path.

    normbench check-adapter examples.jax_kernels:JaxKernels
    normbench verify --adapters examples.jax_kernels:JaxKernels
    normbench run --adapters examples.jax_kernels:JaxKernels,flax.linen --suites agreement,speed
"""

import numpy as np

from normbench import Adapter, Grads, Layer, Unsupported
from normbench.adapters.base import Timed


class NormKernel(Layer):
    """y = γ·(x − μ)/√(σ² + eps) + β over the spec's statistics (RMSNorm: x/√(mean(x²) + eps)·γ)."""

    def __init__(self, spec, shape, dtype, native=None, mode=None):
        super().__init__(spec, shape, dtype, native, mode)
        if spec.op == "instance_norm" and spec.running_stats:
            raise Unsupported("this kernel keeps no InstanceNorm running statistics")
        import jax

        jax.config.update("jax_enable_x64", True)  # float64 inputs stay float64
        self.pshape = spec.param_shape(self.shape)
        self.centred, self.bias = spec.kind.centred, spec.kind.has_bias
        self.train = jax.jit(lambda x, g, b: self._normalize(x, g, b)[0])
        self.infer = jax.jit(self._eval)

    def _broadcast(self, shape):
        """γ's shape broadcast against an input of ``shape`` (a layer may be called on another batch)."""
        params = self.spec.param_axes(len(shape))
        return tuple(shape[a] if a in params else 1 for a in range(len(shape)))

    def _normalize(self, x, gamma, beta):
        import jax
        import jax.numpy as jnp

        acc = jnp.promote_types(x.dtype, jnp.float32)  # half inputs accumulate in float32
        view, axes = self.spec.stats_view(x.shape)  # e.g. GroupNorm: (N, G, C/G, ...) over (2, ...)
        v = x.astype(acc).reshape(view)
        mean = v.mean(axes, keepdims=True) if self.centred else jnp.zeros((), acc)
        var = jnp.square(v - mean).mean(axes, keepdims=True)
        y = ((v - mean) * jax.lax.rsqrt(var + self.spec.eps)).reshape(x.shape)
        b = self._broadcast(x.shape)
        y = y * gamma.astype(acc).reshape(b) + (beta.astype(acc).reshape(b) if self.bias else 0)
        return y.astype(x.dtype), mean, var

    def _eval(self, x, gamma, beta, mean, var):
        import jax
        import jax.numpy as jnp

        acc, b = jnp.promote_types(x.dtype, jnp.float32), self._broadcast(x.shape)
        m, s = (a.astype(acc).reshape(b) for a in (mean, var))
        y = (x.astype(acc) - m) * jax.lax.rsqrt(s + self.spec.eps)
        return (y * gamma.astype(acc).reshape(b) + beta.astype(acc).reshape(b)).astype(x.dtype)

    def _params(self):
        import jax.numpy as jnp

        return jnp.asarray(self.gamma), jnp.asarray(self.beta)

    def forward(self, x, training, mask=None):
        import jax.numpy as jnp

        xj, (g, b) = jnp.asarray(x), self._params()
        if not training and self.spec.has_running_stats:
            return np.asarray(self.infer(xj, g, b, jnp.asarray(self.running_mean), jnp.asarray(self.running_var)))
        y, mean, var = self._normalize(xj, g, b)
        if self.spec.has_running_stats:  # batch statistics per channel, into the running ones ("new" momentum)
            m, dt = self.spec.momentum, self.running_mean.dtype
            self.running_mean = ((1 - m) * self.running_mean + m * np.asarray(mean).reshape(self.pshape)).astype(dt)
            self.running_var = ((1 - m) * self.running_var + m * np.asarray(var).reshape(self.pshape)).astype(dt)
        return np.asarray(y)

    def vjp(self, x, dy, mask=None):
        import jax
        import jax.numpy as jnp

        g, b = self._params()
        _, pull = jax.vjp(self.train, jnp.asarray(x), g, b)
        dx, dg, db = (np.asarray(t) for t in pull(jnp.asarray(dy)))
        return Grads(dx, dg if self.spec.affine else None, db if self.spec.affine and self.bias else None)

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        import jax
        import jax.numpy as jnp

        g, b = self._params()
        tg = jnp.zeros_like(g) if tgamma is None else jnp.asarray(tgamma, g.dtype)
        tb = jnp.zeros_like(b) if tbeta is None else jnp.asarray(tbeta, b.dtype)
        return np.asarray(jax.jvp(self.train, (jnp.asarray(x), g, b), (jnp.asarray(tx, x.dtype), tg, tb))[1])

    def second_order(self, x, dy, v, mask=None):
        import jax
        import jax.numpy as jnp

        g, b = self._params()
        dyj, vj = jnp.asarray(dy), jnp.asarray(v)

        def penalty(xx, gg):  # <dx, v>, dx this kernel's own VJP of dy
            return jnp.vdot(jax.vjp(lambda t: self.train(t, gg, b), xx)[1](dyj)[0], vj)

        gx, gg = jax.grad(penalty, argnums=(0, 1))(jnp.asarray(x), g)
        return np.asarray(gx), np.asarray(gg) if self.spec.affine else None

    def timed(self, x, mode, dy=None):
        import jax
        import jax.numpy as jnp

        xj, (g, b) = jnp.asarray(x), self._params()
        if mode == "forward_backward":
            fn = jax.jit(lambda t, d: jax.vjp(self.train, t, g, b)[1](d))
            args = (xj, jnp.asarray(dy))
        elif mode == "eval":
            fn, args = self.infer, (xj, g, b, jnp.asarray(self.running_mean), jnp.asarray(self.running_var))
        else:
            fn, args = self.train, (xj, g, b)
        return Timed(lambda: jax.block_until_ready(fn(*args)), "jax.block_until_ready")


class JaxKernels(Adapter):
    name = "jax-kernels"
    builders = dict.fromkeys(("layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm"), NormKernel)
    requires = ("jax",)
    features = frozenset({"eval", "running_stats", "grad", "jvp", "second_order"})  # no masks
    running_var = "biased"  # the batch variance, not Bessel-corrected
    momentum_convention = "new"

    def defaults(self, op):
        """What NormKernel does without options: NormSpec's defaults."""
        from normbench import NormSpec

        spec = NormSpec(op, groups=2) if op == "group_norm" else NormSpec(op)
        out = {"eps": spec.eps, "affine": spec.affine}
        if op in ("batch_norm", "instance_norm"):
            out["momentum"] = spec.momentum
            out["track_running_stats"] = op == "batch_norm"
        return out
