"""flax layers as standalone source (``adapters.repro``): flax.linen modules applied with their variables, flax.nnx
modules split and merged, both under jax.jit (the default mode) or op by op (``eager``), as ``linen.py`` and
``nnx.py`` build and call them."""

from __future__ import annotations

import numpy as np

from ..repro import Cannot, Source, Target, klass, lines, method, py
from .common import CLASSES, MODES, features_last, no_running_stats

ADAPTERS = ("flax.linen", "flax.nnx")

_HELPERS = '''
def native(a, dtype):
    """A float64 array as a JAX array of ``dtype`` (exact: it holds that dtype's values)."""
    return jnp.asarray(np.asarray(a), dtype)
'''


def _arguments(target: Target, api: str) -> str:
    """The constructor's arguments (``linen._layer_norm`` and ``nnx._layer_norm`` and their siblings)."""
    spec, shape = target.spec, target.shape
    args = []
    if api == "nnx":
        pshape = spec.param_shape(shape)
        args.append(str(int(np.prod(pshape)) if spec.op in ("layer_norm", "rms_norm") else pshape[0]))
    if spec.op in ("layer_norm", "rms_norm"):
        axes = py(spec.reduce_axes(len(shape)))
        args += [f"reduction_axes={axes}", f"feature_axes={axes}"]
    elif spec.op == "batch_norm":
        args += [f"axis={spec.feature_axis(len(shape))}", f"momentum={py(1 - spec.momentum)}"]
    elif spec.op == "group_norm":
        args.append(f"num_groups={spec.groups}")
    else:
        args.append(f"feature_axes={spec.feature_axis(len(shape))}")
    args += [f"epsilon={py(float(spec.eps))}", f"use_scale={spec.affine}"]
    if spec.kind.has_bias:
        args.append(f"use_bias={spec.affine}")
    if api == "nnx":
        args.append("rngs=nnx.Rngs(0)")
    args.append(f"param_dtype=jnp.{target.params_dtype}")
    if target.mixed:
        args.append(f"dtype=jnp.{target.dtype}")
    return ", ".join(args)


def layer(target: Target) -> Source:
    if reason := no_running_stats(target.spec):
        raise Cannot(reason)
    names = [m.name for m in MODES]
    if (target.mode or names[0]) not in names:
        raise Cannot(f"{target.adapter} has no mode {target.mode!r}")
    api = target.adapter.split(".")[1]
    jit = "jax.jit" if target.mode is None else "eager"
    setup = lines('jax.config.update("jax_enable_x64", True)  # float64 needs JAX\'s x64 mode'
                  if target.dtype == "float64" else None)
    code = (_linen if api == "linen" else _nnx)(target)
    imports = ("import functools", "import jax", "import jax.numpy as jnp",
               "import flax.linen as nn" if api == "linen" else "from flax import nnx")
    eager = '''

def eager(fn):
    """The eager mode: the same function un-jitted, which JAX dispatches op by op."""
    return fn
''' if jit == "eager" else ""
    return Source(imports, (setup + "\n\n" if setup else "") + _HELPERS + eager + "\n\n" + code.replace("JIT", jit),
                  install="jax flax")


def _moves(target: Target) -> tuple[str, str]:
    """GroupNorm's channel axis moved last and back around the call (flax's GroupNorm takes features last)."""
    ch = features_last(target.spec, len(target.shape))
    if ch is None:
        return "", ""
    return (f"xt = jnp.moveaxis(xt, {ch}, -1)  # flax's GroupNorm takes its features last",
            f"y = jnp.moveaxis(y, -1, {ch})")


def _mask(target: Target) -> str:
    if not target.case.masked:
        return "None"
    axis = target.spec.feature_axis(len(target.shape))
    return f"None if mask is None else jnp.asarray(np.expand_dims(mask, {axis}), bool)"


