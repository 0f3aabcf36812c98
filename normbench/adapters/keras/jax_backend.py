"""Keras on JAX, called as Keras's JAX trainer calls a layer: a jitted stateless call."""

from __future__ import annotations

import functools
from typing import Any

from ...ops.spec import NormSpec
from ..base import Mode
from .layers import (
    KerasLayer,
    KerasTensorflowAdapter,
    Timed,
    _build,
    _builders,
    _call_kwargs,
    _Native,
    _numpy,
    _pick,
    _slots,
    _tangents,
    _tensor,
)


@functools.cache
def _jax_functions(native: _Native, spec: NormSpec, shape: tuple[int, ...], dtype: str,
                   jit: bool = True) -> dict[str, Any]:
    """Jitted pure functions over a stateless call of one template layer per configuration, as
    Keras's JAX trainer jits them: its model's ``stateless_call`` runs each layer's ``__call__`` in a
    ``StatelessScope``, and so does "apply" (the layer's own ``stateless_call`` would skip ``__call__``,
    and with it a mixed policy's autocasting of variables). "train" / "infer" map (trainable,
    non_trainable, x, mask) to (y, non_trainable after the call); "grad" maps (trainable,
    non_trainable, x, mask, dy) to (dx, d trainable). Any layer of that configuration passes its
    own variable values. Cached, so a configuration compiles once per shape; eager Keras on JAX
    compiles every op separately for each new shape, ~4x slower on the suites' small cases. Without
    ``jit`` (the eager mode) the same functions run op by op, as Keras on JAX runs with
    ``jit_compile=False``."""
    import jax
    import keras

    module = _build("jax", native, spec, shape, dtype)

    def apply(trainable, non_trainable, t, mask, training):
        variables = zip((*module.trainable_variables, *module.non_trainable_variables), (*trainable, *non_trainable),
                        strict=True)
        with keras.StatelessScope(state_mapping=list(variables)) as scope:
            y = module(t, **_call_kwargs(native, training, mask))
        return y, [scope.get_current_value(v) for v in module.non_trainable_variables]

    def grad(trainable, non_trainable, t, mask, dy):
        def f(t, trainable):
            return apply(trainable, non_trainable, t, mask, True)[0]

        y, pull = jax.vjp(f, t, trainable)
        return pull(dy.astype(y.dtype))

    def jvp(trainable, non_trainable, t, mask, tangents):
        return jax.jvp(lambda t, trainable: apply(trainable, non_trainable, t, mask, True)[0],
                       (t, trainable), tangents)[1]

    def second_order(trainable, non_trainable, t, mask, dy, v):
        def f(t, trainable):  # ⟨dx, v⟩, dx from the vjp above
            dx = grad(trainable, non_trainable, t, mask, dy)[0]
            return (dx * v.astype(dx.dtype)).sum()

        return jax.grad(f, argnums=(0, 1))(t, trainable)

    fns = {"train": functools.partial(apply, training=True), "infer": functools.partial(apply, training=False),
           "grad": grad, "jvp": jvp, "second_order": second_order}
    return {name: jax.jit(fn) if jit else fn for name, fn in fns.items()}


class KerasJaxLayer(KerasLayer):
    """Called as Keras's JAX trainer calls a layer: a jitted ``stateless_call``, whose updated
    non-trainable state (BatchNorm's moving statistics) is assigned back to the layer."""

    backend = "jax"

    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str, native: _Native,
                 mode: Mode | None = None) -> None:
        if dtype == "float64":
            import jax

            jax.config.update("jax_enable_x64", True)  # as flax.common._enable_x64; process-wide
        super().__init__(spec, shape, dtype, native)
        self.mode = mode
        self._fns = _jax_functions(native, spec, self.shape, dtype, jit=mode is None)

    def _graph(self, fn: Any) -> Any:
        return fn  # the mode is in self._fns (jitted or not), not a TensorFlow graph

    def _state(self) -> tuple[list, list]:
        m = self.module
        return [v.value for v in m.trainable_variables], [v.value for v in m.non_trainable_variables]

    def _call(self, t, training, mask=None):
        y, non_trainable = self._fns["train" if training else "infer"](*self._state(), t, mask)
        for variable, value in zip(self.module.non_trainable_variables, non_trainable, strict=True):
            variable.assign(value)
        return y

    def _grad(self, t, dy, mask):
        dx, dtrainable = self._fns["grad"](*self._state(), t, mask, dy)
        return _slots(dx, _pick(self.module.trainable_variables, dtrainable, self._params()))

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        """jax.jvp through the stateless call, as the vjp above; the statistics it updates are dropped."""
        m = None if mask is None else _tensor(mask, "bool")
        tangents = (self._to_native(tx), _tangents(self.module.trainable_variables, self._params(), tgamma, tbeta))
        return _numpy(self._fns["jvp"](*self._state(), self._to_native(x), m, tangents))

    def second_order(self, x, dy, v, mask=None):
        """jax.grad of ⟨dx, v⟩ with dx from the jax.vjp above, wrt x and the trainable variables."""
        m = None if mask is None else _tensor(mask, "bool")
        ddx, dtrainable = self._fns["second_order"](*self._state(), self._to_native(x), m,
                                                    self._to_native(dy), self._to_native(v))
        ddgamma = _pick(self.module.trainable_variables, dtrainable, self._params()[:1])
        return _numpy(ddx), _numpy(ddgamma[0]) if ddgamma else None

    def timed(self, x, mode, dy=None):
        import jax

        fn = self._fns["grad" if mode == "forward_backward" else "train" if mode == "train" else "infer"]
        # The same state every call: "train" drops the updated statistics, keeping the call pure.
        args = (*self._state(), self._to_native(x), None)
        if mode == "forward_backward":
            args += (self._to_native(dy),)
        # jit dispatches asynchronously; the first call for a shape compiles
        return Timed(lambda: jax.block_until_ready(fn(*args)), "jax.block_until_ready on every output",
                     getattr(fn, "_cache_size", None))


class KerasJaxAdapter(KerasTensorflowAdapter):
    name = "keras[jax]"
    modes = (Mode("jit", "a jitted stateless call, as Keras's JAX trainer runs it"),
             Mode("eager", "the same stateless call un-jitted, op by op, as with jit_compile=False"))
    backend = "jax"
    builders = _builders(KerasJaxLayer)
    requires = ("keras", "jax")
    extra = "jax"
    environment = {"KERAS_BACKEND": "jax"}
