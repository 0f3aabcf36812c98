"""Keras 3's synchronized BatchNorm: ``BatchNormalization(synchronized=True)`` under TensorFlow's
MirroredStrategy (``mirrored``); on the other backends Keras refuses it in the layer's
constructor, and that refusal is what is recorded."""

from __future__ import annotations

from typing import NoReturn

from .. import mirrored
from ..base import Refused, ReplicaJob, ReplicaRun, Unsupported
from .native import _batch_norm


def run(job: ReplicaJob, name: str, backend: str) -> ReplicaRun:
    """The replicated run on TensorFlow; on other backends, what constructing the layer the way a
    user would does."""
    spec, shape = job.spec, job.shards[0].shape
    if backend != "tensorflow":
        _refusal(job, backend)

    def make():
        module = _batch_norm(spec, shape, job.dtype, synchronized=True)
        module.build(shape)
        params = [module.gamma.value, module.beta.value] if spec.affine else []
        return mirrored.Replicated(lambda t, training, mask: module(t, training=training, mask=mask),
                                   params, (module.moving_mean.value, module.moving_variance.value))

    return mirrored.run(job, name, make, "keras.layers.BatchNormalization(synchronized=True)")


def _refusal(job: ReplicaJob, backend: str) -> NoReturn:
    """Keras 3 checks ``synchronized`` against the backend in the layer's constructor."""
    try:
        _batch_norm(job.spec, job.shards[0].shape, job.dtype, synchronized=True)
    except Exception as exc:  # noqa: BLE001 - whatever it raises is the finding
        raise Refused(f"on the {backend} backend, keras.layers.BatchNormalization(synchronized=True) "
                      f"raises {type(exc).__name__}: {exc}", {"exception": type(exc).__name__}) from exc
    raise Unsupported(f"keras.layers.BatchNormalization(synchronized=True) constructs on the {backend} "
                      "backend, but only TensorFlow's distribution strategies are wired here")
