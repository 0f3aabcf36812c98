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
keeps the default. Synchronized BatchNorm runs on TF alone (``tf_replicas``: a MirroredStrategy
over logical CPU devices); on JAX and torch, Keras refuses ``synchronized=True`` in the
layer's constructor, and that refusal is what is recorded.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, NoReturn

import numpy as np

from ..numerics.reference import Grads
from ..ops.spec import NormSpec
from . import tf_replicas
from .base import Adapter, Layer, MixedPath, Refused, ReplicaJob, ReplicaRun, Timed, Unsupported, builder


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
            f"keras[{backend}]: this process runs Keras on the {keras.backend.backend()} backend, and Keras "
            f"cannot switch backends in a process; `normbench run` gives each backend its own process, and under "
            f"pytest run one process per backend: KERAS_BACKEND={backend} pytest --pyargs normbench.suites "
            f"--adapters 'keras[{backend}]'"
        )
    return keras


def _policy(spec: NormSpec, dtype: str) -> Any:
    """The layer's ``dtype=``: on the mixed path a DTypePolicy of its own (float32 variables, compute
    in ``dtype``), not the global policy, so nothing leaks into the next case."""
    import keras

    return keras.mixed_precision.DTypePolicy(f"mixed_{dtype}") if spec.precision == "mixed" else dtype


_SRC = "https://github.com/keras-team/keras/blob/master/keras/src/"
# Each op's layer under a mixed policy, the same code on every backend: (its call up to ``dtype=``, what
# its source does, the compute dtype: "float32" or "half", the source). LayerNormalization,
# BatchNormalization and GroupNormalization switch autocast off for the layer and for γ, β and moving
# statistics (float32), and upcast x to float32 before the statistics. RMSNormalization keeps autocast on,
# so Layer.__call__ reads its float32 scale as the half compute dtype; ops.rms_normalization then upcasts x
# and that half-rounded γ to float32, and dγ comes back through the cast, rounded to the half dtype.
_MIXED = {
    "layer_norm": ("LayerNormalization(", "x upcast to float32 by ops.layer_normalization (F.layer_norm on "
                   "torch), γ and β float32", "float32", "ops/nn.py"),
    "rms_norm": ("RMSNormalization(", "γ autocast to {half}, then x and γ upcast to float32 by "
                 "ops.rms_normalization (F.rms_norm on torch)", "half", "layers/normalization/rms_normalization.py"),
    "batch_norm": ("BatchNormalization(", "x upcast to float32, γ, β and moving statistics float32", "float32",
                   "layers/normalization/batch_normalization.py"),
    "group_norm": ("GroupNormalization(", "x upcast to float32, γ and β float32", "float32",
                   "layers/normalization/group_normalization.py"),
    "instance_norm": ("GroupNormalization(groups=-1, ", "x upcast to float32, γ and β float32", "float32",
                      "layers/normalization/group_normalization.py"),
}


def _layer_norm(spec, shape, dtype):
    import keras

    return keras.layers.LayerNormalization(axis=list(spec.reduce_axes(len(shape))), epsilon=spec.eps,
                                           center=spec.affine, scale=spec.affine, dtype=_policy(spec, dtype))


def _rms_norm(spec, shape, dtype):
    import keras

    if not spec.affine:
        raise Unsupported("keras.layers.RMSNormalization always has a learnable scale (γ); it has no "
                          "argument to leave it out")
    return keras.layers.RMSNormalization(axis=list(spec.reduce_axes(len(shape))), epsilon=spec.eps,
                                         dtype=_policy(spec, dtype))


def _batch_norm(spec, shape, dtype, **options):
    import keras

    return keras.layers.BatchNormalization(axis=spec.feature_axis(len(shape)), momentum=1 - spec.momentum,
                                           epsilon=spec.eps, center=spec.affine, scale=spec.affine,
                                           dtype=_policy(spec, dtype), **options)


def _group_norm(spec, shape, dtype, groups=None):
    import keras

    return keras.layers.GroupNormalization(groups=spec.groups if groups is None else groups,
                                           axis=spec.feature_axis(len(shape)), epsilon=spec.eps,
                                           center=spec.affine, scale=spec.affine, dtype=_policy(spec, dtype))


def _instance_norm(spec, shape, dtype):
    if spec.running_stats:
        raise Unsupported("Keras has no InstanceNorm with running statistics: its instance norm, "
                          "GroupNormalization(groups=-1), keeps none")
    return _group_norm(spec, shape, dtype, groups=-1)  # -1: one group per channel


