"""Known divergences of tf_keras (legacy Keras 2): see ``numerics.divergence``."""

from __future__ import annotations

from ...numerics.divergence import Known, conditioned, params, within
from ...numerics.envelopes import (
    computes_in,
    group_sums,
    ignores_mask,
    ignores_mask_one_pass_in,
    largest_rstd,
    mask_on_last_axis,
    measured,
    one_pass_variance_in,
    variance_overflows,
)
from ...ops.dtypes import overflow_threshold
from .layers import TfKerasAdapter

# tf.function and XLA run the same layer code: a divergence of that code is theirs too
_TF_KERAS = TfKerasAdapter.every_mode()

_ONE_PASS = one_pass_variance_in("float32")
_ONE_PASS_NO_MASK = ignores_mask_one_pass_in("float32")


def _one_pass_float32(row: dict) -> float:
    return (_ONE_PASS_NO_MASK if params(row).get("masked") else _ONE_PASS)(row)


KNOWN: tuple[Known, ...] = (
    Known(
        "tf-xla-fused-batchnorm-one-pass",
        "under XLA, tf_keras's fused BatchNormalization (the default fused=None takes it for 4-D and 5-D float32 and "
        "half inputs) becomes XLA's batch-norm-training, which BatchNormExpander rewrites with var = E[x²] − E[x]² "
        "and no clamp: it cancels when |mean| ≫ std and is NaN once negative (tensorflow#118701), where eager TF's "
        "fused kernel is two-pass. Reproducer (TF 2.21, tf_keras 2.21): x = 1e4 + randn(4, 5, 6, 8) in float32; "
        "tf.function(lambda t: tf_keras.layers.BatchNormalization()(t, training=True), jit_compile=True)(x) is "
        "not finite, eagerly it is within tolerance; at offset 1e2 the error is 3.9x the tolerance. With a mask, "
        "which the fused kernel ignores (tf-keras-fused-ignores-mask), the two errors add: normbench search found "
        "batch_norm-1x3x1x3-float32-shifted:10000:1-channels_first-noaffine-masked NaN and its running variance "
        "111x its tolerance",
        "https://github.com/openxla/xla/blob/main/xla/service/batchnorm_expander.cc",
        lambda r: within(r, adapter=("tf_keras+xla",), op=("batch_norm",), dtype=("float32", "float16", "bfloat16"),
                         check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta", "running_var"))
        and len(r.get("shape") or ()) in (4, 5) and conditioned(r),
        envelope=_one_pass_float32,
        nonfinite=True,
    ),
    Known(
        "tf-xla-rsqrt-grad-half-nan",
        "under XLA, tf_keras's float16 LayerNormalization (tf.nn.moments and tf.nn.batch_normalization in "
        "float16) differentiates rsqrt(var + eps) with an RsqrtGrad whose y³ overflows float16 for y = "
        "rsqrt(1e-5) ≈ 316 before it meets dy: inf·0 is NaN, so dx is NaN on constant rows, where eager "
        "TensorFlow gives 0. Reproducer (TF 2.21): tf.raw_ops.RsqrtGrad(y=float16(316.2), dy=float16(0)) is 0 "
        "eagerly and NaN under tf.function(jit_compile=True). (First in this list: tf-keras-half-precision below "
        "matches the same rows by input name, for another cause.)",
        "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/compiler/tf2xla/kernels/binary_ops.cc",
        lambda r: within(r, adapter=("tf_keras+xla",), op=("layer_norm",), dtype=("float16",), check=("grad_dx",))
        and measured(largest_rstd, r) ** 3 >= overflow_threshold("float16"),  # y³ overflows: a near-constant row
        nonfinite=True,
    ),
    Known(
        "tf-keras-fused-ignores-mask",
        "tf_keras BatchNormalization takes its fused kernel by default for 4-D/5-D float32 and half "
        "inputs, and the fused kernel ignores `mask` (a warning says so; fused=False would honour it)",
        "https://github.com/tensorflow/tensorflow/issues/30161",
        lambda r: within(r, adapter=_TF_KERAS, dtype=("float32", "float16", "bfloat16"))
        and params(r).get("masked") and len(r.get("shape") or ()) in (4, 5),
        envelope=ignores_mask,
    ),
    Known(
        "tf-keras-mask-last-axis",
        "tf_keras's masked BatchNorm moments expand the mask on the last axis whatever `axis` is "
        "(tf.nn.weighted_moments with the mask at axis -1), so channels-first inputs with a mask raise, or, "
        "where the mask broadcasts (as many positions as channels), weight each element by the mask at another "
        "position, as Keras 3 does (normbench search: batch_norm-2x2x2-float32-normal-channels_first-masked)",
        "https://github.com/keras-team/tf-keras/blob/master/tf_keras/layers/normalization/batch_normalization.py",
        lambda r: within(r, adapter=_TF_KERAS, layout=("channels_first",)) and params(r).get("masked"),
        raises=("ValueError", "InvalidArgumentError"),
        envelope=mask_on_last_axis,
    ),
    Known(
        "tf-keras-float32-decay",
        "tf_keras's non-fused BatchNorm updates running statistics with decay = "
        "tf.convert_to_tensor(1.0 - momentum), a float32 tensor cast to the variable's dtype, so at "
        "float64 the momentum is rounded to float32 (0.1 becomes 0.100000001)",
        "https://github.com/keras-team/tf-keras/blob/master/tf_keras/layers/normalization/batch_normalization.py",
        lambda r: within(r, adapter=_TF_KERAS, op=("batch_norm",), dtype=("float64",),
                      check=("running_mean", "running_var", "running_mean_steps", "running_var_steps",
                             "train_after_eval")),
        envelope=computes_in("float32"),
    ),
    Known(
        "tf-keras-half-precision",
        "tf_keras LayerNormalization and GroupNormalization (InstanceNorm as groups=-1) under a float16 "
        "dtype compute in float16 (LayerNormalization upcasts only under a mixed policy; GroupNormalization "
        "casts tf.nn.weighted_moments' float32 statistics back to float16): the variance overflows to inf "
        "for std > 256, making the output β, and x·rsqrt(var + eps) overflows for |x|/σ > 65504, where "
        "Keras 3 normalizes in float32 (keras-core PR 412: LN and BN do not work in float16). Differentiating "
        "rsqrt(var + eps) takes its cube, which overflows float16 once rsqrt > 40.3: normbench search found "
        "group_norm-1x4-float16-shifted:0:0.001-groups1 (rsqrt 310) with dx NaN eagerly and under XLA alike",
        "https://github.com/keras-team/keras-core/pull/412",
        lambda r: within(r, adapter=_TF_KERAS, op=("layer_norm", "group_norm", "instance_norm"),
                      dtype=("float16",), check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta"))
        and (r.get("input") in ("offset1e4", "large", "tiny_variance", "constant")
             or measured(group_sums, r) >= overflow_threshold("float16")  # a float16 sum of the moments overflows
             or r.get("check") == "grad_dx" and measured(largest_rstd, r) ** 3 >= overflow_threshold("float16")),
        envelope=variance_overflows, nonfinite=True,
    ),
)
