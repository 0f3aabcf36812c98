"""keras.layers LayerNormalization, RMSNormalization, BatchNormalization and GroupNormalization
(InstanceNorm as ``GroupNormalization(groups=-1)``, what Keras documents for it), one Keras
backend per process.

Keras reads KERAS_BACKEND once, when first imported (importing tensorflow imports it too),
so each backend is an adapter whose ``environment`` names it, in a ``group`` of its own:
`normbench run` starts it in its own process, and a process already on another backend
raises Unsupported rather than silently running the wrong one. Layers are built the same way
on every backend; each backend is called as its users run it: TF eagerly, with gradients from
``tf.GradientTape`` and benchmarks under ``tf.function``; JAX as Keras's JAX trainer does, a
jitted stateless call of the layer (gradients by ``jax.vjp`` through it) whose updated moving
statistics are assigned back; torch eagerly (Keras's torch trainer does not compile by default),
with gradients from ``torch.autograd``.

Each layer gets spec.eps as ``epsilon`` (defaults: 1e-3 for LayerNorm, BatchNorm and
GroupNorm; 1e-6 for RMSNormalization, whose functional ``ops.rms_normalization`` defaults to
``keras.config.epsilon()``, 1e-7), added to the variance (to mean(x²) for RMSNorm). Channel
ops take the feature axis natively, so both layouts run unpermuted. RMSNormalization always
has its ``scale`` (γ; no switch), so RMSNorm without affine is a skip; so is InstanceNorm with
running statistics, which nothing in Keras keeps. Keras's momentum is ``1 - spec.momentum``;
it stores biased running variance and, under a float16 or bfloat16 dtype policy, keeps γ, β
and running statistics in that dtype (computing in float32, returning the policy dtype). The
mixed path gives each layer a ``DTypePolicy("mixed_<half>")`` of its own: float32 variables
around half inputs and outputs, RMSNormalization alone reading its scale in the half dtype
(``_MIXED``). All passed through, as is masked BN's quirks, the same code on every backend: Keras expands the
mask on the *last* axis (channels_first 3-D/4-D inputs raise, or are silently misweighted
when shapes happen to broadcast), divides by count + 1e-7, and raises for C=1. Passed
through as well, per backend: ``ops.moments`` (BatchNorm, GroupNorm) is two-pass on TF
(``tf.nn.moments``) and JAX (``jnp.var``) but E[x²] − E[x]² on torch, which cancels when
|mean| ≫ std (torch's LayerNormalization and RMSNormalization call ``F.layer_norm`` /
``F.rms_norm`` instead); GroupNormalization applies x·γ/σ + (β − μ·γ/σ), which cancels
likewise; and Keras's dtype promotion maps float64 to float32 on every backend but TF, so
there a float64 layer computes in float32 and casts back. float64 on JAX needs x64 mode,
process-wide: the first float64 layer switches it on, as the flax adapters do (float32 and
half-precision results are bit-identical with it on). All four dtypes run, so ``dtypes``
keeps the default. Synchronized BatchNorm runs on TF alone (``replicas``: a MirroredStrategy
over logical CPU devices); on JAX and torch, Keras refuses ``synchronized=True`` in the
layer's constructor, and that refusal is what is recorded.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from ...numerics.reference import Grads
from ...ops.spec import NormSpec
from ..base import Adapter, Layer, MixedPath, Mode, ReplicaJob, ReplicaRun, Timed, builder
from ..tf_modes import MODES as TF_MODES
from ..tf_modes import tf_function
from . import replicas
from .native import (
    _MIXED,
    _NATIVE,
    _SRC,
    _keras,
    _Native,
    _select,
)


def _build(backend: str, native: _Native, spec: NormSpec, shape: tuple[int, ...], dtype: str) -> Any:
    """A built Keras layer for ``spec``, with Keras's own defaults for everything else."""
    _keras(backend)
    module = native(spec, shape, dtype)
    module.build(shape)
    return module


def _call_kwargs(native: _Native, training: bool, mask: Any) -> dict:
    return {k: v for k, v in (("training", training), ("mask", mask)) if k in native.call}


def _tensor(a: np.ndarray, dtype: str) -> Any:
    import keras

    return keras.ops.convert_to_tensor(np.asarray(a), dtype=dtype)


def _numpy(t: Any) -> np.ndarray:
    import keras

    return np.array(keras.ops.convert_to_numpy(t))


