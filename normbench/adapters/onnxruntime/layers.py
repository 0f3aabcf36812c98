"""ONNX LayerNormalization (opset 17), RMSNormalization (23), BatchNormalization (15),
GroupNormalization (21) and InstanceNormalization (6) on onnxruntime's CPU provider.

This checks what an exported model computes. Each layer builds a one-node onnx.helper graph
with γ, β and running statistics as graph *inputs*, so set_params/set_running only swap numpy
arrays; the per-op differences are the data in ``_NODES``. The channel ops are channels-first:
a channels_last input is moved with np.moveaxis outside the session, and back. No ONNX norm has
a non-affine form, so affine=False feeds scale=ones and bias=zeros (LayerNormalization omits its
optional B), as exporters do. ONNX's momentum is 1 - normbench's; BatchNormalization stores
population (biased) running variance. InstanceNormalization keeps no running statistics, so
running_stats=True is a skip. Arrays travel through IOBinding because InferenceSession.run
cannot take ml_dtypes bfloat16; those go in as raw uint16 bits.

Passed through: ONNX float attributes are float32, so epsilon and momentum reach a float64 kernel
rounded (momentum 0.1 stores 0.55000013 for a batch mean of 5.5). onnxruntime 1.31 has no
GroupNormalization kernel: it inlines the ONNX function body, which computes in stash_type
(float32 by default, float64 included) with one-pass variance E[x²] − E[x]². InstanceNormalization
has a float kernel only; float16 runs through Casts onnxruntime inserts. Schema defaults (the
``defaults`` facts): epsilon 1e-5 everywhere, BatchNormalization momentum 0.9, stash_type 1 for
LayerNormalization, RMSNormalization and GroupNormalization, num_groups required.

Mixed precision: only BatchNormalization-15 types its parameters apart from X (T, T1, T2), and its
schema computes the statistics in float; the graph takes X and Y in float16 with scale, B and the
running statistics in float32. onnxruntime 1.31's CPU provider has no kernel for it with bfloat16 X.
The other ops have no float32-parameter graph around half X (``_Node.no_mixed`` says why, as measured).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ... import ops
from ...ops.dtypes import resolve
from ...ops.spec import NormSpec
from ..base import Adapter, Layer, MixedPath, Mode, Timed, Unsupported, builder

_ONNX_TYPE = {"float64": "DOUBLE", "float32": "FLOAT", "float16": "FLOAT16", "bfloat16": "BFLOAT16"}


@dataclass(frozen=True)
class _Node:
    """One ONNX norm operator: what differs between the ops is all here."""

    type: str
    opset: int
    bias: str | None  # "required", "optional" (omitted when not affine) or None (no bias input)
    attrs: Callable[[NormSpec], dict[str, Any]] = lambda spec: {}  # besides epsilon
    running: bool = False  # takes running mean/var inputs, returns them in training_mode=1
    no_dtype: Mapping[str, str] = field(default_factory=dict)  # dtype -> why the CPU provider cannot run it
    no_mixed: Mapping[str, str] = field(default_factory=dict)  # half dtype -> why it has no mixed-precision graph


def _halves(why: str) -> dict[str, str]:
    return {"bfloat16": why, "float16": why}


_NODES: dict[str, _Node] = {
    "layer_norm": _Node("LayerNormalization", 17, "optional", lambda s: {"axis": -s.normalized_ndim},
                        no_mixed=_halves(
        "LayerNormalization-17 types Scale and B as X (T; only Mean and InvStdDev follow stash_type), so no "
        "graph holds float32 parameters; its stash_type=1 float32 statistics with half parameters are the "
        "plain half case")),
    "rms_norm": _Node("RMSNormalization", 23, None, lambda s: {"axis": -s.normalized_ndim}, no_dtype={
        "bfloat16": "onnxruntime's CPU provider registers RMSNormalization for float, double and float16 "
                    "only; bfloat16 falls back to the ONNX function body, whose Mul has no bfloat16 kernel"},
                      no_mixed=_halves(
        "RMSNormalization-23 types scale and Y apart from X (V), but its function body casts Normalized back "
        "to X's type before Mul(Normalized, scale), which then binds two types; onnxruntime 1.31's CPU kernel "
        "takes T = V only and inlining the body fails: Type parameter (T) of Optype (Mul) bound to different "
        "types")),
    "batch_norm": _Node("BatchNormalization", 15, "required", lambda s: {"momentum": 1.0 - s.momentum},
                        running=True, no_dtype={
        "bfloat16": "onnxruntime's CPU provider has no bfloat16 BatchNormalization kernel"}, no_mixed={
        "bfloat16": "onnxruntime's CPU provider has no BatchNormalization-15 kernel for bfloat16 X with float "
                    "scale, B, mean and var (NOT_IMPLEMENTED)"}),
    "group_norm": _Node("GroupNormalization", 21, "required", lambda s: {"num_groups": s.groups}, no_dtype={
        "bfloat16": "onnxruntime's CPU provider has no GroupNormalization kernel and the ONNX function "
                    "body it inlines needs bfloat16 Mul/ReduceMean kernels it lacks"}, no_mixed=_halves(
        "GroupNormalization-21 types scale and bias as X (T), so no graph holds float32 parameters; its "
        "stash_type=1 float32 statistics with half parameters are the plain half case")),
    "instance_norm": _Node("InstanceNormalization", 6, "required", no_dtype={
        "float64": "onnxruntime's CPU provider registers InstanceNormalization for float only "
                   "(float16 runs through inserted Casts; nothing does double)",
        "bfloat16": "ONNX InstanceNormalization-6 does not take bfloat16 (opset 22 does, but "
                    "onnxruntime's CPU provider has no bfloat16 kernel for it)"}, no_mixed=_halves(
        "InstanceNormalization types input, scale and B alike (T) and has no stash_type")),
}


# Graph optimization levels (SessionOptions.graph_optimization_level): onnxruntime's default is all.
LEVELS = {"all": "ORT_ENABLE_ALL", "extended": "ORT_ENABLE_EXTENDED", "basic": "ORT_ENABLE_BASIC",
          "disabled": "ORT_DISABLE_ALL"}


def _session(node: _Node, spec: NormSpec, dtype: str, training: bool, level: str = "all"):
    """An InferenceSession for one norm node at graph optimization ``level``; in training mode an op
    with running statistics also returns the updated ones."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    elem = getattr(TensorProto, _ONNX_TYPE[dtype])
    # on the mixed path everything but X and Y (scale, B, running statistics) is float32
    other = TensorProto.FLOAT if spec.precision == "mixed" else elem
    inputs = ["X", "scale"]
    if node.bias == "required" or (node.bias == "optional" and spec.affine):
        inputs.append("bias")
    attrs = {"epsilon": spec.eps, **node.attrs(spec)}
    outputs = ["Y"]
    if node.running:
        inputs += ["mean", "var"]
        attrs["training_mode"] = int(training)
        outputs += ["running_mean", "running_var"] if training else []
    graph = helper.make_graph(
        [helper.make_node(node.type, inputs, outputs, **attrs)], spec.op,
        [helper.make_tensor_value_info(n, elem if n == "X" else other, None) for n in inputs],
        [helper.make_tensor_value_info(n, elem if n == "Y" else other, None) for n in outputs],
    )
    # onnx 1.23 writes an IR version newer than onnxruntime 1.31 loads: take the oldest the opset allows.
    opset = [helper.make_opsetid("", node.opset)]
    model = helper.make_model(graph, opset_imports=opset, ir_version=helper.find_min_ir_version_for(opset))
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = getattr(ort.GraphOptimizationLevel, LEVELS[level])
    if threads := os.environ.get("NORMBENCH_THREADS"):
        opts.intra_op_num_threads = opts.inter_op_num_threads = int(threads)
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _sessions(node: _Node, spec: NormSpec, shape: tuple[int, ...], dtype: str, level: str = "all") -> dict[bool, Any]:
    """The native object of every op: its session per training flag (one, shared, for an op
    that computes the same in both)."""
    if not node.running:
        sess = _session(node, spec, dtype, False, level)
        return {False: sess, True: sess}
    return {training: _session(node, spec, dtype, training, level) for training in (False, True)}