@dataclass(frozen=True)
class _Native:
    """One op's Keras layer: ``make(spec, shape, dtype)`` returns it unbuilt; ``call`` names the
    arguments its ``call`` takes (``stateless_call`` passes keywords straight to ``call``, so
    LayerNormalization, RMSNormalization and GroupNormalization get neither ``training`` nor
    ``mask``); ``gamma`` and ``beta`` name the attributes holding γ and β (None: no β)."""

    make: Callable[[NormSpec, tuple[int, ...], str], Any]
    call: tuple[str, ...] = ()
    gamma: str = "gamma"
    beta: str | None = "beta"

    def __call__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str) -> Any:
        return self.make(spec, shape, dtype)


_NATIVE = {
    "layer_norm": _Native(_layer_norm),
    "rms_norm": _Native(_rms_norm, gamma="scale", beta=None),
    "batch_norm": _Native(_batch_norm, call=("training", "mask")),
    "group_norm": _Native(_group_norm),
    "instance_norm": _Native(_instance_norm),
}


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

    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str, native: _Native) -> None:
        super().__init__(spec, shape, dtype, native)
        self.module = _build(self.backend, native, spec, self.shape, dtype)
        self._timed_fns: dict[str, Any] = {}  # mode -> compiled function, kept across timed() calls

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
        return _numpy(self._call(self._to_native(x), training, m))

    def vjp(self, x: np.ndarray, dy: np.ndarray, mask: np.ndarray | None = None) -> Grads:
        m = None if mask is None else _tensor(mask, "bool")
        dx, dg, db = self._grad(self._to_native(x), self._to_native(dy), m)
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
        with tf.autodiff.ForwardAccumulator([t, *(p.value for p in params)], tangents) as acc:
            y = self._call(t, True, m)
        return _numpy(acc.jvp(y))

    def second_order(self, x, dy, v, mask=None):
        """Nested tapes: the inner one's dx = VJP(dy), the outer one differentiates ⟨dx, v⟩."""
        import tensorflow as tf

        m = None if mask is None else _tensor(mask, "bool")
        t, wrt = self._to_native(x), [p.value for p in self._params()[:1]]  # x and γ
        with tf.GradientTape() as outer:
            outer.watch([t, *wrt])
            with tf.GradientTape() as inner:
                inner.watch(t)
                y = self._call(t, True, m)
            dx = inner.gradient(y, t, output_gradients=self._to_native(dy))
            f = tf.reduce_sum(dx * self._to_native(v))
        ddx, *ddgamma = outer.gradient(f, [t, *wrt])
        return _numpy(ddx), _numpy(ddgamma[0]) if ddgamma else None

    def timed(self, x: np.ndarray, mode: str, dy: np.ndarray | None = None) -> Timed:
        """Keras users on TF run under tf.function, so that is what is timed. Each mode's
        function is built once per layer and kept, with no input_signature or reduce_retracing,
        so a new shape retraces as it would for them and ``traces`` counts it."""
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


@functools.cache
def _jax_functions(native: _Native, spec: NormSpec, shape: tuple[int, ...], dtype: str) -> dict[str, Any]:
    """Jitted pure functions over a stateless call of one template layer per configuration, as
    Keras's JAX trainer jits them: its model's ``stateless_call`` runs each layer's ``__call__`` in a
    ``StatelessScope``, and so does "apply" (the layer's own ``stateless_call`` would skip ``__call__``,
    and with it a mixed policy's autocasting of variables). "train" / "infer" map (trainable,
    non_trainable, x, mask) to (y, non_trainable after the call); "grad" maps (trainable,
    non_trainable, x, mask, dy) to (dx, d trainable). Any layer of that configuration passes its
    own variable values. Cached, so a configuration compiles once per shape; eager Keras on JAX
    compiles every op separately for each new shape, ~4x slower on the suites' small cases."""
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

    return {"train": jax.jit(functools.partial(apply, training=True)),
            "infer": jax.jit(functools.partial(apply, training=False)), "grad": jax.jit(grad),
            "jvp": jax.jit(jvp), "second_order": jax.jit(second_order)}


class KerasJaxLayer(KerasLayer):
    """Called as Keras's JAX trainer calls a layer: a jitted ``stateless_call``, whose updated
    non-trainable state (BatchNorm's moving statistics) is assigned back to the layer."""

    backend = "jax"

    def __init__(self, spec: NormSpec, shape: tuple[int, ...], dtype: str, native: _Native) -> None:
        if dtype == "float64":
            import jax

            jax.config.update("jax_enable_x64", True)  # as flax_linen._enable_x64; process-wide
        super().__init__(spec, shape, dtype, native)
        self._fns = _jax_functions(native, spec, self.shape, dtype)

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
                     fn._cache_size)


