"""The torch → ONNX → onnxruntime path: a torch.nn layer exported with torch's own exporter, run in an
onnxruntime InferenceSession, as users deploy a torch model.

The layer is the ``torch`` adapter's module with the case's γ, β and running statistics; each call
exports it in eval mode (``torch.onnx.export(module.eval(), dynamo=False, opset_version=…)``: the
TorchScript exporter; the dynamo exporter needs onnxscript, which normbench does not install) and runs
the graph on onnxruntime's CPU provider. What the exporter writes depends on the opset: LayerNorm is
one LayerNormalization node from opset 17 and a decomposition (ReduceMean, Sub, Pow, Sqrt, Div) below
it, which onnxruntime's LayerNormFusion rebuilds into one kernel at ORT_ENABLE_EXTENDED and above;
GroupNorm is InstanceNormalization between Reshapes; BatchNorm is BatchNormalization with the running
statistics as initializers; the TorchScript exporter has no RMSNorm (``aten::rms_norm``) at any opset,
which is recorded as the error it raises. Each mode is one opset at one optimization level.

An exported graph is an inference graph: training-mode BatchNorm (and InstanceNorm with running
statistics) is a skip, and there are no gradients. LayerNorm, GroupNorm and InstanceNorm without running
statistics compute the same in both modes. float32 and float16 run (onnxruntime's InstanceNormalization,
GroupNorm's exported form, has no double kernel). Channel ops are exported channels-first, every axis
but the channels dynamic (LayerNorm's: all but the normalized ones), as users export for any batch and
length; a channels_last input is moved outside the session, and back.
"""

from __future__ import annotations

import io
import os
import warnings

import numpy as np

from ...ops.dtypes import resolve
from ..base import Adapter, Mode, Timed, Unsupported, builder
from .native import TorchLayer, _batch_norm, _group_norm, _instance_norm, _layer_norm, _rms_norm

_EXPORT = "torch.onnx.export(module.eval(), dynamo=False, opset_version={opset})"
_LEVELS = {"all": "ORT_ENABLE_ALL", "disabled": "ORT_DISABLE_ALL"}
# mode name -> (opset, optimization level)
_MODES = {"opset17": (17, "all"), "opset17_disabled": (17, "disabled"), "opset16": (16, "all"),
          "opset16_disabled": (16, "disabled")}
_WHAT = {17: "LayerNorm as one LayerNormalization node",
         16: "LayerNorm decomposed (ReduceMean, Sub, Pow, Sqrt, Div), fused back by onnxruntime's LayerNormFusion "
             "at ORT_ENABLE_ALL"}


def _mode(name: str) -> Mode:
    opset, level = _MODES[name]
    return Mode(name, f"{_EXPORT.format(opset=opset)} ({_WHAT[opset]}); onnxruntime "
                      f"graph_optimization_level = {_LEVELS[level]}")


class ExportedLayer(TorchLayer):
    def __init__(self, spec, shape, dtype, native, mode=None):
        super().__init__(spec, shape, dtype, native)  # the eager module: what is exported
        self.mode = mode
        self._opset, self._level = _MODES[(mode or ExportedAdapter.modes[0]).name]
        self._session = None  # exported on first use, after the parameters are loaded

    def set_params(self, gamma, beta):
        super().set_params(gamma, beta)
        self._session = None

    def set_running(self, mean, var):
        super().set_running(mean, var)
        self._session = None

    def _graph(self):
        """The module exported and loaded in an InferenceSession, once per set of parameters."""
        if self._session is None:
            import onnxruntime as ort
            import torch

            example = torch.zeros(self._channels_first(np.zeros(self.shape)).shape, dtype=getattr(torch, self.dtype))
            # every axis but the normalized ones (LayerNorm, RMSNorm) or the channels is dynamic, as users
            # export a model for any batch and sequence length
            fixed = (set(range(example.ndim - self.spec.normalized_ndim, example.ndim))
                     if not self.spec.kind.channel_axis else {1})
            axes = {a: f"d{a}" for a in range(example.ndim) if a not in fixed}
            model = io.BytesIO()
            with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice, on every export
                warnings.simplefilter("ignore")
                torch.onnx.export(self.module.eval(), (example,), model, dynamo=False, opset_version=self._opset,
                                  input_names=["x"], output_names=["y"], dynamic_axes={"x": axes, "y": axes})
            opts = ort.SessionOptions()
            opts.log_severity_level = 3
            opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, _LEVELS[self._level])
            if threads := os.environ.get("NORMBENCH_THREADS"):
                opts.intra_op_num_threads = opts.inter_op_num_threads = int(threads)
            self._model = model.getvalue()  # the graph as exported (before onnxruntime's optimizations)
            self._session = ort.InferenceSession(self._model, opts, providers=["CPUExecutionProvider"])
        return self._session

    def _channels_first(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.moveaxis(x, self._channel, 1) if self.spec.kind.channel_axis else x)

    def _inference(self, training: bool) -> None:
        if training and self.spec.has_running_stats:
            raise Unsupported("an exported graph is an inference graph: it normalizes with the running statistics "
                              "and updates none (torch.onnx.export of module.eval())")

    def forward(self, x, training, mask=None):
        if mask is not None:
            raise Unsupported("the exported torch layers take no mask")
        self._inference(training)
        y = self._graph().run(None, {"x": self._channels_first(np.asarray(x, resolve(self.dtype)))})[0]
        return np.moveaxis(y, 1, self._channel) if self.spec.kind.channel_axis else y

    def timed(self, x, mode, dy=None):
        if mode == "forward_backward":
            raise Unsupported("an exported inference graph computes no gradients")
        self._inference(mode == "train")
        sess, feed = self._graph(), {"x": self._channels_first(np.asarray(x, resolve(self.dtype)))}
        return Timed(lambda: sess.run(None, feed),
                     "none needed: InferenceSession.run on the CPU provider returns the computed outputs")


class ExportedAdapter(Adapter):
    name = "torch.onnx"
    builders = {op: builder(ExportedLayer, native) for op, native in (
        ("layer_norm", _layer_norm), ("rms_norm", _rms_norm), ("batch_norm", _batch_norm), ("group_norm", _group_norm),
        ("instance_norm", _instance_norm))}
    requires = ("torch", "onnx", "onnxruntime")
    extra = "onnx"
    version_of = "torch"
    dtypes = frozenset({"float32", "float16"})
    features = frozenset({"eval", "running_stats"})
    running_var = "unbiased"
    modes = tuple(_mode(name) for name in _MODES)

    def install_hint(self) -> str:
        return "pip install 'normbench[torch,onnx]'"
