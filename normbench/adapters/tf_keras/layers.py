"""tf_keras.layers LayerNormalization, BatchNormalization and GroupNormalization (InstanceNorm as
``GroupNormalization(groups=-1)``): legacy Keras 2 on TensorFlow.

What ``tf.keras`` was before Keras 3 (PyPI ``tf-keras``; its version must match TF's), still
run by code that sets TF_USE_LEGACY_KERAS=1; imported directly here, so it shares a process
with Keras 3 on any backend. It has no RMSNorm layer, so rms_norm is a skip, and its instance
norm keeps no running statistics, so InstanceNorm with them is one too. Every layer gets
spec.eps as ``epsilon`` (default 1e-3 for all three), added to the variance. Layers are built
with their defaults (``fused=None``), as users get them, so the implementation depends on
the case and is passed through unchanged: BatchNormalization on 4-D (and 5-D) inputs in
float16/bfloat16/float32 takes the fused kernel, which stores the *Bessel-corrected*
(unbiased) batch variance in the running variance and ignores a mask (with a warning); other
ranks and float64 take the Python path, which stores biased variance and weights its moments
by the mask expanded on the last axis. Which one is stored therefore depends on the case, so
``running_var`` is not declared, only measured. Under a float16/bfloat16 dtype,
BatchNormalization keeps γ, β and running statistics in float32. LayerNormalization uses
TF's fused batch-norm kernel for float32 with eps ≥ 1.001e-5 and ``tf.nn.moments``
otherwise, in the layer's own dtype for float16/bfloat16 (only mixed precision upcasts);
GroupNormalization likewise computes in the layer's dtype, with ``tf.nn.weighted_moments``
(two-pass; it upcasts float16 statistics to float32, not bfloat16) and
``tf.nn.batch_normalization``. The mixed path gives each layer a ``Policy("mixed_<half>")`` of
its own: float32 variables around half inputs and outputs (see ``mixed_precision`` for what each
layer then computes in). Momentum is ``1 - spec.momentum``, as in Keras 3. Gradients
come from ``tf.GradientTape``; benchmarks time ``tf.function``, as for keras[tensorflow], and
synchronized BatchNorm runs under the same MirroredStrategy (``replicas``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np

from ...numerics.reference import Grads
from ...ops.spec import NormSpec
from ..base import Adapter, Layer, MixedPath, Mode, ReplicaJob, ReplicaRun, Timed, Unsupported, builder
from ..tf_modes import MODES as TF_MODES
from ..tf_modes import tf_function
from . import replicas


def _tf_keras() -> Any:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # as keras.native._select
    import tf_keras

    return tf_keras


def _tensor(a: np.ndarray, dtype: Any) -> Any:
    import tensorflow as tf

    return tf.constant(np.asarray(a), dtype=dtype)


def _numpy(t: Any) -> np.ndarray:
    return np.array(t.numpy())


def _policy(spec: NormSpec, dtype: str) -> Any:
    """The layer's ``dtype=``: on the mixed path a Policy of its own (float32 variables, compute in
    ``dtype``), not the global policy, so nothing leaks into the next case."""
    return _tf_keras().mixed_precision.Policy(f"mixed_{dtype}") if spec.precision == "mixed" else dtype


def _layer_norm(spec, shape, dtype):
    return _tf_keras().layers.LayerNormalization(axis=list(spec.reduce_axes(len(shape))), epsilon=spec.eps,
                                                 center=spec.affine, scale=spec.affine, dtype=_policy(spec, dtype))


def _batch_norm(spec, shape, dtype, **options):
    return _tf_keras().layers.BatchNormalization(axis=spec.feature_axis(len(shape)), momentum=1 - spec.momentum,
                                                 epsilon=spec.eps, center=spec.affine, scale=spec.affine,
                                                 dtype=_policy(spec, dtype), **options)


def _group_norm(spec, shape, dtype, groups=None):
    return _tf_keras().layers.GroupNormalization(groups=spec.groups if groups is None else groups,
                                                 axis=spec.feature_axis(len(shape)), epsilon=spec.eps,
                                                 center=spec.affine, scale=spec.affine, dtype=_policy(spec, dtype))


def _instance_norm(spec, shape, dtype):
    if spec.running_stats:
        raise Unsupported("tf_keras has no InstanceNorm with running statistics: its instance norm, "
                          "GroupNormalization(groups=-1), keeps none")
    return _group_norm(spec, shape, dtype, groups=-1)  # -1: one group per channel


_SRC = "https://github.com/keras-team/tf-keras/blob/master/tf_keras/src/layers/normalization/"

# The arguments each op's layer's ``call`` takes (LayerNormalization's takes neither); γ and β
# are ``gamma`` and ``beta`` in all of them.
_CALL = {"layer_norm": (), "batch_norm": ("training", "mask"), "group_norm": ("mask",), "instance_norm": ("mask",)}


class TfKerasLayer(Layer):
    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str, native: Callable[..., Any],
                 mode: Mode | None = None) -> None:
        super().__init__(spec, shape, dtype, native, mode)
        self.module = native(spec, self.shape, dtype)
        self.module.build(self.shape)
        self._call_args = _CALL[spec.op]
        self._timed_fns: dict[str, Any] = {}  # mode -> tf.function, kept across timed() calls

    def _graph(self, fn: Any) -> Any:
        """``fn`` as this layer's mode runs it: as is (eager), or under tf.function (``tf_modes``)."""
        return fn if self.mode is None else tf_function(fn, self.mode)

    def _to_native(self, x: np.ndarray) -> Any:
        return _tensor(x, self.dtype)

    def _call(self, t: Any, training: bool, mask: Any = None) -> Any:
        kwargs = {k: v for k, v in (("training", training), ("mask", mask)) if k in self._call_args}
        return self.module(t, **kwargs)

    @staticmethod
    def _assign(variable: Any, value: np.ndarray) -> None:
        variable.assign(_tensor(value, variable.dtype))  # in the variable's own dtype (float32 for half BN)

    def set_params(self, gamma: np.ndarray, beta: np.ndarray | None) -> None:
        self._assign(self.module.gamma, gamma)
        self._assign(self.module.beta, beta)  # every op built here has β

    def set_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        self._assign(self.module.moving_mean, mean)
        self._assign(self.module.moving_variance, var)

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
        import tensorflow as tf

        params = [self.module.gamma, self.module.beta] if self.spec.affine else []
        with tf.GradientTape() as tape:
            tape.watch(t)
            y = self._call(t, True, mask)
        dx, *dparams = tape.gradient(y, [t, *params], output_gradients=tf.cast(dy, y.dtype))
        return (dx, *(dparams or (None, None)))

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        """TF's forward mode: a ForwardAccumulator watching x, γ and β around the training call."""
        import tensorflow as tf

        m = None if mask is None else _tensor(mask, "bool")
        t = self._to_native(x)
        params, tparams = ([self.module.gamma, self.module.beta], [tgamma, tbeta]) if self.spec.affine else ([], [])
        tangents = [self._to_native(tx), *(_tensor(a, p.dtype) for p, a in zip(params, tparams, strict=True))]

        def jvp(t, m, tangents):
            with tf.autodiff.ForwardAccumulator([t, *params], tangents) as acc:
                y = self._call(t, True, m)
            return acc.jvp(y)

        return _numpy(self._graph(jvp)(t, m, tangents))

    def second_order(self, x, dy, v, mask=None):
        """Nested tapes: the inner one's dx = VJP(dy), the outer one differentiates ⟨dx, v⟩."""
        import tensorflow as tf

        m = None if mask is None else _tensor(mask, "bool")
        wrt = [self.module.gamma] if self.spec.affine else []

        def second_order(t, m, dy, v):
            with tf.GradientTape() as outer:
                outer.watch(t)
                with tf.GradientTape() as inner:
                    inner.watch(t)
                    y = self._call(t, True, m)
                dx = inner.gradient(y, t, output_gradients=tf.cast(dy, y.dtype))
                f = tf.reduce_sum(dx * v)
            ddx, *ddgamma = outer.gradient(f, [t, *wrt])
            return ddx, ddgamma[0] if ddgamma else None

        ddx, ddgamma = self._graph(second_order)(self._to_native(x), m, self._to_native(dy), self._to_native(v))
        return _numpy(ddx), None if ddgamma is None else _numpy(ddgamma)

    def timed(self, x: np.ndarray, mode: str, dy: np.ndarray | None = None) -> Timed:
        """tf.function per mode, kept per layer and retracing per new shape (see keras.layers)."""
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


