"""What flax.linen and flax.nnx share: the op classes' names, array conversion, dtype arguments,
the channel move GroupNorm needs, and the defaults both APIs' layers report alike."""

from __future__ import annotations

import numpy as np

from ...ops.dtypes import resolve
from ...ops.spec import NormSpec
from ..base import Mode

# How flax users run a layer: under jax.jit (the default), or the same function un-jitted, which JAX
# dispatches op by op (each op compiled alone, so XLA fuses and reorders nothing across ops).
MODES = (Mode("jit", "jax.jit over the layer's apply, as users run flax"),
         Mode("eager", "the same apply un-jitted: JAX dispatches it op by op"))

CLASSES = {"layer_norm": "LayerNorm", "rms_norm": "RMSNorm", "batch_norm": "BatchNorm",
           "group_norm": "GroupNorm", "instance_norm": "InstanceNorm"}
HALF = ("bfloat16", "float16")


def _enable_x64(dtype: str) -> None:
    if dtype == "float64":
        import jax

        jax.config.update("jax_enable_x64", True)


def _tensor(a: np.ndarray, dtype=None):
    import jax.numpy as jnp

    return jnp.asarray(np.asarray(a), dtype)


def _numpy(t) -> np.ndarray:
    return np.array(t)  # a writable copy; ml_dtypes makes bfloat16 round-trip


def _stat_dtype(dtype: str):
    """The dtype flax's own update leaves running statistics in: float32 or wider."""
    import jax.numpy as jnp

    return jnp.promote_types(jnp.float32, resolve(dtype))


def no_running_stats(spec: NormSpec) -> str | None:
    """Why flax (linen and nnx) cannot build ``spec``: its InstanceNorm has no running statistics."""
    if spec.op == "instance_norm" and spec.running_stats:
        return "flax's InstanceNorm keeps no running statistics (running_stats=True has no flax equivalent)"
    return None


def features_last(spec: NormSpec, ndim: int) -> int | None:
    """The axis to move last around a GroupNorm call (flax's GroupNorm takes features last), or None."""
    if spec.op != "group_norm":
        return None
    axis = spec.feature_axis(ndim)
    return None if axis == ndim - 1 else axis


def move_channel(t, channel: int | None, last: bool):
    """``t`` with ``channel`` moved last (``last``) or back from last; as is for None."""
    if channel is None:
        return t
    import jax.numpy as jnp

    return jnp.moveaxis(t, channel, -1) if last else jnp.moveaxis(t, -1, channel)


def param_dtype(spec: NormSpec, dtype: str) -> str:
    """γ's and β's dtype: float32 on the mixed path (flax's param_dtype), else the tested dtype."""
    return "float32" if spec.precision == "mixed" else dtype


def dtype_args(spec: NormSpec, dtype: str) -> dict:
    """flax's dtype arguments: on the mixed path the documented ``dtype=half`` (computation and
    output) with ``param_dtype=float32``; otherwise dtype None and params in the tested dtype."""
    out = {"param_dtype": resolve(param_dtype(spec, dtype))}
    return {**out, "dtype": resolve(dtype)} if spec.precision == "mixed" else out

_SYNC = "jax.block_until_ready on every output"


def describe(layer, op: str) -> dict:
    """The defaults of a flax (linen or nnx) layer: the attribute names are the same in both."""
    out = {"eps": layer.epsilon}
    if op == "batch_norm":
        out["momentum"] = layer.momentum
    out["affine"] = bool(layer.use_scale and getattr(layer, "use_bias", True))
    if op == "group_norm":
        out["num_groups"] = layer.num_groups
    if op == "instance_norm":
        out["track_running_stats"] = False  # flax has no such option
    if op != "rms_norm":  # RMSNorm takes no mean, so the flag changes nothing there
        out["use_fast_variance"] = layer.use_fast_variance
    return out
