"""Replicas in one process with exact all-reduces: the synchronized path's reference (and the
project's tests plant other statistics through ``kind`` to prove the suite catches them)."""

from __future__ import annotations

from ...numerics import replicas
from ...ops.dtypes import resolve
from ..base import ReplicaJob, ReplicaRun


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
