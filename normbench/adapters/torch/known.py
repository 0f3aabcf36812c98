"""Known divergences of torch.nn on CPU: see ``numerics.divergence``."""

from __future__ import annotations

from ...numerics.divergence import CENTRED, Known, conditioned, params, within
from ...numerics.envelopes import (
    PROMOTED,
    group_size,
    largest_rstd,
    measured,
    one_pass_variance_in,
    uncentred_backward,
    welford_statistics,
    worst_kappa,
    wrong_gradient,
)
from ...ops.dtypes import machine_eps, overflow_threshold
from .exported import ExportedAdapter
from .layers import TorchAdapter

_EXPORTED = ExportedAdapter.every_mode()  # every opset and level


def _torch_kernels(row: dict) -> bool:
    """torch's CPU LayerNorm and GroupNorm kernels: torch's layers, and Keras's LayerNormalization on its torch
    backend, which calls F.layer_norm (keras/src/backend/torch/nn.py; normbench search found keras[torch] 2.03x
    its tolerance on layer_norm-38x2-float32-shifted:200000:1, exactly as torch)."""
    return (within(row, adapter=("torch",), op=("layer_norm", "group_norm"))
            or within(row, adapter=("keras[torch]",), op=("layer_norm",)))


KNOWN: tuple[Known, ...] = (
    Known(
        "torch-group-norm-channels-last-one-pass",
        "torch's CPU GroupNorm on a channels_last input takes its statistics in one pass (sums of x and x², "
        "var = E[x²] − E[x]²), where the contiguous kernel uses Welford (pytorch/pytorch#54921), so it "
        "cancels when |mean| ≫ std. Found by normbench search (group_norm-1x1x2x1-float32-offset1e2-"
        "channels_last-groups1). Reproducer: x = 1e4 + torch.randn(2, 8, 6, 5, dtype=torch.float64); "
        "F.group_norm(x.float().contiguous(memory_format=torch.channels_last), 2) is off the float64 result "
        "by 992, the contiguous float32 input by 1.5e-3; in float64, 6.3e-8 against 0 (torch 2.13 CPU)",
        "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/cpu/group_norm_kernel.cpp",
        # torch's channels_last memory format is 4-D: a 3-D channels_last input runs the contiguous kernel
        lambda r: within(r, adapter=("torch",), op=("group_norm",), layout=("channels_last",),
                      check=("forward_train", "grad_dx", "grad_dgamma", "jvp", "second_order_dx",
                             "second_order_dgamma")) and len(r.get("shape") or ()) == 4 and conditioned(r),
        envelope=one_pass_variance_in(PROMOTED),  # half inputs: float32 opmath
    ),
    Known(
        "torch-half-rstd-overflow",
        "torch's CPU LayerNorm, BatchNorm, GroupNorm and InstanceNorm keep the saved reciprocal standard "
        "deviation in the input dtype: in float16, 1/√(var + eps) past 65504 (a near-constant group and eps "
        "below 2.3e-10) is stored as inf, and the backward (BatchNorm and InstanceNorm also the forward) "
        "returns NaN where the exact values are finite and representable. Reproducer: x = torch.ones(1, 2, "
        "dtype=torch.float16, requires_grad=True); F.layer_norm(x, [2], eps=1e-10).backward(torch.tensor([["
        "0.25, -0.25]], dtype=torch.float16)); x.grad is [nan, nan], float64 gives [25000, -25000]; "
        "torch.ops.aten.native_layer_norm returns rstd = inf in float16 (torch 2.13 CPU; the CUDA form of "
        "this was pytorch/pytorch#41527)",
        "https://github.com/pytorch/pytorch/issues/41527",
        lambda r: within(r, adapter=("torch",), dtype=("float16",), op=CENTRED,
                      check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta", "jvp", "second_order_dx",
                             "second_order_dgamma"))
        and measured(largest_rstd, r) >= overflow_threshold("float16"),
        nonfinite=True,  # NaN only: a finite error is not this cause
    ),
    Known(
        "torch-instance-norm-channels-last-batch-one",
        "torch's InstanceNorm2d backward with a channels_last-strided upstream gradient and a batch of one "
        "returns a wrong dx (the same gradient made contiguous, or a batch of two, gives the right one): "
        "instance_norm runs batch_norm on the input viewed as (1, N·C, H, W), where N = 1 leaves the "
        "memory format ambiguous. Reproducer: x = torch.randn(1, 5, 7, 3, dtype=torch.float64).movedim(3, "
        "1).requires_grad_(); dy = torch.randn(1, 5, 7, 3, dtype=torch.float64).movedim(3, 1); m = "
        "torch.nn.InstanceNorm2d(3); torch.autograd.grad(m(x), x, dy) differs from torch.autograd.grad(m(x), "
        "x, dy.contiguous()) by 2.9 (torch 2.13 CPU)",
        "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Normalization.cpp",
        lambda r: within(r, adapter=("torch",), op=("instance_norm",), layout=("channels_last",),
                      check=("grad_dx", "grad_dgamma", "grad_dbeta")) and (r.get("shape") or [0])[0] == 1,
        envelope=wrong_gradient,
    ),
    Known(
        "torch-group-norm-jvp-channels-last",
        "torch's forward-mode derivative of group_norm raises on a channels_last input on CPU: aten::group_norm "
        "keeps a CPU input in its suggested memory format, and native_group_norm's forward-AD formula "
        "(group_norm_jvp in FunctionsManual.cpp) flattens it with .view({1, N·G, -1}), which channels-last strides "
        "cannot take (reverse mode uses reshape and works). Reproducer: x = torch.randn(2, 8, 5, 7).contiguous("
        "memory_format=torch.channels_last); torch.func.jvp(lambda a: torch.nn.functional.group_norm(a, 4), (x,), "
        "(torch.randn_like(x),)) raises RuntimeError: view size is not compatible with input tensor's size and "
        "stride (torch 2.13 CPU). torch.compile over that jvp traces the same formula and raises it as "
        "TorchRuntimeError (Dynamo's fake-tensor run: cannot view a tensor with strides (280, 1, 56, 8) as (1, 8, 70))",
        "https://github.com/pytorch/pytorch/blob/main/torch/csrc/autograd/FunctionsManual.cpp",
        lambda r: within(r, adapter=TorchAdapter.every_mode(), op=("group_norm",),
                         layout=("channels_last",), check=("jvp",))
        and len(r.get("shape") or ()) >= 4,
        raises=("RuntimeError", "TorchRuntimeError"),
    ),
    Known(
        "torch-welford-short-groups",
        "torch's CPU LayerNorm and GroupNorm take the statistics of a group shorter than one float32 vector "
        "(under 8 values) in a scalar Welford loop in float32 (RowwiseMomentsImpl in moments_utils.h; longer "
        "groups take the vectorized path). Where the values' spread is near float32's spacing at their mean, "
        "the running mean rounds so that M2 loses the deviations, down to 0, while x − mean keeps them: the "
        "output reaches ulp(mean)/(2√eps), and dx grows as rstd³. Found by normbench search (layer_norm-"
        "508x1x1x2-float32-shifted:5e+06:1). Reproducer: F.layer_norm(torch.tensor([[4999999.5, 4999999.0]]), "
        "[2]) is [158.1, 0.0] where the float64 result on the same values is [1.0, -1.0], and no output of a "
        "consistent mean and variance exceeds √(n − 1) = 1; F.group_norm of the same values as (1, 2, 1) with "
        "one group gives the same (torch 2.13 CPU). onnxruntime's LayerNormalization kernel does too "
        "(onnxruntime-layer-norm-welford-short-rows). The LayerNorm instability of pytorch/pytorch#51102 was "
        "fixed by moving to Welford; this is what that loop leaves in float32",
        "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/cpu/moments_utils.h",
        lambda r: _torch_kernels(r) and within(r, dtype=("float32",), layout=(None, "channels_first"),
                                               check=("forward_train", "forward_eval", "grad_dx", "grad_dgamma"))
        and measured(group_size, r) < 8 and conditioned(r),
        envelope=welford_statistics,
    ),
    Known(
        "torch-uncentred-backward",
        "torch's CPU LayerNorm and GroupNorm backward form dx = a·dy·γ + b·x + c from sums over x's raw values, "
        "in float32: b = (Σdyγ·mean − Σdyγx)·a³/N and c = −b·mean − Σdyγ·a/N (a = 1/√(var + eps); "
        "layer_norm_kernel.cpp, group_norm_kernel.cpp). Σdyγx rounds by ε·|mean|·Σ|dyγ|, a³ magnifies that "
        "into b, and b·x cancels against c: dx errs by ~(ε·|mean|·a)² times itself, second order in κ, where "
        "sums of dyγ·(x − mean) err by first order. Found by normbench search (layer_norm-512x1x2-float32-"
        "shifted:2000:1e-05-eps1e-11: dx −5.4e8 where float64 gives −1.8e5). Reproducer: x = torch.full((1, 64), "
        "1e6, requires_grad=True); dy = torch.randn(1, 64, generator=torch.Generator().manual_seed(0)); "
        "F.layer_norm(x, [64]).backward(dy): x.grad is all 0, float64 gives up to 1049 (−385, −394, …); the "
        "centred formula in float32 errs by 8.3e-5 (torch 2.13 CPU)",
        "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/cpu/layer_norm_kernel.cpp",
        lambda r: _torch_kernels(r) and within(r, dtype=("float32",), layout=(None, "channels_first"),
                                               check=("grad_dx",))
        and measured(worst_kappa, r) * machine_eps("float32") >= 1,  # (ε·κ)² outgrows ε·κ, the policy's term
        envelope=uncentred_backward,
    ),
    Known(
        "torch-half-batchnorm-overflow",
        "torch's CPU BatchNorm in float16 overflows to inf on channels-last (strided) inputs near the "
        "float16 limit (~6e4), where a contiguous copy of the same input does not: that kernel keeps an "
        "intermediate in half precision (PR 126525 widened var_sum on another path)",
        "https://github.com/pytorch/pytorch/pull/126525",
        lambda r: within(r, adapter=("torch",), dtype=("float16",), input=("large",), op=("batch_norm",),
                      layout=("channels_last",)),
        nonfinite=True,
    ),
    Known(
        "torch-onnx-no-rms-norm",
        "torch's TorchScript ONNX exporter (torch.onnx.export(..., dynamo=False)) has no symbolic for aten::rms_norm "
        "at any opset, so a model with torch.nn.RMSNorm does not export that way (the dynamo exporter, which needs "
        "onnxscript, writes opset 23's RMSNormalization). Reproducer: torch.onnx.export(torch.nn.RMSNorm(16), "
        "(torch.randn(8, 16),), io.BytesIO(), dynamo=False, opset_version=17) raises UnsupportedOperatorError: "
        "Exporting the operator 'aten::rms_norm' to ONNX opset version 17 is not supported (torch 2.13; also "
        "opsets 16, 18 and 20)",
        "https://github.com/pytorch/pytorch/tree/main/torch/onnx/_internal/torchscript_exporter",
        lambda r: within(r, adapter=_EXPORTED, op=("rms_norm",)),
        raises=("UnsupportedOperatorError",),
    ),
    Known(
        "torch-onnx-instance-norm-running-dynamic-batch",
        "torch's TorchScript ONNX exporter refuses InstanceNorm with track_running_stats=True when the batch axis "
        "is dynamic, even in eval mode. Reproducer: torch.onnx.export(torch.nn.InstanceNorm1d(6, "
        "track_running_stats=True).eval(), (torch.randn(4, 6, 10),), io.BytesIO(), dynamo=False, opset_version=17, "
        "dynamic_axes={'x': {0: 'n'}}, input_names=['x']) raises SymbolicValueError: Unsupported: ONNX export of "
        "instance_norm training for unknown batch size (torch 2.13)",
        "https://github.com/pytorch/pytorch/tree/main/torch/onnx/_internal/torchscript_exporter",
        lambda r: within(r, adapter=_EXPORTED, op=("instance_norm",)) and bool(params(r).get("running_stats")),
        raises=("SymbolicValueError",),
    ),
)
