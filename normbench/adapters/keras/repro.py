"""Keras 3 layers as standalone source (``adapters.repro``), one backend per script as one per process: on
TensorFlow eager or under tf.function (with XLA in the ``xla`` mode, ``tf_modes``) with ``tf.GradientTape``; on JAX
as Keras's JAX trainer calls a layer, a jitted stateless call (``jax_backend.py``); on torch eager or under
torch.compile, with torch.autograd (``torch_backend.py``). Built as ``native.py`` builds them."""

from __future__ import annotations

from ...ops.spec import NormSpec
from ..repro import Cannot, Source, Target, klass, method, py
from ..tf_modes import MODES as TF_MODES
from ..tf_modes import XLA
from .native import _NATIVE

ADAPTERS = ("keras[tensorflow]", "keras[jax]", "keras[torch]")
_MODES = {"tensorflow": tuple(m.name for m in TF_MODES), "jax": ("jit", "eager"), "torch": ("eager", "compiled")}

_HELPERS = '''
def tensor(a, dtype):
    """A float64 array (or a bool mask) as a Keras tensor of ``dtype``, cast in numpy first (exact)."""
    return keras.ops.convert_to_tensor(np.asarray(a).astype(np.dtype(dtype)), dtype=dtype)


def numpy(t):
    return np.array(keras.ops.convert_to_numpy(t))
'''


def built(constructed: str, shape: tuple[int, ...], load: list[tuple[str, str]]) -> list[str]:
    """The lines that build a Keras layer (``constructed``: its constructor call) and assign the record's
    arrays to its variables: (variable, array name) in ``load``; tf_keras's layers take the same lines."""
    init = [f"self.module = {constructed}", f"self.module.build({shape})"]
    if load:
        init += [f"for variable, value in [{', '.join(f'({v}, {a})' for v, a in load)}]:",
                 "    variable.assign(tensor(value, variable.dtype))  # in the variable's own dtype"]
    return init


def constructor(spec: NormSpec, shape: tuple[int, ...], dtype: str, prefix: str = "keras") -> str:
    """The layer call ``native._layer_norm`` and its siblings make (tf_keras's take the same arguments)."""
    policy = (f"{prefix}.mixed_precision.{'DTypePolicy' if prefix == 'keras' else 'Policy'}('mixed_{dtype}')"
              if spec.precision == "mixed" else repr(dtype))
    eps, affine = py(float(spec.eps)), spec.affine
    if spec.op in ("layer_norm", "rms_norm"):
        cls = "LayerNormalization" if spec.op == "layer_norm" else "RMSNormalization"
        center = f", center={affine}, scale={affine}" if spec.op == "layer_norm" else ""
        axes = list(spec.reduce_axes(len(shape)))
        return f"{prefix}.layers.{cls}(axis={axes}, epsilon={eps}{center}, dtype={policy})"
    axis = spec.feature_axis(len(shape))
    if spec.op == "batch_norm":
        return (f"{prefix}.layers.BatchNormalization(axis={axis}, momentum={py(1 - spec.momentum)}, epsilon={eps}, "
                f"center={affine}, scale={affine}, dtype={policy})")
    groups = spec.groups if spec.op == "group_norm" else -1  # InstanceNorm: one group per channel
    return (f"{prefix}.layers.GroupNormalization(groups={groups}, axis={axis}, epsilon={eps}, center={affine}, "
            f"scale={affine}, dtype={policy})")


def layer(target: Target) -> Source:
    backend = target.adapter[len("keras["):-1]
    mode = target.mode or _MODES[backend][0]
    if mode not in _MODES[backend]:
        raise Cannot(f"{target.adapter} has no mode {mode!r}")
    spec = target.spec
    if spec.op == "rms_norm" and not spec.affine:
        raise Cannot("keras.layers.RMSNormalization always has a learnable scale (γ)")
    if spec.op == "instance_norm" and spec.running_stats:
        raise Cannot("Keras has no InstanceNorm with running statistics")
    native = _NATIVE[spec.op]
    names = [native.gamma, native.beta] if spec.affine else []
    params = [n for n in names if n is not None]
    kwargs = ", ".join(f"{k}={k}" for k in native.call)
    call = f"self.module(t{', ' + kwargs if kwargs else ''})"
    load = [(f"self.module.{p}", a) for p, a in zip(params, ("gamma", "beta"), strict=False)]
    if target.stateful:
        load += [("self.module.moving_mean", "running_mean"), ("self.module.moving_variance", "running_var")]
    init = built(constructor(spec, target.shape, target.dtype), target.shape, load)
    preamble = ("import os", "", f'os.environ["KERAS_BACKEND"] = "{backend}"  # Keras reads it once, on import',
                'os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")')
    bf16 = ("import ml_dtypes  # noqa: F401  (numpy's bfloat16)",) if target.dtype == "bfloat16" else ()
    write = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}[backend]
    imports, code, install = write(target, mode, init, call, params)
    return Source((*bf16, "import keras", *imports), _HELPERS + "\n\n" + code, preamble, install)


