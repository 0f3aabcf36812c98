"""ONNX BatchNormalization (opset 15) and LayerNormalization (opset 17) on onnxruntime's CPU.

This checks what an exported model computes. Each layer builds one-node onnx.helper graphs
with γ, β and running statistics as graph *inputs*, so set_params/set_running only swap
numpy arrays. ONNX BatchNormalization is channels-first: a channels_last input is moved with
np.moveaxis outside the session, and back. ONNX's momentum is 1 - normbench's; it stores
population (biased) running variance. ONNX LayerNormalization has no non-affine form, so
affine=False feeds Scale=ones and omits B, as exporters do. Arrays travel through IOBinding
because InferenceSession.run cannot take ml_dtypes bfloat16; those go in as raw uint16 bits.
ONNX float attributes are float32, so epsilon and momentum reach the kernel rounded to float32:
at float64 that shows (momentum 0.1 stores 0.55000013 for a batch mean of 5.5); passed through.
"""

from __future__ import annotations

import os

import numpy as np

from ..dtypes import resolve
from ..spec import NormSpec
from .base import Adapter, Layer, Timed, Unsupported

_ONNX_TYPE = {"float64": "DOUBLE", "float32": "FLOAT", "float16": "FLOAT16", "bfloat16": "BFLOAT16"}


def _session(spec: NormSpec, dtype: str, outputs: list[str], training_mode: int | None):
    """An InferenceSession for one norm node; training_mode None means LayerNormalization."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = getattr(TensorProto, _ONNX_TYPE[dtype])
    if training_mode is None:
        inputs = ["X", "Scale", "B"] if spec.affine else ["X", "Scale"]
        node = helper.make_node("LayerNormalization", inputs, outputs,
                                axis=-spec.normalized_ndim, epsilon=spec.eps)
        opset = 17
    else:
        inputs = ["X", "Scale", "B", "mean", "var"]
        node = helper.make_node("BatchNormalization", inputs, outputs, epsilon=spec.eps,
                                momentum=1.0 - spec.momentum, training_mode=training_mode)
        opset = 15
    graph = helper.make_graph(
        [node], spec.op,
        [helper.make_tensor_value_info(n, elem, None) for n in inputs],
        [helper.make_tensor_value_info(n, elem, None) for n in outputs],
    )
    # onnx 1.23 writes an IR version newer than onnxruntime 1.31 loads.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    if threads := os.environ.get("NORMBENCH_THREADS"):
        opts.intra_op_num_threads = opts.inter_op_num_threads = int(threads)
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _ortvalue(a: np.ndarray):
    import onnxruntime as ort
    from onnx import TensorProto

    if a.dtype == resolve("bfloat16"):
        bits = a.view(np.uint16)
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, TensorProto.BFLOAT16)
    return ort.OrtValue.ortvalue_from_numpy(a)


class OnnxRuntimeLayer(Layer):
    def __init__(self, spec, shape, dtype):
        super().__init__(spec, shape, dtype)
        self._np = resolve(dtype)
        self._channel = spec.feature_axis(len(shape)) if spec.op == "batch_norm" else 1
        if spec.op == "layer_norm":
            self._sessions = {False: _session(spec, dtype, ["Y"], None)}
            self._sessions[True] = self._sessions[False]
        else:
            self._sessions = {True: _session(spec, dtype, ["Y", "running_mean", "running_var"], 1),
                              False: _session(spec, dtype, ["Y"], 0)}

    def _array(self, a) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=self._np)

    def _to_native(self, x: np.ndarray):
        if self.spec.op == "batch_norm":
            x = np.moveaxis(x, self._channel, 1)
        return _ortvalue(self._array(x))

    def _bind(self, xv, training: bool):
        """(session, IOBinding, outputs): X and the parameters bound, outputs preallocated as
        numpy arrays that each run writes into. The binding holds its OrtValues, and they the
        numpy buffers, so it stays valid for as many runs as a benchmark makes."""
        spec, pshape = self.spec, self.spec.param_shape(self.shape)
        scale = self.gamma if spec.affine else np.ones(pshape)
        feeds = {"Scale": scale}
        if spec.affine or spec.op == "batch_norm":
            feeds["B"] = self.beta if spec.affine else np.zeros(pshape)
        if spec.op == "batch_norm":
            feeds.update(mean=self.running_mean, var=self.running_var)
        sess = self._sessions[training]
        io = sess.io_binding()
        io.bind_ortvalue_input("X", xv)
        for name, a in feeds.items():
            io.bind_ortvalue_input(name, _ortvalue(self._array(a)))
        names = [o.name for o in sess.get_outputs()]
        outs = [np.empty(xv.shape() if n == "Y" else pshape, self._np) for n in names]
        for name, a in zip(names, outs, strict=True):
            io.bind_ortvalue_output(name, _ortvalue(a))
        return sess, io, outs

    def _call(self, xv, training: bool) -> list[np.ndarray]:
        """Run the session once on a native input."""
        sess, io, outs = self._bind(xv, training)
        sess.run_with_iobinding(io)
        return outs

    def forward(self, x: np.ndarray, training: bool, mask: np.ndarray | None = None) -> np.ndarray:
        if mask is not None:
            raise Unsupported("ONNX BatchNormalization takes no mask")
        y, *running = self._call(self._to_native(x), training)
        if running:
            self.running_mean, self.running_var = running
        return np.moveaxis(y, 1, self._channel) if self.spec.op == "batch_norm" else y

    # vjp stays NotImplementedError: InferenceSession computes no gradients; that would take
    # onnxruntime-training (its training artifacts), a different API path.

    def timed(self, x, mode, dy=None):
        """Binding once here leaves ``call`` just the run: no feeds dict, conversions or output
        allocation per call. Training-mode runs feed the same running statistics each time (they
        are outputs, not state), so every call is the same work. ORT takes any shape without
        recompiling, so there are no traces to count."""
        if mode == "forward_backward":
            raise Unsupported("onnxruntime: an InferenceSession computes no gradients "
                              "(that takes onnxruntime-training, a different API path)")
        sess, io, _ = self._bind(self._to_native(x), mode == "train")
        return Timed(lambda: sess.run_with_iobinding(io),
                     "none needed: run_with_iobinding on the CPU provider returns after the outputs are written")


class OnnxRuntimeAdapter(Adapter):
    name = "onnxruntime"
    layer = OnnxRuntimeLayer
    requires = ("onnx", "onnxruntime")
    extra = "onnx"
    version_of = "onnxruntime"
    momentum_convention = "old"
    features = frozenset({"eval", "running_stats"})

    def unsupported(
        self, spec: NormSpec, shape: tuple[int, ...], dtype: str, features: tuple[str, ...] = ()
    ) -> str | None:
        reason = super().unsupported(spec, shape, dtype, features)
        if reason is None and spec.op == "batch_norm" and dtype == "bfloat16":
            return "onnxruntime's CPU provider has no bfloat16 BatchNormalization kernel"
        return reason

    def defaults(self, op):
        """The operator schema's attribute defaults (float32, as all ONNX float attributes)."""
        from onnx import defs

        if op == "layer_norm":
            schema = defs.get_schema("LayerNormalization", 17)
            return {"eps": schema.attributes["epsilon"].default_value.f}
        attrs = defs.get_schema("BatchNormalization", 15).attributes
        return {"eps": attrs["epsilon"].default_value.f, "momentum": attrs["momentum"].default_value.f}
