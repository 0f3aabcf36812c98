"""Known divergences of Keras 3 on its three backends, and those Keras's TensorFlow code shares
with tf_keras (synchronized moments, tf.nn.moments): see ``numerics.divergence``."""

from __future__ import annotations

from ...numerics.divergence import CENTRED, Known, channels, conditioned, params, synchronized, within
from ...numerics.envelopes import (
    computes_in,
    mask_on_last_axis,
    one_pass_variance,
    one_pass_variance_in,
    replica_statistics,
    stopped_mean_gradient,
)
from ..tf_keras.layers import TfKerasAdapter
from .jax_backend import KerasJaxAdapter
from .layers import KerasTensorflowAdapter
from .torch_backend import KerasTorchAdapter

_WIDE = ("float32", "float64")
_FLOAT32_MOMENTS = (*_WIDE, "float16")  # Keras's torch moments: float16 cast to float32, bfloat16 kept
# TensorFlow's other modes run the same layer code as a graph or through XLA: a divergence of that code is theirs too
_TF = KerasTensorflowAdapter.every_mode()
_TF_BOTH = (*_TF, *TfKerasAdapter.every_mode())  # code Keras 3 on TF shares with tf_keras
_JAX = KerasJaxAdapter.every_mode()  # jitted or op by op, the same layer code
_TORCH = KerasTorchAdapter.every_mode()  # eager, or under torch.compile
_KERAS = (*_TF, *_JAX, *_TORCH)  # Keras 3: one layer code, three backends
_KERAS_32 = (*_JAX, *_TORCH)  # where Keras's dtype promotion turns float64 into float32

