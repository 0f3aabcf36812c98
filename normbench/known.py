"""Known upstream divergences: failures we expect, each with its reason and upstream link.

A failing (or erroring) record that an entry matches is recorded as ``known`` and its test
is an xfail, so the default run passes while the report still lists it. Strictness is kept
per entry: if an entry matched records in a run but none of them failed, the divergence no
longer reproduces (fixed upstream?) and the run fails, so somebody updates this list.
Behaviour differences that follow a framework's own documented convention (torch's
unbiased running variance, what a batch of one does) are facts, not entries here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Known:
    key: str
    reason: str
    link: str
    applies: Callable[[Row], bool]  # does this record fall under the divergence?

    def matches(self, row: Row) -> bool:
        return bool(self.applies(row))


def _in(row: Row, **allowed) -> bool:
    return all(row.get(field) in values for field, values in allowed.items())


def _params(row: Row) -> dict:
    return row.get("params") or {}


_FLAX = ("flax.linen", "flax.nnx")
_WIDE = ("float32", "float64")
_KERAS = ("keras[tensorflow]", "keras[jax]", "keras[torch]")  # Keras 3: one layer code, three backends
_KERAS_32 = ("keras[jax]", "keras[torch]")  # where Keras's dtype promotion turns float64 into float32
_STRESS = ("offset1e2", "offset1e4", "tiny_variance", "constant")

KNOWN: tuple[Known, ...] = (
    Known(
        "flax-fast-variance",
        "flax's LayerNorm and BatchNorm default to use_fast_variance=True, var = E[x²] − E[x]², which "
        "cancels when |mean| ≫ std: the error grows as κ², beyond the two-pass bound (κ = |mean|/std)",
        "https://github.com/google/flax/blob/main/flax/linen/normalization.py",
        lambda r: _in(r, adapter=_FLAX, dtype=_WIDE,
                      input=("offset1e2", "offset1e4", "tiny_variance", "constant"),
                      check=("forward_train", "grad_dx", "grad_dgamma", "running_var")),
    ),
    Known(
        "flax-nnx-float32-batch-stats",
        "flax.nnx.BatchNorm creates its running mean and variance as float32 whatever param_dtype is, "
        "so float64 running statistics are rounded to float32",
        "https://github.com/google/flax/blob/main/flax/nnx/nn/normalization.py",
        lambda r: _in(r, adapter=("flax.nnx",), dtype=("float64",), check=("running_mean", "running_var")),
    ),
    Known(
        "onnx-float32-attributes",
        "ONNX float attributes are 32-bit: epsilon and momentum reach a float64 kernel rounded to "
        "float32 (momentum 0.9 becomes 0.89999998)",
        "https://github.com/onnx/onnx/issues/3261",
        lambda r: _in(r, adapter=("onnxruntime",), dtype=("float64",),
                      check=("forward_train", "forward_eval", "running_mean", "running_var")),
    ),
    Known(
        "keras-mask-last-axis",
        "Keras's masked BatchNorm expands the mask on the last axis whatever `axis` is, so "
        "channels-first inputs with a mask raise or are weighted wrongly (the same code on every backend)",
        "https://github.com/keras-team/keras/issues/19848",
        lambda r: _in(r, adapter=_KERAS, layout=("channels_first",)) and _params(r).get("masked"),
    ),
    Known(
        "keras-masked-moments-epsilon",
        "Keras's masked BatchNorm moments divide by sum(mask) + keras.config.epsilon() (1e-7): a "
        "relative error of ~1e-7/count, visible at float64 (only on TensorFlow: the other backends "
        "compute float64 in float32, see keras-float64-as-float32)",
        "https://github.com/keras-team/keras/blob/master/keras/src/layers/normalization/batch_normalization.py",
        lambda r: _in(r, adapter=("keras[tensorflow]",), dtype=("float64",)) and _params(r).get("masked")
        and r.get("layout") != "channels_first",
    ),
    Known(
        "keras-float64-as-float32",
        "Keras's dtype promotion (backend.result_type) maps float64 to float32 on every backend but "
        "TensorFlow, and LayerNormalization / BatchNormalization compute in result_type(x.dtype, "
        "'float32'): a float64 layer on JAX or torch normalizes, differentiates and updates its "
        "running statistics in float32, then casts back to float64",
        "https://github.com/keras-team/keras/issues/23704",
        lambda r: _in(r, adapter=_KERAS_32, dtype=("float64",)),
    ),
    Known(
        "keras-torch-fast-variance",
        "Keras's torch backend computes ops.moments as E[x²] − E[x]² (\"faster but less numerically "
        "stable\", in its source; keras PR 18795 fixed the TF and JAX moments, not torch's), which cancels "
        "when |mean| ≫ std: BatchNormalization's error grows as κ², beyond the two-pass bound. Its "
        "LayerNormalization calls torch's F.layer_norm and is not affected",
        "https://github.com/keras-team/keras/blob/master/keras/src/backend/torch/nn.py",
        lambda r: _in(r, adapter=("keras[torch]",), op=("batch_norm",), dtype=("float32",), input=_STRESS,
                      check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta", "running_var")),
    ),
    Known(
        "tf-keras-fused-ignores-mask",
        "tf_keras BatchNormalization takes its fused kernel by default for 4-D/5-D float32 and half "
        "inputs, and the fused kernel ignores `mask` (a warning says so; fused=False would honour it)",
        "https://github.com/tensorflow/tensorflow/issues/30161",
        lambda r: _in(r, adapter=("tf_keras",), dtype=("float32", "float16", "bfloat16"))
        and _params(r).get("masked") and len(r.get("shape") or ()) in (4, 5),
    ),
    Known(
        "tf-keras-mask-last-axis",
        "tf_keras's masked BatchNorm moments expand the mask on the last axis whatever `axis` is "
        "(tf.nn.weighted_moments with the mask at axis -1), so channels-first inputs with a mask raise",
        "https://github.com/keras-team/tf-keras/blob/master/tf_keras/layers/normalization/batch_normalization.py",
        lambda r: _in(r, adapter=("tf_keras",), layout=("channels_first",)) and _params(r).get("masked"),
    ),
    Known(
        "tf-keras-float32-decay",
        "tf_keras's non-fused BatchNorm updates running statistics with decay = "
        "tf.convert_to_tensor(1.0 - momentum), a float32 tensor cast to the variable's dtype, so at "
        "float64 the momentum is rounded to float32 (0.1 becomes 0.100000001)",
        "https://github.com/keras-team/tf-keras/blob/master/tf_keras/layers/normalization/batch_normalization.py",
        lambda r: _in(r, adapter=("tf_keras",), op=("batch_norm",), dtype=("float64",),
                      check=("running_mean", "running_var", "running_mean_steps", "running_var_steps",
                             "train_after_eval")),
    ),
    Known(
        "tf-keras-half-layer-norm",
        "tf_keras LayerNormalization under a float16 dtype computes in float16 (it upcasts only under a "
        "mixed policy): the variance overflows for std > 256 and x·rsqrt(var + eps) for |x|/σ > 65504, "
        "where Keras 3 normalizes in float32 (keras-core PR 412: LN and BN do not work in float16)",
        "https://github.com/keras-team/keras-core/pull/412",
        lambda r: _in(r, adapter=("tf_keras",), op=("layer_norm",), dtype=("float16",),
                      input=("offset1e4", "large", "tiny_variance"),
                      check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta")),
    ),
    Known(
        "torch-half-batchnorm-overflow",
        "torch's CPU BatchNorm in float16 overflows to inf on channels-last (strided) inputs near the "
        "float16 limit (~6e4), where a contiguous copy of the same input does not: that kernel keeps an "
        "intermediate in half precision (PR 126525 widened var_sum on another path)",
        "https://github.com/pytorch/pytorch/pull/126525",
        lambda r: _in(r, adapter=("torch",), dtype=("float16",), input=("large",), op=("batch_norm",),
                      layout=("channels_last",)),
    ),
)


def lookup(row: Row) -> Known | None:
    """The first known divergence that covers this record, if any."""
    return next((k for k in KNOWN if k.matches(row)), None)