def _slots(dx: Any, dparams: list) -> tuple[Any, Any, Any]:
    """(dx, dγ, dβ) from the gradients of ``_params()``: None where the layer has no such parameter."""
    return (dx, *(*dparams, None, None)[:2])


def _pick(variables: list, values: list, wanted: list) -> list:
    """The entries of ``values`` (one per variable) for the variables ``wanted``, by identity:
    Keras variables overload == elementwise."""
    where = [id(v) for v in variables]
    return [values[where.index(id(w))] for w in wanted]


def _tangents(variables: list, params: list, tgamma: Any, tbeta: Any) -> list:
    """One tangent per variable, in its own dtype: tγ and tβ for γ and β (``params``), zero for any other."""
    given = {id(p): a for p, a in zip(params, (tgamma, tbeta)[:len(params)], strict=True)}
    return [_tensor(given.get(id(v), np.zeros(v.shape)), v.dtype) for v in variables]


class KerasLayer(Layer):
    """The TensorFlow backend; the JAX and torch layers below override how it is called."""

    backend: ClassVar[str] = "tensorflow"

    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str, native: _Native,
                 mode: Mode | None = None) -> None:
        super().__init__(spec, shape, dtype, native, mode)
        self.module = _build(self.backend, native, spec, self.shape, dtype)
        self._timed_fns: dict[str, Any] = {}  # mode -> compiled function, kept across timed() calls

    def _graph(self, fn: Any) -> Any:
        """``fn`` as this layer's mode runs it: as is (eager), or under tf.function (with XLA where the
        mode says so; ``TF_MODES``)."""
        return fn if self.mode is None else tf_function(fn, self.mode)

    def _to_native(self, x: np.ndarray) -> Any:
        return _tensor(x, self.dtype)

    def _call(self, t: Any, training: bool, mask: Any = None) -> Any:
        return self.module(t, **_call_kwargs(self.native, training, mask))

    def _params(self) -> list:
        """γ and β as Keras variables, in that order, leaving out what the layer lacks."""
        names = (self.native.gamma, self.native.beta) if self.spec.affine else ()
        return [getattr(self.module, n) for n in names if n is not None]

    def set_params(self, gamma: np.ndarray, beta: np.ndarray | None) -> None:
        params = self._params()  # [γ] alone where the layer has no β, and then β is None
        for variable, value in zip(params, (gamma, beta)[:len(params)], strict=True):
            variable.assign(_tensor(value, variable.dtype))  # in the variable's own dtype

    def set_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        for variable, value in ((self.module.moving_mean, mean), (self.module.moving_variance, var)):
            variable.assign(_tensor(value, variable.dtype))  # float32 on the mixed path

    def running(self) -> tuple[np.ndarray, np.ndarray]:
        return _numpy(self.module.moving_mean), _numpy(self.module.moving_variance)

    def forward(self, x: np.ndarray, training: bool, mask: np.ndarray | None = None) -> np.ndarray:
        m = None if mask is None else _tensor(mask, "bool")
        return _numpy(self._graph(lambda t, m: self._call(t, training, m))(self._to_native(x), m))

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        m = None if mask is None else _tensor(mask, "bool")
        dx, dg, db = self._graph(self._grad)(self._to_native(x), self._to_native(dy), m)
        return Grads(_numpy(dx), *(None if g is None else _numpy(g) for g in (dg, db)))

    def _grad(self, t: Any, dy: Any, mask: Any) -> tuple[Any, Any, Any]:
        """Native (dx, dγ, dβ) of the training-mode output for upstream gradient ``dy``."""
        import tensorflow as tf

        params = [p.value for p in self._params()]
        with tf.GradientTape() as tape:
            tape.watch([t, *params])
            y = self._call(t, True, mask)
        dx, *dparams = tape.gradient(y, [t, *params], output_gradients=dy)
        return _slots(dx, dparams)

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        """TF's forward mode: a ForwardAccumulator watching x, γ and β around the training call."""
        import tensorflow as tf

        m = None if mask is None else _tensor(mask, "bool")
        t, params = self._to_native(x), self._params()
        tangents = [self._to_native(tx), *_tangents(params, params, tgamma, tbeta)]

        def jvp(t, m, tangents):
            with tf.autodiff.ForwardAccumulator([t, *(p.value for p in params)], tangents) as acc:
                y = self._call(t, True, m)
            return acc.jvp(y)

        return _numpy(self._graph(jvp)(t, m, tangents))

    def second_order(self, x, dy, v, mask=None):
        """Nested tapes: the inner one's dx = VJP(dy), the outer one differentiates ⟨dx, v⟩."""
        import tensorflow as tf

        m = None if mask is None else _tensor(mask, "bool")

        def second_order(t, m, dy, v):
            wrt = [p.value for p in self._params()[:1]]  # x and γ
            with tf.GradientTape() as outer:
                outer.watch([t, *wrt])
                with tf.GradientTape() as inner:
                    inner.watch(t)
                    y = self._call(t, True, m)
                dx = inner.gradient(y, t, output_gradients=dy)
                f = tf.reduce_sum(dx * v)
            ddx, *ddgamma = outer.gradient(f, [t, *wrt])
            return ddx, ddgamma[0] if ddgamma else None

        ddx, ddgamma = self._graph(second_order)(self._to_native(x), m, self._to_native(dy), self._to_native(v))
        return _numpy(ddx), None if ddgamma is None else _numpy(ddgamma)

    def timed(self, x: np.ndarray, mode: str, dy: np.ndarray | None = None) -> Timed:
        """Keras users on TF run under tf.function, so that is what is timed. Each mode's
        function is built once per layer and kept, with no input_signature or reduce_retracing,
        so a new shape retraces as it would for them and ``traces`` counts it."""
        import tensorflow as tf

        fn = self._timed_fns.get(mode)
        if fn is None:
            function = tf.function if self.mode is None else lambda f: tf_function(f, self.mode)
            if mode == "forward_backward":
                fn = function(lambda t, g: self._grad(t, g, None))
            else:
                fn = function(lambda t: self._call(t, mode == "train"))
            self._timed_fns[mode] = fn
        args = (self._to_native(x), self._to_native(dy)) if mode == "forward_backward" else (self._to_native(x),)
        sync = "none needed: TF runs CPU ops synchronously; the call returns with the outputs computed"
        return Timed(lambda: fn(*args), sync, fn.experimental_get_tracing_count)


