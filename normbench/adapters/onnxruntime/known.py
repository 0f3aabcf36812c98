"""Known divergences of the ONNX operator specs, for every adapter that declares it runs them (``semantics =
("onnx",)``: onnxruntime, in every mode, and a third party's ONNX evaluator): see ``numerics.divergence``."""

from __future__ import annotations

from ...numerics.divergence import Known, within
from ...numerics.envelopes import computes_in, one_pass_variance_in

ONNX = "onnx"  # the semantics: ONNX operators as the spec at the graph's opset defines them

KNOWN: tuple[Known, ...] = (
    Known(
        "onnx-group-norm-function",
        "GroupNormalization-21 is an ONNX function, and onnxruntime 1.31 has no kernel for it: an evaluator "
        "runs the function body, which casts X to stash_type (float32 by default, float64 inputs included) "
        "and takes the variance in one pass as E[x²] − E[x]², which cancels when |mean| ≫ std (NaN once it "
        "turns negative)",
        "https://github.com/onnx/onnx/blob/main/onnx/defs/nn/defs.cc",
        lambda r: within(r, op=("group_norm",), dtype=("float32", "float64"),
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
)
