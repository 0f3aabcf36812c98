"""Keras's norm layers as each op builds them, the backend a process runs Keras on, and the
compute dtypes Keras's mixed policies give each layer: shared by the layers and the
synchronized path."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ...ops.spec import NormSpec
from ..base import Unsupported


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