def _builders(layer: type[KerasLayer]) -> dict:
    return {op: builder(layer, native) for op, native in _NATIVE.items()}


class KerasTensorflowAdapter(Adapter):
    name = "keras[tensorflow]"
    backend: ClassVar[str] = "tensorflow"
    builders = _builders(KerasLayer)
    requires = ("keras", "tensorflow")
    extra = "tensorflow"
    environment = {"KERAS_BACKEND": "tensorflow"}
    version_of = "keras"
    momentum_convention = "old"
    running_var = "biased"
    preferred_layout = "channels_last"  # Keras users run NHWC
    features = frozenset({"eval", "running_stats", "grad", "mask", "jvp", "second_order"})
    modes = TF_MODES

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        """``BatchNormalization(synchronized=True)`` under a MirroredStrategy (see ``replicas``)."""
        return replicas.run(job, self.name, self.backend)

    def ensure_available(self) -> None:
        """Select the layer's backend before the base class imports keras."""
        _select(self.backend)
        super().ensure_available()
        _keras(self.backend)

    def mixed_precision(self, spec, dtype):
        """A per-layer ``DTypePolicy("mixed_<half>")``: float32 variables, x in the half dtype, the output
        cast to it; the compute dtype is what the layer's source does with them (``_MIXED``), the same
        Keras code on every backend."""
        if dtype not in ("bfloat16", "float16"):
            return None
        layer, how, compute, src = _MIXED[spec.op]
        return MixedPath(f"keras.layers.{layer}dtype=DTypePolicy('mixed_{dtype}')): {how.format(half=dtype)}",
                         dtype if compute == "half" else compute, _SRC + src)

    def defaults(self, op):
        layers = _keras(self.backend).layers
        layer = {"layer_norm": layers.LayerNormalization, "rms_norm": layers.RMSNormalization,
                 "batch_norm": layers.BatchNormalization, "group_norm": layers.GroupNormalization,
                 "instance_norm": lambda: layers.GroupNormalization(groups=-1)}[op]()
        out = {"eps": layer.epsilon}
        if op == "rms_norm":
            out["ops_rms_normalization_eps"] = _keras(self.backend).config.epsilon()  # the functional form's
        if op == "batch_norm":
            out["momentum"] = layer.momentum
        if op in ("group_norm", "instance_norm"):
            out["groups"] = layer.groups  # -1: one group per channel
        if op == "instance_norm":
            out["track_running_stats"] = False  # no Keras layer keeps them
        # RMSNormalization has no center/scale switches: its scale is always there
        out["affine"] = True if op == "rms_norm" else bool(layer.center and layer.scale)
        return out