def _ortvalue(a: np.ndarray):
    import onnxruntime as ort
    from onnx import TensorProto

    if a.dtype == resolve("bfloat16"):
        bits = a.view(np.uint16)
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(bits, TensorProto.BFLOAT16)
    return ort.OrtValue.ortvalue_from_numpy(a)


class OnnxRuntimeLayer(Layer):
    def __init__(self, spec, shape, dtype, native, mode=None):
        super().__init__(spec, shape, dtype, native, mode)
        self._np = resolve(dtype)
        self._params = resolve("float32" if spec.precision == "mixed" else dtype)  # γ, β, running statistics
        # ONNX channel ops take the channels on axis 1; token ops need no move.
        self._channel = spec.feature_axis(len(shape)) if spec.kind.channel_axis else None
        self._sessions = native(spec, self.shape, dtype, "all" if mode is None else mode.name)

    def _array(self, a, dtype=None) -> np.ndarray:
        return np.ascontiguousarray(a, dtype=dtype or self._np)

    def _to_native(self, x: np.ndarray):
        if self._channel is not None:
            x = np.moveaxis(x, self._channel, 1)
        return _ortvalue(self._array(x))

    def _bind(self, xv, training: bool):
        """(session, IOBinding, outputs): X and the parameters bound, outputs preallocated as
        numpy arrays that each run writes into. The binding holds its OrtValues, and they the
        numpy buffers, so it stays valid for as many runs as a benchmark makes."""
        spec, pshape = self.spec, self.spec.param_shape(self.shape)
        feeds = {"scale": self.gamma if spec.affine else np.ones(pshape),
                 "bias": self.beta if spec.affine else np.zeros(pshape),
                 "mean": self.running_mean, "var": self.running_var}
        sess = self._sessions[training]
        io = sess.io_binding()
        io.bind_ortvalue_input("X", xv)
        for inp in sess.get_inputs()[1:]:
            io.bind_ortvalue_input(inp.name, _ortvalue(self._array(feeds[inp.name], self._params)))
        names = [o.name for o in sess.get_outputs()]
        outs = [np.empty(xv.shape(), self._np) if n == "Y" else np.empty(pshape, self._params) for n in names]
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
            raise Unsupported("ONNX normalization operators take no mask")
        y, *running = self._call(self._to_native(x), training)
        if running:
            self.running_mean, self.running_var = running
        return y if self._channel is None else np.moveaxis(y, 1, self._channel)

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
    builders = {op: builder(OnnxRuntimeLayer, functools.partial(_sessions, node)) for op, node in _NODES.items()}
    requires = ("onnx", "onnxruntime")
    extra = "onnx"
    version_of = "onnxruntime"
    momentum_convention = "old"
    running_var = "biased"  # the BatchNormalization schema: population variance
    features = frozenset({"eval", "running_stats"})
    semantics = ("onnx",)  # one-node graphs, run as the operator specs say: their known divergences are its
    # every level, the default first: LayerNormFusion and its kin fire from extended up
    modes = tuple(Mode(level, f"SessionOptions.graph_optimization_level = {name}", compiled=False)
                  for level, name in LEVELS.items())

    def unsupported(
        self, spec: NormSpec, shape: tuple[int, ...], dtype: str, features: tuple[str, ...] = ()
    ) -> str | None:
        if spec.precision == "mixed" and spec.op in _NODES and dtype in _NODES[spec.op].no_mixed:
            return f"ONNX has no mixed-precision path for {spec.op} on {dtype}: {_NODES[spec.op].no_mixed[dtype]}"
        reason = super().unsupported(spec, shape, dtype, features)
        if reason is not None:
            return reason
        node = _NODES[spec.op]
        if spec.has_running_stats and not node.running:
            return f"ONNX {node.type} keeps no running statistics (no momentum, no running mean/var)"
        return node.no_dtype.get(dtype)

    def mixed_precision(self, spec, dtype):
        """X and Y in the half dtype around float32 parameters and statistics, where the schema types
        them apart and a kernel runs it; the statistics in float32, as BatchNormalization-15 says."""
        node = _NODES.get(spec.op)
        if node is None or dtype not in ("bfloat16", "float16") or dtype in node.no_mixed:
            return None
        return MixedPath(f"{node.type}-{node.opset}: X, Y in {dtype}; scale, B, mean, var in float32 (T, T1, T2)",
                         "float32", f"https://onnx.ai/onnx/operators/onnx__{node.type}.html")

    def defaults(self, op):
        """The operator schema's attribute defaults (float32, as all ONNX float attributes).
        Every ONNX norm takes scale (and bias) inputs: affine, with no way to switch it off."""
        from onnx import defs

        node = _NODES[op]
        attrs = defs.get_schema(node.type, node.opset).attributes
        out: dict[str, Any] = {"eps": attrs["epsilon"].default_value.f}
        if "momentum" in attrs:
            out["momentum"] = attrs["momentum"].default_value.f
        out["affine"] = True
        if "stash_type" in attrs:
            out["stash_type"] = attrs["stash_type"].default_value.i
        if "num_groups" in attrs:
            out["num_groups"] = "required"
        if ops.get(op).running_stats != "never":
            out["track_running_stats"] = node.running
        out["operator"] = f"{node.type}-{node.opset}"
        return out
