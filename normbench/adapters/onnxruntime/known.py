"""Known divergences of the ONNX operator specs, for every adapter that declares it runs them (``semantics =
("onnx",)``: onnxruntime, in every mode, and a third party's ONNX evaluator), and of onnxruntime's own CPU
kernels: see ``numerics.divergence``."""

from __future__ import annotations

from ...numerics.divergence import Known, conditioned, within
from ...numerics.envelopes import computes_in, group_size, measured, one_pass_variance_in, welford_statistics
from .layers import OnnxRuntimeAdapter


def _runs_onnxruntime(row: dict) -> bool:
    """onnxruntime's own kernels ran the record: onnxruntime in any mode, or torch.onnx's exported graph."""
    adapter = str(row.get("adapter"))
    return adapter in OnnxRuntimeAdapter.every_mode() or adapter.partition("+")[0] == "torch.onnx"


ONNX = "onnx"  # the semantics: ONNX operators as the spec at the graph's opset defines them

KNOWN: tuple[Known, ...] = (
    Known(
        "onnx-group-norm-function",
        "GroupNormalization-21 is an ONNX function, and onnxruntime 1.31 has no kernel for it: an evaluator "
        "runs the function body, which casts X to stash_type (float32 by default, float64 inputs included) "
        "and takes the variance in one pass as E[x²] − E[x]², which cancels when |mean| ≫ std (NaN once it "
        "turns negative). Half-precision inputs are cast to float32 too: normbench search found float16 x = 1e4 "
        "(45 equal values) giving NaN, its float32 E[x²] − E[x]² being −8 "
        "(group_norm-1x45x1x1-float16-offset1e4-channels_first-groups1)",
        "https://github.com/onnx/onnx/blob/main/onnx/defs/nn/defs.cc",
        lambda r: within(r, op=("group_norm",), dtype=("float32", "float64", "float16", "bfloat16"),
                      check=("forward_train", "scale_shift_invariance")),
        envelope=one_pass_variance_in("float32"), nonfinite=True, semantics=ONNX,
    ),
    Known(
        "onnx-float32-attributes",
        "ONNX float attributes are 32-bit: epsilon and momentum reach a float64 kernel rounded to "
        "float32 (momentum 0.9 becomes 0.89999998)",
        "https://github.com/onnx/onnx/issues/3261",
        lambda r: within(r, dtype=("float64",),
                      check=("forward_train", "forward_eval", "running_mean", "running_var")),
        envelope=computes_in("float32"), semantics=ONNX,
    ),
    Known(
        "onnxruntime-layer-norm-welford-short-rows",
        "onnxruntime's CPU LayerNormalization kernel takes the statistics of a row shorter than 8 values in a "
        "scalar Welford loop in float32 (its vectorized path starts at 8): where the values' spread is near "
        "float32's spacing at their mean, the running mean rounds so that M2 loses the deviations while x − mean "
        "keeps them, as torch's loop does (torch-welford-short-groups). Found by normbench search (layer_norm-"
        "508x1x1x2-float32-shifted:5e+06:1). Reproducer: a LayerNormalization node (opset 17, axis -1, epsilon "
        "1e-5, scale 1, bias 0) on [[4999999.5, 4999999.0]] returns [158.1, 0.0] where the float64 result is "
        "[1.0, -1.0] (onnxruntime 1.31 CPU); torch.onnx's exported LayerNorm runs the same kernel",
        "https://github.com/microsoft/onnxruntime/blob/main/onnxruntime/core/providers/cpu/nn/layer_norm_impl.cc",
        lambda r: _runs_onnxruntime(r)
        and within(r, op=("layer_norm",), dtype=("float32",), check=("forward_train", "forward_eval"))
        and measured(group_size, r) < 8 and conditioned(r),
        envelope=welford_statistics,
    ),
)
