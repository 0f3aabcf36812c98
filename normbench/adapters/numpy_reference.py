"""The float64 reference exposed as an adapter, so the contract is exercised end to end.

It builds every op in the registry (the oracle is generic over them), rounds its output to the
tested dtype, like any framework returning that dtype, and stores biased running variance (the
convention of Keras, Flax and ONNX).
"""

from __future__ import annotations

import numpy as np

from .. import ops
from ..numerics import reference, replicas
from ..numerics.dtypes import resolve
from .base import Adapter, Layer, ReplicaJob, ReplicaRun, Timed


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


def run_replicas(job: ReplicaJob, kind: str = "global") -> ReplicaRun:
    """Replicas in one process, each shard's (count, mean, M2) merged as an exact all-reduce would
    (``kind`` picks other statistics: the project's tests plant them to prove the suite catches
    them). Results are rounded to the tested dtype, like any framework returning that dtype."""
    spec, dt = job.spec, resolve(job.dtype)
    y = replicas.forward(spec, job.shards, job.gamma, job.beta, job.masks, kind)
    dx, dgamma, dbeta = replicas.vjp(spec, job.shards, job.gamma, job.dys, job.masks, kind)

    def cast(a):
        return None if a is None else [v.astype(dt) for v in a] if isinstance(a, list) else a.astype(dt)

    mean, var = (cast(a) for a in replicas.update_running(spec, job.running_mean, job.running_var, job.shards,
                                                          job.masks, unbiased=False, steps=job.steps, kind=kind))
    y_eval = replicas.forward_eval(spec, job.shards, job.gamma, job.beta, mean, var)
    facts = {"engine": f"numpy: {job.replicas} replicas in one process, statistics merged exactly"}
    if len({len(a) for a in job.shards}) > 1:
        facts["uneven"] = "as they are: each replica's own rows"
    return ReplicaRun(cast(y), cast(dx), cast(dgamma), cast(dbeta), mean, var, cast(y_eval), facts)


class NumpyAdapter(Adapter):
    name = "numpy"
    builders = {op: NumpyLayer for op in ops.names()}
    running_var = "biased"
    version_of = "numpy"

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        return run_replicas(job)
