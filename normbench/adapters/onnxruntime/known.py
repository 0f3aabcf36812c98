"""Known divergences of ONNX Runtime and the ONNX operator specs: see ``numerics.divergence``."""

from __future__ import annotations

from ...numerics.divergence import Known, within
from ...numerics.envelopes import computes_in, one_pass_variance_in
from .layers import OnnxRuntimeAdapter

# one-node graphs: no optimization level has anything to fuse or rewrite, so every level runs the same kernels
_ORT = OnnxRuntimeAdapter.every_mode()

KNOWN: tuple[Known, ...] = (
    Known(
        "onnxruntime-group-norm-function",
        "onnxruntime 1.31 has no GroupNormalization-21 kernel: it inlines the ONNX function body, which "
        "casts X to stash_type (float32 by default, float64 inputs included) and takes the variance in "
        "one pass as E[x²] − E[x]², which cancels when |mean| ≫ std (NaN once it turns negative)",
        "https://github.com/onnx/onnx/blob/main/onnx/defs/nn/defs.cc",
        lambda r: within(r, adapter=_ORT, op=("group_norm",), dtype=("float32", "float64"),
                      check=("forward_train", "scale_shift_invariance")),
        envelope=one_pass_variance_in("float32"), nonfinite=True,
    ),
    Known(
        "onnx-float32-attributes",
        "ONNX float attributes are 32-bit: epsilon and momentum reach a float64 kernel rounded to "
        "float32 (momentum 0.9 becomes 0.89999998)",
        "https://github.com/onnx/onnx/issues/3261",
        lambda r: within(r, adapter=_ORT, dtype=("float64",),
                      check=("forward_train", "forward_eval", "running_mean", "running_var")),
        envelope=computes_in("float32"),
    ),
)
