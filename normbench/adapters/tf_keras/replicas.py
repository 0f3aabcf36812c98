"""tf_keras's synchronized BatchNorm: ``BatchNormalization(synchronized=True)`` under TensorFlow's
MirroredStrategy (``mirrored``, which Keras 3 on TensorFlow shares)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import mirrored
from ..base import ReplicaJob, ReplicaRun


def run(job: ReplicaJob, name: str, batch_norm: Callable[..., Any]) -> ReplicaRun:
    """The replicated run of the layer ``batch_norm(spec, shape, dtype, synchronized=True)`` builds;
    ``synchronized`` turns the fused kernel off, so the Python path runs."""
    spec, shape = job.spec, job.shards[0].shape

    def make():
        module = batch_norm(spec, shape, job.dtype, synchronized=True)
        module.build(shape)
        return mirrored.Replicated(lambda t, training, mask: module(t, training=training, mask=mask),
                                   [module.gamma, module.beta] if spec.affine else [],
                                   (module.moving_mean, module.moving_variance))

    return mirrored.run(job, name, make, "tf_keras.layers.BatchNormalization(synchronized=True)")
