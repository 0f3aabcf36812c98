"""Known divergences of flax.linen and flax.nnx: see ``numerics.divergence``."""

from __future__ import annotations

from ...numerics.divergence import CENTRED, Known, conditioned, counts_differ, params, synchronized, within
from ...numerics.envelopes import PROMOTED, computes_in, one_pass_variance_in, replica_statistics
from ...ops.dtypes import machine_eps
from .linen import FlaxLinenAdapter
from .nnx import FlaxNnxAdapter

# The same layer code under jax.jit or op by op: a divergence of that code is each mode's
_LINEN = FlaxLinenAdapter.every_mode()
_NNX = FlaxNnxAdapter.every_mode()
_FLAX = (*_LINEN, *_NNX)

KNOWN: tuple[Known, ...] = (
    Known(
        "flax-sync-unweighted-mean",
        "flax's BatchNorm(axis_name=...) synchronizes statistics with lax.pmean of each device's mean and "
        "mean square (_compute_stats, maybe_distributed_mean), unweighted by how many values each device "
        "holds: with uneven shards (which shard_map and pmap must pad and mask) or a mask, the statistics "
        "are the replicas' plain average, not the global batch's. Reproducer (2 host devices): x = "
        "[[0],[0],[0],[10],[10],[10]], mask = [[1],[0],[0],[1],[1],[1]]; BatchNorm(axis_name='r') under "
        "jax.shard_map over 'r' gives batch mean 5.0 = (0 + 10)/2, where the 4 real samples' mean is 7.5 "
        "(flax 0.12.8)",
        "https://github.com/google/flax/issues/2417",
        lambda r: synchronized(r) and within(r, adapter=_FLAX, check=(
            "forward_train", "grad_dx", "grad_dgamma", "running_mean", "running_var")) and counts_differ(r),
        envelope=replica_statistics("unweighted"),
    ),
    Known(
        "flax-fast-variance",
        "flax's LayerNorm, BatchNorm, GroupNorm and InstanceNorm default to use_fast_variance=True, "
        "var = E[x²] − E[x]², which "
        "cancels when |mean| ≫ std: the error grows as κ², beyond the two-pass bound (κ = |mean|/std)",
        "https://github.com/google/flax/blob/main/flax/linen/normalization.py",
        lambda r: within(r, adapter=_FLAX, op=CENTRED,
                      check=("forward_train", "grad_dx", "grad_dgamma", "running_var", "jvp", "second_order_dx",
                             "second_order_dgamma")) and conditioned(r)
        # the shifted input of the metamorphic check (b up to ±64): BatchNorm's in channels_first, found once
        # every layout had it, is 2.1-2.4x its tolerance and 0.02x with use_fast_variance=False
        or within(r, adapter=_FLAX, op=("batch_norm", "group_norm", "instance_norm"),
                  check=("scale_shift_invariance",)),
        envelope=one_pass_variance_in(PROMOTED),  # _compute_stats upcasts half inputs to float32
    ),
    Known(
        "flax-linen-mixed-dx-double-upcast",
        "flax.linen norms with dtype=bfloat16/float16 and param_dtype=float32 upcast x to float32 twice (x.astype "
        "in _compute_stats, and promotion in _normalize's x − mean); JAX rounds each path's float32 gradient to the "
        "half input dtype and adds the two in half precision, so dx carries ε_half·|γ·dy|/σ of cancellation error "
        "instead of one rounding of the float32 result. Reproducer: LayerNorm(dtype=jnp.bfloat16, "
        "param_dtype=jnp.float32) on randn(8, 16) in bfloat16: dx relative error 4.8e-2, against 3.7e-3 when the "
        "caller upcasts x once (flax 0.12.8, jax 0.10.2)",
        "https://github.com/google/flax/blob/main/flax/linen/normalization.py",
        lambda r: within(r, adapter=_LINEN, check=("grad_dx",)) and params(r).get("precision") == "mixed",
        envelope=lambda r: machine_eps(r["dtype"]) / machine_eps("float32"),  # dx as if computed in half
    ),
    Known(
        "flax-nnx-float32-batch-stats",
        "flax.nnx.BatchNorm creates its running mean and variance as float32 whatever param_dtype is, "
        "so float64 running statistics are rounded to float32",
        "https://github.com/google/flax/blob/main/flax/nnx/nn/normalization.py",
        lambda r: within(r, adapter=_NNX, dtype=("float64",), check=("running_mean", "running_var")),
        envelope=computes_in("float32"),
    ),
)
