"""The float64 reference exposed as an adapter, so the contract is exercised end to end.

It builds every op in the registry (the oracle is generic over them), rounds its output to the
tested dtype, like any framework returning that dtype, and stores biased running variance (the
convention of Keras, Flax and ONNX).
"""

from __future__ import annotations

import numpy as np

from ... import ops
from ...numerics import reference
from ...ops.dtypes import resolve
from ..base import Adapter, Layer, ReplicaJob, ReplicaRun, Timed
from .replicas import run_replicas


class NumpyLayer(Layer):
    def forward(self, x, training, mask=None):
        with np.errstate(over="ignore"):  # rounding past the dtype's range to inf is correct
            return self._forward(x, training, mask)

    def _forward(self, x, training, mask):
        spec, dt = self.spec, resolve(self.dtype)
        if training or not spec.has_running_stats:
            y = reference.forward(spec, x, self.gamma, self.beta, mask)
            if training and spec.has_running_stats:
                mean, var = reference.update_running(
                    spec, self.running_mean, self.running_var, x, mask, unbiased=False
                )
                self.running_mean, self.running_var = mean.astype(dt), var.astype(dt)
        else:
            y = reference.forward_eval(spec, x, self.gamma, self.beta, *self.running())
        return y.astype(dt)

    def vjp(self, x, dy, mask=None):
        dt = resolve(self.dtype)
        g = reference.vjp(self.spec, x, self.gamma, dy, mask)
        return reference.Grads(*(None if a is None else a.astype(dt) for a in g))

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        return reference.jvp(self.spec, x, self.gamma, tx, tgamma, tbeta, mask).astype(resolve(self.dtype))

    def second_order(self, x, dy, v, mask=None):
        dt = resolve(self.dtype)
        ddx, ddgamma = reference.second_order(self.spec, x, self.gamma, dy, v, mask)
        return ddx.astype(dt), ddgamma.astype(dt)

    def timed(self, x, mode, dy=None):
        if mode == "forward_backward":
            return Timed(lambda: self.vjp(x, dy), "none: numpy is synchronous")
        return Timed(lambda: self.forward(x, mode != "eval"), "none: numpy is synchronous")


class NumpyAdapter(Adapter):
    name = "numpy"
    builders = {op: NumpyLayer for op in ops.names()}
    running_var = "biased"
    version_of = "numpy"

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        return run_replicas(job)
