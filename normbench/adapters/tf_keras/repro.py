"""tf_keras (legacy Keras 2) layers as standalone source (``adapters.repro``): built as ``layers.py`` builds them (the
same arguments as Keras 3's, ``keras.repro.constructor``), called eagerly or under tf.function (with XLA in the
``xla`` mode, ``tf_modes``), gradients through ``tf.GradientTape``."""

from __future__ import annotations

from ..keras.repro import built, constructor
from ..repro import Cannot, Source, Target, klass, method
from ..tf_modes import MODES, XLA
from .layers import _CALL

ADAPTERS = ("tf_keras",)

_HELPERS = '''
def tensor(a, dtype):
    """A float64 array (or a bool mask) as a TF tensor of ``dtype``, cast in numpy first (exact)."""
    return tf.constant(np.asarray(a).astype(tf.as_dtype(dtype).as_numpy_dtype), dtype=dtype)


def numpy(t):
    return np.array(t.numpy())
'''


def layer(target: Target) -> Source:
    mode = target.mode or MODES[0].name
    if mode not in [m.name for m in MODES]:
        raise Cannot(f"tf_keras has no mode {mode!r}")
    spec, dt, needs = target.spec, target.dtype, target.needs
    if spec.op not in _CALL:
        raise Cannot(f"tf_keras has no {spec.op} layer")
    if spec.op == "instance_norm" and spec.running_stats:
        raise Cannot("tf_keras has no InstanceNorm with running statistics")
    kwargs = ", ".join(f"{k}={k}" for k in _CALL[spec.op])
    graph = {"eager": "fn", "function": "tf.function(fn)", XLA.name: "tf.function(fn, jit_compile=True)"}[mode]
    how = {"eager": "calls it eagerly", "function": "calls it under tf.function",
           XLA.name: "calls it under tf.function(jit_compile=True) (XLA)"}[mode]
    cls = constructor(spec, target.shape, dt, "tf_keras").split("(")[0]
    load = [("self.module.gamma", "gamma"), ("self.module.beta", "beta")] if spec.affine else []
    if target.stateful:
        load += [("self.module.moving_mean", "running_mean"), ("self.module.moving_variance", "running_var")]
    init = built(constructor(spec, target.shape, dt, "tf_keras"), target.shape, load)
    mask = "None if mask is None else tensor(mask, 'bool')" if target.case.masked else "None"
    params = "[self.module.gamma, self.module.beta]" if spec.affine else "[]"
    header = f'''
        class Layer:
            """{cls} as normbench's tf_keras adapter builds it and {how}."""
        '''
    code = klass(
        header,
        method(True, f"""
            def __init__(self):
                @@init@@

            def graph(self, fn):
                return {graph}

            def call(self, t, training, mask=None):
                return self.module(t{', ' + kwargs if kwargs else ''})
            """, init="\n".join(init)),
        method("forward" in needs, f"""
            def forward(self, x, training, mask=None):
                m = {mask}
                return numpy(self.graph(lambda t, m: self.call(t, training, m))(tensor(x, {dt!r}), m))
            """),
        method("running" in needs, """
            def running(self):
                return numpy(self.module.moving_mean), numpy(self.module.moving_variance)
            """),
        method("vjp" in needs, f"""
            def vjp(self, x, dy, mask=None):
                def grad(t, dy, m):
                    params = {params}
                    with tf.GradientTape() as tape:
                        tape.watch(t)
                        y = self.call(t, True, m)
                    dx, *dparams = tape.gradient(y, [t, *params], output_gradients=tf.cast(dy, y.dtype))
                    return (dx, *(dparams or (None, None)))

                dx, dg, db = self.graph(grad)(tensor(x, {dt!r}), tensor(dy, {dt!r}), {mask})
                return numpy(dx), *(None if g is None else numpy(g) for g in (dg, db))
            """),
        method("jvp" in needs, f"""
            def jvp(self, x, tx, tgamma, tbeta, mask=None):
                # TF's forward mode: a ForwardAccumulator watching x, γ and β around the training call
                params = {params}
                tangents = [tensor(tx, {dt!r}), *(tensor(a, p.dtype) for p, a in zip(params, (tgamma, tbeta)))]

                def jvp(t, m, tangents):
                    with tf.autodiff.ForwardAccumulator([t, *params], tangents) as acc:
                        y = self.call(t, True, m)
                    return acc.jvp(y)

                return numpy(self.graph(jvp)(tensor(x, {dt!r}), {mask}, tangents))
            """),
        method("second_order" in needs, f"""
            def second_order(self, x, dy, v, mask=None):
                # nested tapes: the inner one's dx = VJP(dy), the outer one differentiates <dx, v> wrt x and γ
                wrt = {params}[:1]

                def second_order(t, m, dy, v):
                    with tf.GradientTape() as outer:
                        outer.watch(t)
                        with tf.GradientTape() as inner:
                            inner.watch(t)
                            y = self.call(t, True, m)
                        dx = inner.gradient(y, t, output_gradients=tf.cast(dy, y.dtype))
                        f = tf.reduce_sum(dx * v)
                    ddx, *ddgamma = outer.gradient(f, [t, *wrt])
                    return ddx, ddgamma[0] if ddgamma else None

                ddx, ddgamma = self.graph(second_order)(tensor(x, {dt!r}), {mask}, tensor(dy, {dt!r}),
                                                        tensor(v, {dt!r}))
                return numpy(ddx), None if ddgamma is None else numpy(ddgamma)
            """),
    )
    preamble = ("import os", "", 'os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")')
    return Source(("import tensorflow as tf", "import tf_keras"), _HELPERS + "\n\n" + code, preamble,
                  "tensorflow tf_keras")
