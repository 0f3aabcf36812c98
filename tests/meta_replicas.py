"""Synchronized BatchNorm for the meta-tests: a correct replicated implementation written from
scratch, and copies of it with the two bugs cross-replica BatchNorm is known for, which the
synchronized suite must catch.

``Independent`` shares no code with ``normbench.numerics.replicas``: each replica computes its
partial sums in the arithmetic dtype (float64 for float64 inputs, float32 otherwise) and
``all_reduce`` — a sum over the replicas, the one collective — combines them, as a framework's
engine does. ``UnweightedMean`` averages the replicas' means and mean squares with equal weight
(``lax.pmean`` of per-device moments); ``LocalOnly`` never synchronizes.

    normbench verify --suites synchronized --adapters tests.meta_replicas:Independent
"""

from __future__ import annotations

import numpy as np

from normbench import Adapter
from normbench.adapters.base import ReplicaJob, ReplicaRun

from .meta_adapters import IndependentLayer


def all_reduce(parts: list[np.ndarray]) -> np.ndarray:
    """What every replica receives from a sum all-reduce of its part."""
    out = parts[0]
    for p in parts[1:]:
        out = out + p
    return out


class Independent(Adapter):
    """Correct: every synchronized check must pass."""

    name = "meta-sync-independent"
    builders = {"batch_norm": IndependentLayer}
    version_of = "numpy"
    running_var = "biased"

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        spec, out_dtype = job.spec, np.asarray(job.shards[0]).dtype
        dt = np.float64 if out_dtype == np.float64 else np.float32
        channel = spec.param_axes(np.ndim(job.shards[0]))[0]
        xs = [np.moveaxis(np.asarray(x, dt), channel, 1) for x in job.shards]
        dys = [np.moveaxis(np.asarray(d, dt), channel, 1) for d in job.dys]
        masks = job.masks or [None] * len(xs)
        ws = [np.ones_like(x) if m is None else np.broadcast_to(np.expand_dims(m, 1), x.shape).astype(dt)
              for x, m in zip(xs, masks, strict=True)]
        axes = tuple(a for a in range(xs[0].ndim) if a != 1)
        pshape = (1, xs[0].shape[1]) + (1,) * (xs[0].ndim - 2)

        def param(a, fill):
            return np.full(pshape, fill, dt) if a is None else np.asarray(a, dt).reshape(pshape)

        gamma, beta = param(job.gamma, 1.0), param(job.beta, 0.0)
        rm, rv = param(job.running_mean, 0.0), param(job.running_var, 1.0)
        mean, var, weight, pooled = self.statistics(xs, ws, axes)
        inv = [1 / np.sqrt(v + spec.eps) for v in var]
        xhat = [(x - m) * i for x, m, i in zip(xs, mean, inv, strict=True)]
        y = [h * gamma + beta for h in xhat]
        g = [d * gamma for d in dys]
        sum_g = pooled([(gi).sum(axis=axes, keepdims=True) for gi in g])
        sum_gx = pooled([(gi * h).sum(axis=axes, keepdims=True) for gi, h in zip(g, xhat, strict=True)])
        dx = [(gi - a * sg - a * h * sgx) * i
              for gi, a, h, sg, sgx, i in zip(g, weight, xhat, sum_g, sum_gx, inv, strict=True)]
        dgamma = all_reduce([(d * h).sum(axis=axes, keepdims=True) for d, h in zip(dys, xhat, strict=True)])
        dbeta = all_reduce([d.sum(axis=axes, keepdims=True) for d in dys])
        k = spec.momentum
        for _ in range(job.steps):
            rm, rv = (1 - k) * rm + k * mean[0], (1 - k) * rv + k * var[0]
        y_eval = [(x - rm) / np.sqrt(rv + spec.eps) * gamma + beta for x in xs]

        def back(a):
            return np.moveaxis(a, 1, channel).astype(out_dtype)

        flat = np.shape(job.running_mean)
        return ReplicaRun([back(a) for a in y], [back(a) for a in dx], dgamma.reshape(flat).astype(out_dtype),
                          dbeta.reshape(flat).astype(out_dtype), rm.reshape(flat).astype(out_dtype),
                          rv.reshape(flat).astype(out_dtype), [back(a) for a in y_eval],
                          {"engine": f"{len(xs)} simulated replicas, sum all-reduce"})

    def statistics(self, xs, ws, axes):
        """Per replica: mean, biased variance, each element's weight in them, and how the
        backward pass pools its sums (all-reduced over the replicas)."""
        n = all_reduce([w.sum(axis=axes, keepdims=True) for w in ws])
        mean = all_reduce([(w * x).sum(axis=axes, keepdims=True) for w, x in zip(ws, xs, strict=True)]) / n
        var = all_reduce([(w * (x - mean) ** 2).sum(axis=axes, keepdims=True) for w, x in zip(ws, xs, strict=True)]) / n
        r = len(xs)
        return [mean] * r, [var] * r, [w / n for w in ws], lambda parts: [all_reduce(parts)] * r


class UnweightedMean(Independent):
    """Bug: the replicas' means and mean squares averaged with equal weight, whatever each holds."""

    name = "meta-sync-unweighted-mean"

    def statistics(self, xs, ws, axes):
        r = len(xs)
        counts = [w.sum(axis=axes, keepdims=True) for w in ws]
        means = [(w * x).sum(axis=axes, keepdims=True) / c for w, x, c in zip(ws, xs, counts, strict=True)]
        mean = all_reduce(means) / r
        # the average of the replicas' E[x²], less the mean's square: taken about each replica's
        # mean, so that only the weighting is wrong (not the cancellation at a large offset)
        var = all_reduce([(w * (x - m) ** 2).sum(axis=axes, keepdims=True) / c + (m - mean) ** 2
                          for w, x, m, c in zip(ws, xs, means, counts, strict=True)]) / r
        return [mean] * r, [var] * r, [w / (r * c) for w, c in zip(ws, counts, strict=True)], \
            lambda parts: [all_reduce(parts)] * r


class LocalOnly(Independent):
    """Bug: each replica normalizes with its own shard's statistics (no synchronization)."""

    name = "meta-sync-local-only"

    def statistics(self, xs, ws, axes):
        counts = [w.sum(axis=axes, keepdims=True) for w in ws]
        means = [(w * x).sum(axis=axes, keepdims=True) / c for w, x, c in zip(ws, xs, counts, strict=True)]
        var = [(w * (x - m) ** 2).sum(axis=axes, keepdims=True) / c
               for w, x, m, c in zip(ws, xs, means, counts, strict=True)]
        return means, var, [w / c for w, c in zip(ws, counts, strict=True)], lambda parts: parts


BROKEN = (UnweightedMean, LocalOnly)
