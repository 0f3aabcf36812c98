"""keras.layers.LayerNormalization and BatchNormalization, one Keras backend per process.

Keras reads KERAS_BACKEND once, when first imported (importing tensorflow imports it too),
so each backend is a subclass naming its ``backend`` and must run in its own process.
BatchNormalization takes the feature axis natively, so both layouts run unpermuted. Keras's
momentum is ``1 - spec.momentum``; it stores biased running variance and, under a float16 or
bfloat16 dtype policy, keeps γ, β and running statistics in that dtype (computing BN in
float32, returning the policy dtype): all passed through, as is masked BN's quirks: Keras
expands the mask on the *last* axis (channels_first 3-D/4-D inputs raise, or are silently
misweighted when shapes happen to broadcast), divides by count + 1e-7, and raises for C=1.
All four dtypes work, so ``dtypes`` keeps the default.
"""

from __future__ import annotations

import os
import sys
from typing import Any, ClassVar

import numpy as np

from ..reference import Grads
from ..spec import NormSpec
from .base import Adapter, Layer, Timed, Unsupported


def _select(backend: str) -> None:
    """Point the first import of keras at ``backend``; a no-op once keras is imported."""
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
        # Hides TF's C++ INFO/WARNING lines; the two "oneDNN custom operations" lines are
        # printed before logging is configured and stay (TF_ENABLE_ONEDNN_OPTS=0 would
        # change numerics).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _keras(backend: str) -> Any:
    """Import keras on ``backend``; a process already on another backend cannot switch."""
    _select(backend)
    import keras

    if keras.backend.backend() != backend:
        raise Unsupported(
            f"keras[{backend}]: keras is already imported with the {keras.backend.backend()} "
            f"backend; run it in its own process with KERAS_BACKEND={backend}"
        )
    return keras


def _tensor(a: np.ndarray, dtype: str) -> Any:
    import keras

    return keras.ops.convert_to_tensor(np.asarray(a), dtype=dtype)


def _numpy(t: Any) -> np.ndarray:
    import keras

    return np.array(keras.ops.convert_to_numpy(t))


class KerasLayer(Layer):
    backend: ClassVar[str] = "tensorflow"

    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str) -> None:
        super().__init__(spec, shape, dtype)
        keras = _keras(self.backend)
        if spec.op == "layer_norm":
            self.module = keras.layers.LayerNormalization(
                axis=list(spec.reduce_axes(len(shape))), epsilon=spec.eps,
                center=spec.affine, scale=spec.affine, dtype=dtype,
            )
        else:
            self.module = keras.layers.BatchNormalization(
                axis=spec.feature_axis(len(shape)), momentum=1 - spec.momentum,
                epsilon=spec.eps, center=spec.affine, scale=spec.affine, dtype=dtype,
            )
        self.module.build(self.shape)
        self._timed_fns: dict[str, Any] = {}  # mode -> tf.function, kept across timed() calls

    def _to_native(self, x: np.ndarray) -> Any:
        return _tensor(x, self.dtype)

    def _call(self, t: Any, training: bool, mask: Any = None) -> Any:
        if self.spec.op == "layer_norm":
            return self.module(t, training=training)
        return self.module(t, training=training, mask=mask)

    def set_params(self, gamma: np.ndarray, beta: np.ndarray) -> None:
        self.module.gamma.assign(_tensor(gamma, self.dtype))
        self.module.beta.assign(_tensor(beta, self.dtype))

    def set_running(self, mean: np.ndarray, var: np.ndarray) -> None:
        self.module.moving_mean.assign(_tensor(mean, self.dtype))
        self.module.moving_variance.assign(_tensor(var, self.dtype))

    def running(self) -> tuple[np.ndarray, np.ndarray]:
        return _numpy(self.module.moving_mean), _numpy(self.module.moving_variance)

    def forward(self, x: np.ndarray, training: bool, mask: np.ndarray | None = None) -> np.ndarray:
        m = None if mask is None else _tensor(mask, "bool")
        return _numpy(self._call(self._to_native(x), training, m))

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        m = None if mask is None else _tensor(mask, "bool")
        dx, dg, db = self._grad(self._to_native(x), self._to_native(dy), m)
        return Grads(_numpy(dx), *(None if g is None else _numpy(g) for g in (dg, db)))

    def _grad(self, t: Any, dy: Any, mask: Any) -> tuple[Any, Any, Any]:
        """Native (dx, dγ, dβ): the only backend-specific code; other backends override it."""
        import tensorflow as tf

        params = [self.module.gamma.value, self.module.beta.value] if self.spec.affine else []
        with tf.GradientTape() as tape:
            tape.watch([t, *params])
            y = self._call(t, True, mask)
        dx, *dparams = tape.gradient(y, [t, *params], output_gradients=dy)
        return (dx, *(dparams or (None, None)))

    def timed(self, x: np.ndarray, mode: str, dy: np.ndarray | None = None) -> Timed:
        """Keras users run under tf.function, so that is what is timed (TF-specific, as ``_grad``).
        Each mode's function is built once per layer and kept, with no input_signature or
        reduce_retracing, so a new shape retraces as it would for them and ``traces`` counts it."""
        import tensorflow as tf

        fn = self._timed_fns.get(mode)
        if fn is None:
            if mode == "forward_backward":
                fn = tf.function(lambda t, g: self._grad(t, g, None))
            else:
                fn = tf.function(lambda t: self._call(t, mode == "train"))
            self._timed_fns[mode] = fn
        args = (self._to_native(x), self._to_native(dy)) if mode == "forward_backward" else (self._to_native(x),)
        sync = "none needed: TF runs CPU ops synchronously; the call returns with the outputs computed"
        return Timed(lambda: fn(*args), sync, fn.experimental_get_tracing_count)


class KerasTensorflowAdapter(Adapter):
    name = "keras[tensorflow]"
    layer = KerasLayer
    requires = ("keras", "tensorflow")
    extra = "tensorflow"
    version_of = "keras"
    momentum_convention = "old"
    preferred_layout = "channels_last"  # Keras users run NHWC
    features = frozenset({"eval", "running_stats", "grad", "mask"})

    def ensure_available(self) -> None:
        """Select the layer's backend before the base class imports keras."""
        _select(self.layer.backend)
        super().ensure_available()
        _keras(self.layer.backend)

    def defaults(self, op):
        keras = _keras(self.layer.backend)
        if op == "layer_norm":
            return {"eps": keras.layers.LayerNormalization().epsilon}
        layer = keras.layers.BatchNormalization()
        return {"eps": layer.epsilon, "momentum": layer.momentum}