def _header(target: Target, how: str) -> str:
    cls = constructor(target.spec, target.shape, target.dtype).split("(")[0]
    return f'''
        class Layer:
            """{cls} as normbench's {target.adapter} adapter builds it and {how}."""
        '''


def _mask(target: Target) -> str:
    return "None if mask is None else tensor(mask, 'bool')" if target.case.masked else "None"


def _eager_methods(target: Target, graph: str, init: list[str], call: str, params: list[str]) -> list[str]:
    """The methods a Keras layer on TensorFlow or torch shares: build, call through ``graph``, forward, running."""
    dt, needs = target.dtype, target.needs
    return [
        method(True, """
            def __init__(self):
                @@init@@
            """, init="\n".join(init)),
        method(True, f"""
            def graph(self, fn):
                return {graph}

            def call(self, t, training, mask=None):
                return {call}

            def params(self):
                return [{', '.join(f'self.module.{p}.value' for p in params)}]
            """),
        method("forward" in needs, f"""
            def forward(self, x, training, mask=None):
                m = {_mask(target)}
                return numpy(self.graph(lambda t, m: self.call(t, training, m))(tensor(x, {dt!r}), m))
            """),
        method("running" in needs, """
            def running(self):
                return numpy(self.module.moving_mean), numpy(self.module.moving_variance)
            """),
    ]


def _tensorflow(target: Target, mode: str, init: list[str], call: str, params: list[str]):
    dt, needs = target.dtype, target.needs
    graph = {"eager": "fn", "function": "tf.function(fn)", XLA.name: "tf.function(fn, jit_compile=True)"}[mode]
    how = {"eager": "calls it eagerly", "function": "calls it under tf.function",
           XLA.name: "calls it under tf.function(jit_compile=True) (XLA)"}[mode]
    code = klass(
        _header(target, how),
        *_eager_methods(target, graph, init, call, params),
        method("vjp" in needs, f"""
            def vjp(self, x, dy, mask=None):
                def grad(t, dy, m):
                    params = self.params()
                    with tf.GradientTape() as tape:
                        tape.watch([t, *params])
                        y = self.call(t, True, m)
                    dx, *dparams = tape.gradient(y, [t, *params], output_gradients=dy)
                    return (dx, *(*dparams, None, None)[:2])

                dx, dg, db = self.graph(grad)(tensor(x, {dt!r}), tensor(dy, {dt!r}), {_mask(target)})
                return numpy(dx), *(None if g is None else numpy(g) for g in (dg, db))
            """),
        method("jvp" in needs, f"""
            def jvp(self, x, tx, tgamma, tbeta, mask=None):
                # TF's forward mode: a ForwardAccumulator watching x, γ and β around the training call
                variables = [{', '.join(f'self.module.{p}' for p in params)}]
                tangents = [tensor(tx, {dt!r}), *(tensor(a, v.dtype) for v, a in zip(variables, (tgamma, tbeta)))]

                def jvp(t, m, tangents):
                    with tf.autodiff.ForwardAccumulator([t, *(v.value for v in variables)], tangents) as acc:
                        y = self.call(t, True, m)
                    return acc.jvp(y)

                return numpy(self.graph(jvp)(tensor(x, {dt!r}), {_mask(target)}, tangents))
            """),
        method("second_order" in needs, f"""
            def second_order(self, x, dy, v, mask=None):
                # nested tapes: the inner one's dx = VJP(dy), the outer one differentiates <dx, v> wrt x and γ
                def second_order(t, m, dy, v):
                    wrt = self.params()[:1]
                    with tf.GradientTape() as outer:
                        outer.watch([t, *wrt])
                        with tf.GradientTape() as inner:
                            inner.watch(t)
                            y = self.call(t, True, m)
                        dx = inner.gradient(y, t, output_gradients=dy)
                        f = tf.reduce_sum(dx * v)
                    ddx, *ddgamma = outer.gradient(f, [t, *wrt])
                    return ddx, ddgamma[0] if ddgamma else None

                ddx, ddgamma = self.graph(second_order)(tensor(x, {dt!r}), {_mask(target)}, tensor(dy, {dt!r}),
                                                        tensor(v, {dt!r}))
                return numpy(ddx), None if ddgamma is None else numpy(ddgamma)
            """),
    )
    return ("import tensorflow as tf",), code, "keras tensorflow"


