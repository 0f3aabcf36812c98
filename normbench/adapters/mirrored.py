"""TensorFlow's own data-parallel engine on one host, shared by keras[tensorflow] and tf_keras
(one process may hold both): a ``tf.distribute.MirroredStrategy`` over logical CPU devices.

TensorFlow fixes its logical devices when its runtime starts, so the first replicated job
splits the CPU into as many as any case needs, once per process; a runtime already started
with fewer refuses larger jobs (a skip). Each replica gets its own shard through
``experimental_distribute_values_from_function``, which takes per-replica tensors of
different batch sizes as they are. A step runs the way a training step under the strategy
does: one ``tf.function`` around ``strategy.run``, each replica's ``tf.GradientTape`` on its
local loss ⟨y_r, dy_r⟩ (the gradient of the layer's own all-reduce carries the other replicas'
terms into dx), γ/β gradients summed by ``strategy.reduce(SUM)`` as the optimizer's all-reduce
sums them. The functions are kept per layer configuration and shard shapes, so a case whose
shapes were seen before does not retrace.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .base import ReplicaJob, ReplicaRun, Unsupported


@dataclass(frozen=True)
class Replicated:
    """A layer built under the strategy's scope: ``call(x, training, mask)``, its γ/β (empty without
    affine) and moving (mean, variance) as the TensorFlow variables the strategy distributes."""

    call: Callable[[Any, bool, Any], Any]
    params: Sequence[Any]
    moving: tuple[Any, Any]


def devices(count: int, host_devices: int = 0) -> list[str]:
    """The first ``count`` logical CPU devices, splitting the CPU into enough of them (``host_devices``:
    the most replicas any case uses) if TensorFlow's runtime has not started yet."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    want = max(count, host_devices)
    if len(tf.config.get_logical_device_configuration(cpu) or ()) < want:
        try:
            tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * want)
        except RuntimeError:  # the runtime has started: its devices are fixed
            pass
    names = [d.name for d in tf.config.list_logical_devices("CPU")]
    if len(names) < count:
        raise Unsupported(f"TensorFlow started in this process with {len(names)} logical CPU device(s) before "
                          f"{count} could be configured; run the synchronized suite in a process of its own")
    return names[:count]


@functools.cache
def strategy(replicas: int, host_devices: int = 0) -> Any:
    """A MirroredStrategy over the first ``replicas`` logical CPU devices, one per count. Every
    strategy numbers its collective groups from 1, so a second one over another device set
    collides with the first (CPU:0 "is joining a group with size 4, but that group has size 2")
    and aborts every collective of the process; TF's own tests give each strategy its own key
    range (``strategy_combinations._mirrored_strategy_with_collective_key_base``), and so does this."""
    import tensorflow as tf

    tf.distribute.MirroredStrategy._collective_key_base += 100000
    return tf.distribute.MirroredStrategy(devices(replicas, host_devices))


_FUNCTIONS: dict[tuple, tuple[Replicated, Any, Any]] = {}


def _functions(st: Any, layer: Replicated) -> tuple[Any, Any]:
    """(train, infer) tf.functions: train maps per-replica (x, dy, mask) to (y, dx, summed dγ/dβ)."""
    import tensorflow as tf

    def local(x, dy, mask):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer.call(x, True, mask)
        dx, *dparams = tape.gradient(y, [x, *layer.params], output_gradients=tf.cast(dy, y.dtype))
        return y, dx, dparams

    @tf.function
    def train(x, dy, mask):
        y, dx, dparams = st.run(local, args=(x, dy, mask))
        return y, dx, [st.reduce(tf.distribute.ReduceOp.SUM, g, axis=None) for g in dparams]

    @tf.function
    def infer(x):
        return st.run(lambda t: layer.call(t, False, None), args=(x,))

    return train, infer


def _numpy(values: Any, st: Any) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in st.experimental_local_results(values)]


def run(job: ReplicaJob, key: str, make: Callable[[], Replicated], layer_name: str) -> ReplicaRun:
    """``job`` on a MirroredStrategy of ``job.replicas`` devices, with the layer ``make`` builds
    (under the strategy's scope, once per ``key``, configuration and shard shapes)."""
    import tensorflow as tf

    st = strategy(job.replicas, job.host_devices)
    cache_key = (key, job.spec, job.dtype, tuple(x.shape for x in job.shards), job.masks is not None)
    if cache_key not in _FUNCTIONS:
        with st.scope():
            layer = make()
        _FUNCTIONS[cache_key] = (layer, *_functions(st, layer))
    layer, train, infer = _FUNCTIONS[cache_key]
    start = [job.gamma, job.beta][:len(layer.params)] + [job.running_mean, job.running_var]
    for variable, value in zip([*layer.params, *layer.moving], start, strict=True):
        variable.assign(tf.constant(np.asarray(value), variable.dtype))  # every replica's copy

    def shards(arrays, dtype):
        return st.experimental_distribute_values_from_function(
            lambda ctx: tf.constant(np.asarray(arrays[ctx.replica_id_in_sync_group]), dtype))

    x, dy = shards(job.shards, job.dtype), shards(job.dys, job.dtype)
    mask = None if job.masks is None else shards(job.masks, tf.bool)
    y, dx, dparams = train(x, dy, mask)
    for _ in range(job.steps - 1):
        train(x, dy, mask)
    y_eval = infer(x)
    means, variances = (_numpy(v, st) for v in layer.moving)
    dgamma, dbeta = ([np.array(g.numpy()) for g in dparams] + [None, None])[:2]
    moving, n = layer.moving[0], job.replicas
    spread = max(float(np.max(np.abs(a - b[0]))) for b in (means, variances) for a in b)
    facts = {
        "engine": f"tf.distribute.MirroredStrategy over {n} logical CPU device{'s' * (n > 1)}, {layer_name}",
        "devices": n,
        "replicas_agree": spread == 0,
        "moving_statistics": f"{type(moving).__name__}, aggregation {moving.aggregation.name}",
        "execution": "tf.function around strategy.run; dγ, dβ summed by strategy.reduce(SUM)",
        "cross_device_ops": type(getattr(st.extended, "_cross_device_ops", None)).__name__,
        "shards": "experimental_distribute_values_from_function, one tensor of its own batch size per replica",
        "traces": train.experimental_get_tracing_count(),
    }
    if len({len(a) for a in job.shards}) > 1:
        facts["uneven"] = "as they are: each replica a tensor of its own batch size, no padding"
    if spread:
        facts["running_spread"] = spread  # the most any replica's moving statistics differ from replica 0's
    if job.masks is not None:
        facts["mask"] = "each replica's own mask, passed as mask= (as the single-device layer takes it)"
    return ReplicaRun(_numpy(y, st), _numpy(dx, st), dgamma, dbeta, means[0], variances[0], _numpy(y_eval, st),
                      facts)
