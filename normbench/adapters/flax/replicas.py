"""Synchronized BatchNorm on JAX, shared by flax.linen and flax.nnx: flax's own ``axis_name`` path
under jax.shard_map over host CPU devices. Uneven shards are zero-padded to the largest and masked
out, since shard_map needs equal shards. JAX fixes its number of host devices when its CPU backend
starts, from XLA_FLAGS: ``host_devices`` asks for them in the environment a process starts with."""

from __future__ import annotations

import numpy as np

from ...ops.dtypes import resolve
from ..base import Layer, ReplicaJob, ReplicaRun, Unsupported
from .common import _numpy, _tensor

DEVICES_FLAG = "--xla_force_host_platform_device_count"


def host_devices(environ: dict[str, str], count: int) -> dict[str, str]:
    """``environ`` with XLA_FLAGS asking JAX for ``count`` host CPU devices, which JAX reads once,
    when its CPU backend starts. A count already asked for is kept when it is large enough, and
    placed first."""
    env = dict(environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split() if f]
    given = [f for f in flags if f.startswith(DEVICES_FLAG + "=")]
    value = given[-1].split("=", 1)[1] if given else ""
    if value.isdigit() and int(value) >= count and flags[0] == given[-1]:
        return env
    # first: XLA stops reading flags at a token without "--" (a user's "intra_op_parallelism_threads=N")
    flags = [f"{DEVICES_FLAG}={count}", *(f for f in flags if not f.startswith(DEVICES_FLAG + "="))]
    env["XLA_FLAGS"] = " ".join(flags)
    return env


AXIS = "replica"  # the mesh axis that BatchNorm(axis_name=AXIS) synchronizes over


def host_mesh(replicas: int):
    """A one-axis Mesh over the first ``replicas`` host CPU devices; JAX fixes their number when
    its CPU backend starts, so too few is a skip that says how to ask for more."""
    import jax
    from jax.sharding import Mesh

    devices = jax.devices("cpu")
    if len(devices) < replicas:
        raise Unsupported(f"{replicas} replicas need {replicas} JAX CPU devices but {len(devices)} exist: start "
                          f"the process with XLA_FLAGS=--xla_force_host_platform_device_count={replicas}")
    return Mesh(np.array(devices[:replicas]), (AXIS,))


def shard_inputs(job: ReplicaJob) -> tuple[np.ndarray, np.ndarray | None, np.ndarray, int]:
    """x, the mask (None if nothing is masked) and dy as global arrays of equal shards, each shard
    zero-padded to the largest: shard_map needs equal shards, so a JAX user pads and masks the
    padding out of the statistics. The mask is expanded at the feature axis, as flax takes it."""
    n = max(len(s) for s in job.shards)

    def pad(parts):
        return np.concatenate([np.concatenate([a, np.zeros((n - len(a), *a.shape[1:]), a.dtype)]) for a in parts])

    x = pad(job.shards)
    masks = job.masks
    if masks is None and any(len(s) < n for s in job.shards):
        masks = [np.ones(job.spec.mask_shape(s.shape), bool) for s in job.shards]
    mask = None if masks is None else np.expand_dims(pad([np.asarray(m, bool) for m in masks]),
                                                     job.spec.feature_axis(x.ndim))
    return x, mask, pad(job.dys), n


def sharded_steps(call, replicas: int):
    """The jitted replicated run: ``call(params, stats, x, mask, training) -> (y, stats)`` applies
    one replica's BatchNorm under jax.shard_map; params enter replicated, so the transpose of
    shard_map sums their gradients over replicas (JAX's reduction, as in a data-parallel step),
    while each replica keeps its own copy of the running statistics (a leading replica axis).
    One compile covers every step: the first step's y and gradients are returned, later steps
    only update the statistics (γ and β do not change, so neither would their gradients), then
    every replica runs inference."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    mesh = host_mesh(replicas)

    def sharded(training: bool):
        def one(params, stats, x, mask):
            y, stats = call(params, jax.tree.map(lambda a: a[0], stats), x, mask, training)
            return y, jax.tree.map(lambda a: a[None], stats)

        return jax.shard_map(one, mesh=mesh, in_specs=(P(), P(AXIS), P(AXIS), P(AXIS)),
                             out_specs=(P(AXIS), P(AXIS)))

    train, infer = sharded(True), sharded(False)

    def run(params, stats, x, mask, dy, steps):
        stats = jax.tree.map(lambda a: jnp.broadcast_to(a, (replicas, *a.shape)), stats)  # one copy per replica
        y, pull, stats = jax.vjp(lambda p, xt: train(p, stats, xt, mask), params, x, has_aux=True)
        dparams, dx = pull(dy.astype(y.dtype))
        stats = jax.lax.fori_loop(1, steps, lambda _, s: train(params, s, x, mask)[1], stats)
        return y, dx, dparams, stats, infer(params, stats, x, None)[0]

    return jax.jit(run)


def replica_layer(build, job: ReplicaJob, shape: tuple[int, ...]) -> Layer:
    """One replica's BatchNorm layer for its (padded) shard shape, holding the job's γ, β and
    running statistics: what every replica starts from."""
    layer = build(job.spec, shape, job.dtype)
    if job.gamma is not None:
        layer.set_params(job.gamma, job.beta)
    layer.set_running(job.running_mean, job.running_var)
    return layer


def native_inputs(job: ReplicaJob, x: np.ndarray, mask: np.ndarray | None, dy: np.ndarray) -> tuple:
    """x, mask, dy and the step count as sharded_steps' run takes them."""
    dt = resolve(job.dtype)
    return _tensor(x, dt), None if mask is None else _tensor(mask, bool), _tensor(dy, dt), np.int32(job.steps)


def replica_run(job: ReplicaJob, engine: str, n: int, y, dx, dgamma, dbeta, mean, var, y_eval) -> ReplicaRun:
    """A ReplicaRun from the global outputs (replica r holds rows r·n to r·n + its shard), the
    running statistics per replica (leading axis) and the facts of how it ran."""
    def rows(a):
        a = _numpy(a)
        return [a[r * n:r * n + len(s)] for r, s in enumerate(job.shards)]

    mean, var = _numpy(mean), _numpy(var)
    facts = {"engine": engine, "devices": job.replicas,
             "replicas_agree": bool((mean == mean[0]).all() and (var == var[0]).all())}
    if any(len(s) < n for s in job.shards):
        facts["uneven"] = "padded to the largest shard and masked (shard_map needs equal shards)"
    return ReplicaRun(rows(y), rows(dx), None if dgamma is None else _numpy(dgamma),
                      None if dbeta is None else _numpy(dbeta), mean[0], var[0], rows(y_eval), facts)