def _jax(target: Target, mode: str, init: list[str], call: str, params: list[str]):
    dt, needs = target.dtype, target.needs
    jit = "jax.jit" if mode == "jit" else "eager"
    x64 = 'jax.config.update("jax_enable_x64", True)  # float64 needs JAX\'s x64 mode' if dt == "float64" else ""
    how = ("calls it as Keras's JAX trainer does: a jitted stateless call" if mode == "jit" else
           "calls it as Keras's JAX trainer does with jit_compile=False: a stateless call, op by op")
    picks = ", ".join(f"self.module.{p}" for p in params)
    code = klass(
        _header(target, how),
        method(True, f"""
            def __init__(self):
                @@init@@
                self.fns = {{"train": JIT(functools.partial(self.apply, training=True)),
                            "infer": JIT(functools.partial(self.apply, training=False)),
                            "grad": JIT(self.grad), "jvp": JIT(self.tangent), "second_order": JIT(self.second)}}

            def apply(self, trainable, non_trainable, t, mask, training):
                module = self.module
                variables = zip((*module.trainable_variables, *module.non_trainable_variables),
                                (*trainable, *non_trainable))
                with keras.StatelessScope(state_mapping=list(variables)) as scope:
                    y = {call.replace('self.module', 'module')}
                return y, [scope.get_current_value(v) for v in module.non_trainable_variables]

            def grad(self, trainable, non_trainable, t, mask, dy):
                def f(t, trainable):
                    return self.apply(trainable, non_trainable, t, mask, True)[0]

                y, pull = jax.vjp(f, t, trainable)
                return pull(dy.astype(y.dtype))

            def tangent(self, trainable, non_trainable, t, mask, tangents):
                return jax.jvp(lambda t, trainable: self.apply(trainable, non_trainable, t, mask, True)[0],
                               (t, trainable), tangents)[1]

            def second(self, trainable, non_trainable, t, mask, dy, v):
                def f(t, trainable):  # <dx, v>, dx from the vjp above
                    dx = self.grad(trainable, non_trainable, t, mask, dy)[0]
                    return (dx * v.astype(dx.dtype)).sum()

                return jax.grad(f, argnums=(0, 1))(t, trainable)

            def state(self):
                m = self.module
                return [v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables]

            def pick(self, values, wanted):
                \"\"\"The entries of ``values`` (one per trainable variable) for the variables ``wanted``.\"\"\"
                where = [id(v) for v in self.module.trainable_variables]
                return [values[where.index(id(w))] for w in wanted]
            """, init="\n".join(init)),
        method("forward" in needs, f"""
            def forward(self, x, training, mask=None):
                y, non_trainable = self.fns["train" if training else "infer"](*self.state(), tensor(x, {dt!r}),
                                                                              {_mask(target)})
                for variable, value in zip(self.module.non_trainable_variables, non_trainable):
                    variable.assign(value)  # the updated moving statistics, assigned back
                return numpy(y)
            """),
        method("running" in needs, """
            def running(self):
                return numpy(self.module.moving_mean), numpy(self.module.moving_variance)
            """),
        method("vjp" in needs, f"""
            def vjp(self, x, dy, mask=None):
                dx, dtrainable = self.fns["grad"](*self.state(), tensor(x, {dt!r}), {_mask(target)}, tensor(dy, {dt!r}))
                grads = self.pick(dtrainable, [{picks}])
                return numpy(dx), *(numpy(g) for g in grads), *(None,) * (2 - len(grads))
            """),
        method("jvp" in needs, f"""
            def jvp(self, x, tx, tgamma, tbeta, mask=None):
                given = dict(zip((id(p) for p in [{picks}]), (tgamma, tbeta)))
                tangents = (tensor(tx, {dt!r}), [tensor(given.get(id(v), np.zeros(v.shape)), v.dtype)
                                                 for v in self.module.trainable_variables])
                return numpy(self.fns["jvp"](*self.state(), tensor(x, {dt!r}), {_mask(target)}, tangents))
            """),
        method("second_order" in needs, f"""
            def second_order(self, x, dy, v, mask=None):
                ddx, dtrainable = self.fns["second_order"](*self.state(), tensor(x, {dt!r}), {_mask(target)},
                                                           tensor(dy, {dt!r}), tensor(v, {dt!r}))
                ddgamma = self.pick(dtrainable, [{picks}][:1])
                return numpy(ddx), numpy(ddgamma[0]) if ddgamma else None
            """),
    ).replace("JIT", jit)
    eager = ('\n\ndef eager(fn):\n    """The eager mode: the same function un-jitted, op by op."""\n    return fn\n'
             if jit == "eager" else "")
    return ("import functools", "import jax"), (x64 + "\n\n" if x64 else "") + eager.lstrip("\n") + (
        "\n\n" if eager else "") + code, "keras jax"