class KerasTorchLayer(KerasLayer):
    """Eager, as Keras runs on torch (its torch trainer does not compile by default);
    gradients through torch.autograd, forward-only benchmarks without autograd bookkeeping."""

    backend = "torch"

    def _grad(self, t, dy, mask):
        import torch

        t = t.detach().requires_grad_(True)
        params = [p.value for p in self._params()]
        y = self._call(t, True, mask)
        dx, *dparams = torch.autograd.grad(y, [t, *params], dy)
        return _slots(dx, dparams)

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        """torch.func.jvp through ``stateless_call`` (a functional call of the layer, whose variables
        torch.func cannot replace in place); the statistics it updates are dropped."""
        import torch

        m = None if mask is None else _tensor(mask, "bool")
        trainable, non_trainable = ([v.value.detach() for v in vs] for vs in (
            self.module.trainable_variables, self.module.non_trainable_variables))
        tangents = _tangents(self.module.trainable_variables, self._params(), tgamma, tbeta)

        def f(t, trainable):
            return self.module.stateless_call(trainable, non_trainable, t, **_call_kwargs(self.native, True, m))[0]

        return _numpy(torch.func.jvp(f, (self._to_native(x), trainable), (self._to_native(tx), tangents))[1])

    def second_order(self, x, dy, v, mask=None):
        """The vjp above with create_graph=True, then torch.autograd.grad of ⟨dx, v⟩ wrt x and γ."""
        import torch

        m = None if mask is None else _tensor(mask, "bool")
        t, wrt = self._to_native(x).requires_grad_(True), [p.value for p in self._params()[:1]]
        dx, = torch.autograd.grad(self._call(t, True, m), t, self._to_native(dy), create_graph=True)
        ddx, *ddgamma = torch.autograd.grad((dx * self._to_native(v)).sum(), [t, *wrt])
        return _numpy(ddx), _numpy(ddgamma[0]) if ddgamma else None

    def timed(self, x, mode, dy=None):
        import torch

        t = self._to_native(x)
        sync = ("torch.cuda.synchronize after each call" if t.is_cuda else
                "none needed: torch CPU kernels have finished when the call returns")
        wait = torch.cuda.synchronize if t.is_cuda else (lambda: None)
        if mode == "forward_backward":
            t.requires_grad_(True)
            g, wrt = self._to_native(dy), [t, *(p.value for p in self._params())]

            def call():
                out = torch.autograd.grad(self._call(t, True), wrt, g)
                wait()
                return out

            return Timed(call, sync)
        # Forward-only calls skip autograd bookkeeping as the torch adapter's do: no_grad for
        # "train" (it updates the moving statistics in place), inference_mode otherwise.
        mode_ctx = torch.no_grad if mode == "train" else torch.inference_mode

        def call():
            with mode_ctx():
                out = self._call(t, mode == "train")
            wait()
            return out

        return Timed(call, sync)


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

    def ensure_available(self) -> None:
        """Select the layer's backend before the base class imports keras."""
        _select(self.backend)
        super().ensure_available()
        _keras(self.backend)

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        """``BatchNormalization(synchronized=True)`` under a MirroredStrategy (see tf_replicas); on
        other backends, what constructing it the way a user would does."""
        spec, shape = job.spec, job.shards[0].shape
        if self.backend != "tensorflow":
            self._refusal(job)

        def make():
            module = _batch_norm(spec, shape, job.dtype, synchronized=True)
            module.build(shape)
            params = [module.gamma.value, module.beta.value] if spec.affine else []
            return tf_replicas.Replicated(lambda t, training, mask: module(t, training=training, mask=mask),
                                          params, (module.moving_mean.value, module.moving_variance.value))

        return tf_replicas.run(job, self.name, make, "keras.layers.BatchNormalization(synchronized=True)")

    def _refusal(self, job: ReplicaJob) -> NoReturn:
        """Keras 3 checks ``synchronized`` against the backend in the layer's constructor."""
        try:
            _batch_norm(job.spec, job.shards[0].shape, job.dtype, synchronized=True)
        except Exception as exc:  # noqa: BLE001 - whatever it raises is the finding
            raise Refused(f"on the {self.backend} backend, keras.layers.BatchNormalization(synchronized=True) "
                          f"raises {type(exc).__name__}: {exc}", {"exception": type(exc).__name__}) from exc
        raise Unsupported(f"keras.layers.BatchNormalization(synchronized=True) constructs on the {self.backend} "
                          "backend, but only TensorFlow's distribution strategies are wired here")

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


class KerasJaxAdapter(KerasTensorflowAdapter):
    name = "keras[jax]"
    backend = "jax"
    builders = _builders(KerasJaxLayer)
    requires = ("keras", "jax")
    extra = "jax"
    environment = {"KERAS_BACKEND": "jax"}


class KerasTorchAdapter(KerasTensorflowAdapter):
    name = "keras[torch]"
    backend = "torch"
    builders = _builders(KerasTorchLayer)
    requires = ("keras", "torch")
    extra = "torch"
    environment = {"KERAS_BACKEND": "torch"}