class TfKerasAdapter(Adapter):
    name = "tf_keras"
    # tf_keras has no RMSNorm layer (that arrived with Keras 3.9), so rms_norm is a skip
    builders = {op: builder(TfKerasLayer, native) for op, native in (
        ("layer_norm", _layer_norm), ("batch_norm", _batch_norm), ("group_norm", _group_norm),
        ("instance_norm", _instance_norm))}
    requires = ("tf_keras", "tensorflow")
    extra = "tf_keras"
    version_of = "tf-keras"
    momentum_convention = "old"
    preferred_layout = "channels_last"  # Keras users run NHWC
    features = frozenset({"eval", "running_stats", "grad", "mask", "jvp", "second_order"})
    modes = TF_MODES

    def ensure_available(self) -> None:
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before the base class imports TF
        super().ensure_available()

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        """``BatchNormalization(synchronized=True)``, the documented form (the older
        ``layers.experimental.SyncBatchNormalization`` is deprecated for it), under a MirroredStrategy
        (see ``replicas``). ``synchronized`` turns the fused kernel off, so the Python path runs."""
        return replicas.run(job, self.name, _batch_norm)

    def mixed_precision(self, spec, dtype):
        """A per-layer ``Policy("mixed_<half>")``: x cast to the half dtype, variables float32; the compute
        dtype is what each layer's source does with them. LayerNormalization's Python path upcasts x to
        float32 "if mixed precision is used", but with eps ≥ 1.001e-5 it takes the fused kernel and applies
        γ and β to its half output in half; BatchNormalization normalizes in float32 on both its paths;
        GroupNormalization keeps autocast on for γ and β and never upcasts x, so it computes in the half
        dtype (``tf.nn.weighted_moments`` upcasts float16 statistics only)."""
        if dtype not in ("bfloat16", "float16") or spec.op not in self.builders:
            return None
        # LayerNormalization._fused_can_be_used: float32 variables, trailing axes (always, here), eps ≥ 1.001e-5
        fused = spec.op == "layer_norm" and spec.eps >= 1.001e-5
        layer, how, compute = {
            "layer_norm": ("LayerNormalization(", f"fused_batch_norm on x, then γ, β applied in {dtype}", dtype)
            if fused else ("LayerNormalization(", "x upcast to float32, γ and β float32", "float32"),
            "batch_norm": ("BatchNormalization(", "float32 statistics and normalization (upcast x or the fused "
                           "kernel), γ, β and moving statistics float32", "float32"),
            "group_norm": ("GroupNormalization(", f"γ and β autocast to {dtype}, normalization in {dtype}", dtype),
            "instance_norm": ("GroupNormalization(groups=-1, ", f"γ and β autocast to {dtype}, normalization in "
                              f"{dtype}", dtype),
        }[spec.op]
        src = "group" if spec.op == "instance_norm" else spec.op.split("_")[0]
        return MixedPath(f"tf_keras.layers.{layer}dtype=Policy('mixed_{dtype}')): {how}", compute,
                         f"{_SRC}{src}_normalization.py")

    def defaults(self, op):
        layers = _tf_keras().layers
        layer = {"layer_norm": layers.LayerNormalization, "batch_norm": layers.BatchNormalization,
                 "group_norm": layers.GroupNormalization,
                 "instance_norm": lambda: layers.GroupNormalization(groups=-1)}[op]()
        out = {"eps": layer.epsilon}
        if op == "batch_norm":
            out["momentum"] = layer.momentum
            out["fused"] = layer.fused  # None: the fused kernel wherever it applies (see the module docstring)
        if op in ("group_norm", "instance_norm"):
            out["groups"] = layer.groups  # -1: one group per channel
        if op == "instance_norm":
            out["track_running_stats"] = False  # no tf_keras layer keeps them
        out["affine"] = bool(layer.center and layer.scale)
        return out