def _torch(target: Target, mode: str, init: list[str], call: str, params: list[str]):
    dt, needs = target.dtype, target.needs
    graph = "fn" if mode == "eager" else "torch.compile(fn, dynamic=False)"
    how = ("calls it eagerly" if mode == "eager" else
           "calls it under torch.compile(fn, dynamic=False), as Keras's jit_compile=True compiles its train step")
    code = klass(
        _header(target, how),
        *_eager_methods(target, graph, init, call, params),
        method("vjp" in needs, f"""
            def vjp(self, x, dy, mask=None):
                def grad(t, dy, m):
                    t = t.detach().requires_grad_(True)
                    params = self.params()
                    y = self.call(t, True, m)
                    dx, *dparams = torch.autograd.grad(y, [t, *params], dy)
                    return (dx, *(*dparams, None, None)[:2])

                dx, dg, db = self.graph(grad)(tensor(x, {dt!r}), tensor(dy, {dt!r}), {_mask(target)})
                return numpy(dx), *(None if g is None else numpy(g) for g in (dg, db))
            """),
        method("jvp" in needs, f"""
            def jvp(self, x, tx, tgamma, tbeta, mask=None):
                # torch.func.jvp through stateless_call; the statistics it updates are dropped
                m = {_mask(target)}
                trainable, non_trainable = ([v.value.detach() for v in vs] for vs in (
                    self.module.trainable_variables, self.module.non_trainable_variables))
                given = dict(zip((id(p) for p in [{', '.join(f'self.module.{p}' for p in params)}]), (tgamma, tbeta)))
                tangents = [tensor(given.get(id(v), np.zeros(v.shape)), v.dtype)
                            for v in self.module.trainable_variables]

                def f(t, trainable):
                    return self.module.stateless_call(trainable, non_trainable, t{_stateless(call)})[0]

                return numpy(torch.func.jvp(f, (tensor(x, {dt!r}), trainable), (tensor(tx, {dt!r}), tangents))[1])
            """),
        method("second_order" in needs, f"""
            def second_order(self, x, dy, v, mask=None):
                # torch's dx with create_graph=True, then torch.autograd.grad of <dx, v> wrt x and γ
                m = {_mask(target)}
                t, wrt = tensor(x, {dt!r}).requires_grad_(True), self.params()[:1]
                dx, = torch.autograd.grad(self.call(t, True, m), t, tensor(dy, {dt!r}), create_graph=True)
                ddx, *ddgamma = torch.autograd.grad((dx * tensor(v, {dt!r})).sum(), [t, *wrt])
                return numpy(ddx), numpy(ddgamma[0]) if ddgamma else None
            """),
    )
    return ("import torch",), code, "keras torch"


def _stateless(call: str) -> str:
    """The keyword arguments of ``call`` for ``stateless_call`` (training mode, the mask as ``m``)."""
    args = []
    if "training=training" in call:
        args.append("training=True")
    if "mask=mask" in call:
        args.append("mask=m")
    return "".join(f", {a}" for a in args)