KNOWN: tuple[Known, ...] = (
    Known(
        "keras-sync-one-pass-moments",
        "synchronized BatchNorm in Keras 3 (TensorFlow backend: _compute_moments_sync) and in tf_keras "
        "(_sync_calculate_mean_and_var) all-reduces Σx and Σx² and takes var = max(E[x²] − E[x]², 0), "
        "which cancels when |mean| ≫ std. Reproducer (2 logical CPUs, MirroredStrategy, float32): x = 1e4 + "
        "normal(8, 6), 4 rows per replica, BatchNormalization(synchronized=True)(x, training=True) has "
        "per-channel std up to 37.7 instead of 1 (keras 3.15.1, tf_keras 2.21)",
        "https://github.com/keras-team/keras/blob/master/keras/src/backend/tensorflow/nn.py",
        lambda r: synchronized(r) and within(r, adapter=("keras[tensorflow]", "tf_keras"), op=("batch_norm",),
                                           check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta",
                                                  "running_var")) and conditioned(r),
        envelope=one_pass_variance,
    ),
    Known(
        "keras-sync-mask-local",
        "Keras 3's BatchNormalization passes synchronized only to its unmasked moments (_moments): with a "
        "mask each replica normalizes with its own statistics and, its moving statistics being mirrored "
        "variables with aggregation NONE, keeps its own moving statistics, which drift apart. Reproducer "
        "(2 logical CPUs): x = normal(4, 3, 2) + arange(4)[:, None, None], mask all True, 2 rows per "
        "replica: each replica's output has mean 0 per channel, and the replicas' moving means differ "
        "(keras 3.15.1; tf_keras honours the mask under synchronization)",
        "https://github.com/keras-team/keras/blob/master/keras/src/layers/normalization/batch_normalization.py",
        lambda r: synchronized(r) and within(r, adapter=("keras[tensorflow]",), op=("batch_norm",))
        and bool(params(r).get("masked")),
        envelope=replica_statistics("local"),
    ),
    Known(
        "keras-mask-last-axis",
        "Keras's masked BatchNorm expands the mask on the last axis whatever `axis` is, so "
        "channels-first inputs with a mask raise, or, where the mask broadcasts (as many positions as "
        "channels), weight each element by the mask at another position (the same code on every backend; "
        "normbench search: batch_norm-2x2x2-float32-normal-channels_first-masked)",
        "https://github.com/keras-team/keras/issues/19848",
        lambda r: within(r, adapter=_KERAS, layout=("channels_first",)) and params(r).get("masked"),
        raises=("ValueError", "InvalidArgumentError", "RuntimeError", "TorchRuntimeError"),  # the last: torch.compile's
        envelope=mask_on_last_axis,
    ),
    Known(
        "keras-masked-single-channel",
        "Keras 3's masked BatchNormalization moments squeeze the mask's broadcast axis with ops.squeeze and no "
        "axis, so with a single channel the statistics collapse to scalars and the layer raises IndexError on "
        "every backend. Found by normbench search. Reproducer: keras.layers.BatchNormalization(axis=1)("
        "np.zeros((2, 1), 'float32'), training=True, mask=np.array([True, True])) raises IndexError (keras 3.15.1)",
        "https://github.com/keras-team/keras/blob/master/keras/src/layers/normalization/batch_normalization.py",
        lambda r: within(r, adapter=_KERAS, op=("batch_norm",)) and bool(params(r).get("masked"))
        and channels(r) == 1,
        raises=("IndexError",),
    ),
    Known(
        "keras-masked-moments-epsilon",
        "Keras's masked BatchNorm moments divide by sum(mask) + keras.config.epsilon() (1e-7): a "
        "relative error of ~1e-7/count, visible at float64 (only on TensorFlow: the other backends "
        "compute float64 in float32, see keras-float64-as-float32)",
        "https://github.com/keras-team/keras/blob/master/keras/src/layers/normalization/batch_normalization.py",
        lambda r: within(r, adapter=_TF, dtype=("float64",)) and params(r).get("masked")
        and r.get("layout") != "channels_first",
        envelope=computes_in("float32"),  # 1e-7 relative, below float32 rounding
    ),
    Known(
        "keras-torch-fast-variance",
        "Keras's torch backend computes ops.moments as E[x²] − E[x]² (\"faster but less numerically "
        "stable\", in its source; keras PR 18795 fixed the TF and JAX moments, not torch's), which cancels "
        "when |mean| ≫ std (NaN once it turns negative): BatchNormalization's, GroupNormalization's "
        "and InstanceNorm's (GroupNormalization(groups=-1)) error grows as κ², beyond the two-pass bound, "
        "in float32 and in float64 (computed in float32, see keras-float64-as-float32). Its "
        "LayerNormalization calls torch's F.layer_norm and is not affected",
        "https://github.com/keras-team/keras/blob/master/keras/src/backend/torch/nn.py",
        lambda r: within(r, adapter=_TORCH, op=("batch_norm", "group_norm", "instance_norm"),
                      dtype=_FLOAT32_MOMENTS,
                      check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta", "running_var", "jvp",
                             "second_order_dx", "second_order_dgamma")) and conditioned(r)
        or within(r, adapter=_TORCH, op=("batch_norm", "group_norm", "instance_norm"),
               dtype=_FLOAT32_MOMENTS, check=("scale_shift_invariance",)),
        envelope=one_pass_variance_in("float32"), nonfinite=True,
    ),
    Known(
        "keras-float64-as-float32",
        "Keras's dtype promotion (backend.result_type) maps float64 to float32 on every backend but "
        "TensorFlow, and LayerNormalization / BatchNormalization compute in result_type(x.dtype, "
        "'float32'): a float64 layer on JAX or torch normalizes, differentiates and updates its "
        "running statistics in float32, then casts back to float64",
        "https://github.com/keras-team/keras/issues/23704",
        lambda r: within(r, adapter=_KERAS_32, dtype=("float64",)),
        envelope=computes_in("float32"),
    ),
    Known(
        "tf-moments-stop-gradient-second-order",
        "tf.nn.moments takes the variance about stop_gradient(mean) (its comment: it 'does not change the "
        "gradient', true only of first derivatives), so differentiating a gradient through it — Keras 3's TF "
        "backend moments, tf_keras's non-fused BatchNorm and LayerNorm — gets the variance's second derivative "
        "as (2/n)·I instead of (2/n)(I − 11ᵀ/n): ∂⟨dx, v⟩/∂x is off by −(Σγ·dy·x̂)(Σv)/(n²·s²) on every "
        "position of a group. Reproducer (TF 2.21, float64): x = [1, 2, 4, 8]; nested GradientTapes over "
        "tf.nn.moments(x, [0])[1] give Hessian row sums [0.5, 0.5, 0.5, 0.5], tf.math.reduce_variance gives "
        "[0, 0, 0, 0]",
        "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/python/ops/nn_impl.py",
        lambda r: within(r, adapter=_TF_BOTH, op=CENTRED, check=("second_order_dx",))
        and not params(r).get("masked"),
        envelope=stopped_mean_gradient,
    ),
)