def _linen(target: Target) -> str:
    spec, dt, pdt, needs = target.spec, target.dtype, target.params_dtype, target.needs
    cls = CLASSES[spec.op]
    stats = "float64" if dt == "float64" else "float32"  # jnp.promote_types(float32, dtype): the update's
    variables = []
    if spec.affine:
        variables.append(f'"params": {{"scale": native(gamma, jnp.{pdt})'
                         + (f', "bias": native(beta, jnp.{pdt})' if spec.kind.has_bias else "") + "}")
    if target.stateful:
        variables.append(f'"batch_stats": {{"mean": native(running_mean, jnp.{stats}), '
                         f'"var": native(running_var, jnp.{stats})}}')
    into, back = _moves(target)
    if target.stateful:
        apply = lines(into, "y, updates = self.module.apply(variables, xt, use_running_average=not training, "
                            'mask=mask, mutable=["batch_stats"])', back, "return y, {**variables, **updates}")
    else:
        apply = lines(into, "y = self.module.apply(variables, xt)", back, "return y, variables")
    header = f'''
        class Layer:
            """flax.linen.{cls} as normbench's flax.linen adapter builds it and applies it with its variables."""
        '''
    grads = "vjp" in needs or "second_order" in needs
    return klass(
        header,
        method(True, f"""
            def __init__(self):
                self.module = nn.{cls}({_arguments(target, 'linen')})
                self.variables = {{{', '.join(variables)}}}
                self.apply = {{t: JIT(functools.partial(self._apply, training=t)) for t in (True, False)}}

            def _apply(self, variables, xt, mask, training):
                @@apply@@

            def mask(self, mask):
                return {_mask(target)}
            """, apply=apply),
        method(grads, """
            def _grads(self, variables, xt, mask, dy):
                def f(xt, params):
                    return self.apply[True]({**variables, "params": params}, xt, mask)[0]

                y, pull = jax.vjp(f, xt, variables.get("params", {}))
                return pull(dy.astype(y.dtype))
            """),
        method("forward" in needs, f"""
            def forward(self, x, training, mask=None):
                y, self.variables = self.apply[training](self.variables, native(x, jnp.{dt}), self.mask(mask))
                return np.array(y)
            """),
        method("running" in needs, """
            def running(self):
                return np.array(self.variables["batch_stats"]["mean"]), np.array(self.variables["batch_stats"]["var"])
            """),
        method("vjp" in needs, f"""
            def vjp(self, x, dy, mask=None):
                dx, dp = JIT(self._grads)(self.variables, native(x, jnp.{dt}), self.mask(mask), native(dy, jnp.{dt}))
                return np.array(dx), *(np.array(dp[k]) if k in dp else None for k in ("scale", "bias"))
            """),
        method("jvp" in needs, f"""
            def jvp(self, x, tx, tgamma, tbeta, mask=None):
                tparams = {{k: native(t, jnp.{pdt}) for k, t in (("scale", tgamma), ("bias", tbeta)) if t is not None}}

                def tangent(variables, xt, mask, tx, tparams):
                    def f(xt, params):
                        return self.apply[True]({{**variables, "params": params}}, xt, mask)[0]

                    return jax.jvp(f, (xt, variables.get("params", {{}})), (tx, tparams))[1]

                out = JIT(tangent)(self.variables, native(x, jnp.{dt}), self.mask(mask), native(tx, jnp.{dt}), tparams)
                return np.array(out)
            """),
        method("second_order" in needs, f"""
            def second_order(self, x, dy, v, mask=None):
                # jax.grad of <dx, v>, dx from the layer's own jax.vjp: grad of grad
                def second(variables, xt, mask, dy, v):
                    def f(xt, params):
                        dx = JIT(self._grads)({{**variables, "params": params}}, xt, mask, dy)[0]
                        return jnp.vdot(dx, v)

                    return jax.grad(f, argnums=(0, 1))(xt, variables.get("params", {{}}))

                ddx, dp = JIT(second)(self.variables, native(x, jnp.{dt}), self.mask(mask), native(dy, jnp.{dt}),
                                      native(v, jnp.{dt}))
                return np.array(ddx), np.array(dp["scale"]) if "scale" in dp else None
            """),
    )


def _nnx(target: Target) -> str:
    spec, dt, pdt, needs = target.spec, target.dtype, target.params_dtype, target.needs
    cls = CLASSES[spec.op]
    pshape = py(spec.param_shape(target.shape))
    load = []
    if spec.affine:
        load.append(f"self.module.scale[...] = native(np.reshape(gamma, -1), jnp.{pdt})")
        if spec.kind.has_bias:
            load.append(f"self.module.bias[...] = native(np.reshape(beta, -1), jnp.{pdt})")
    if target.stateful:  # in the Variables' own dtype (float32), as nnx's in-place update keeps them
        load += ["self.module.mean[...] = native(running_mean, self.module.mean[...].dtype)",
                 "self.module.var[...] = native(running_var, self.module.var[...].dtype)"]
    into, back = _moves(target)
    call = ("y = module(xt, use_running_average=not training, mask=mask)" if target.stateful else "y = module(xt)")
    header = f'''
        class Layer:
            """flax.nnx.{cls} as normbench's flax.nnx adapter builds it and calls it (split, merged, jitted)."""
        '''
    grads = "vjp" in needs or "second_order" in needs
    return klass(
        header,
        method(True, f"""
            def __init__(self):
                self.module = nnx.{cls}({_arguments(target, 'nnx')})
                @@load@@

            @staticmethod
            def run(module, xt, training, mask):
                @@run@@
                return y

            def mask(self, mask):
                return {_mask(target)}
            """, load=lines(*load), run=lines(into, call, back)),
        method(grads, """
            def _grads(self, graph, params, rest, xt, mask, dy):
                def f(xt, p):  # on a merged copy: the layer's statistics stay as they are
                    return self.run(nnx.merge(graph, p, rest, copy=True), xt, True, mask)

                y, pull = jax.vjp(f, xt, params)
                return pull(dy.astype(y.dtype))
            """),
        method("forward" in needs, f"""
            def forward(self, x, training, mask=None):
                graph, state = nnx.split(self.module)

                def apply(state, xt, mask):
                    module = nnx.merge(graph, state)
                    y = self.run(module, xt, training, mask)
                    return y, nnx.state(module)

                y, state = JIT(apply)(state, native(x, jnp.{dt}), self.mask(mask))
                nnx.update(self.module, state)  # the updated running statistics, written back
                return np.array(y)
            """),
        method("running" in needs, """
            def running(self):
                return np.array(self.module.mean[...]), np.array(self.module.var[...])
            """),
        method("vjp" in needs, f"""
            def vjp(self, x, dy, mask=None):
                graph, params, rest = nnx.split(self.module, nnx.Param, ...)
                grads = JIT(functools.partial(self._grads, graph))
                dx, dp = grads(params, rest, native(x, jnp.{dt}), self.mask(mask), native(dy, jnp.{dt}))
                return np.array(dx), *(np.array(dp[k][...]).reshape({pshape}) if k in dp else None
                                       for k in ("scale", "bias"))
            """),
        method("jvp" in needs, f"""
            def jvp(self, x, tx, tgamma, tbeta, mask=None):
                graph, params, rest = nnx.split(self.module, nnx.Param, ...)
                tangent = {{"scale": tgamma, "bias": tbeta}}  # flattened to nnx's (n,) parameters
                tparams = jax.tree_util.tree_map_with_path(
                    lambda path, a: native(np.reshape(tangent[path[0].key], -1), a.dtype), params)

                def jvp(params, rest, xt, mask, tx, tparams):
                    def f(xt, p):
                        return self.run(nnx.merge(graph, p, rest, copy=True), xt, True, mask)

                    return jax.jvp(f, (xt, params), (tx, tparams))[1]

                out = JIT(jvp)(params, rest, native(x, jnp.{dt}), self.mask(mask), native(tx, jnp.{dt}), tparams)
                return np.array(out)
            """),
        method("second_order" in needs, f"""
            def second_order(self, x, dy, v, mask=None):
                # jax.grad of <dx, v>, dx from the layer's own jax.vjp: grad of grad
                graph, params, rest = nnx.split(self.module, nnx.Param, ...)

                def second(params, rest, xt, mask, dy, v):
                    def f(xt, p):
                        return jnp.vdot(JIT(functools.partial(self._grads, graph))(p, rest, xt, mask, dy)[0], v)

                    return jax.grad(f, argnums=(0, 1))(xt, params)

                ddx, dp = JIT(second)(params, rest, native(x, jnp.{dt}), self.mask(mask), native(dy, jnp.{dt}),
                                      native(v, jnp.{dt}))
                return np.array(ddx), np.array(dp["scale"][...]).reshape({pshape}) if "scale" in dp else None
            """),
    )
