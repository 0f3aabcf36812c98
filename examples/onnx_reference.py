"""ONNX's own Python reference evaluator (onnx.reference.ReferenceEvaluator) as a third-party adapter: a
one-node graph per op, run as the operator specs define them. It declares ONNX semantics, so the known
divergences of the specs (float32 attributes, GroupNormalization-21's one-pass function body) apply to
it within their envelopes, and anything beyond them is its own.

    normbench check-adapter examples.onnx_reference:OnnxReference
    normbench verify --adapters examples.onnx_reference:OnnxReference
"""

import numpy as np

from normbench import Adapter, Layer, Unsupported

OPSET = 23  # RMSNormalization is new in 23; the other four ops keep their latest versions there
ELEM = {"float32": 1, "float16": 10, "float64": 11}  # onnx.TensorProto element types


class ReferenceNode(Layer):
    """One ONNX node in a one-node model; training-mode BatchNorm returns its running statistics too."""

    def __init__(self, spec, shape, dtype, native=None, mode=None):
        super().__init__(spec, shape, dtype, native, mode)
        if spec.op == "instance_norm" and spec.running_stats:
            raise Unsupported("ONNX InstanceNormalization keeps no running statistics")
        self._models = {}

    def _model(self, training: bool):
        from onnx import helper

        key = training and self.spec.op == "batch_norm"
        if key in self._models:
            return self._models[key]
        spec, elem = self.spec, ELEM[self.dtype]
        ins, attrs, outs = ["X", "scale"], {"epsilon": spec.eps}, ["Y"]
        if spec.op in ("layer_norm", "rms_norm"):
            attrs["axis"] = -spec.normalized_ndim
            op = "LayerNormalization" if spec.op == "layer_norm" else "RMSNormalization"
            ins += ["B"] if spec.op == "layer_norm" else []
        elif spec.op == "batch_norm":
            op, ins = "BatchNormalization", ins + ["B", "mean", "var"]
            attrs.update(momentum=1 - spec.momentum, training_mode=int(key))
            outs += ["running_mean", "running_var"] if key else []
        elif spec.op == "group_norm":
            op, ins = "GroupNormalization", ins + ["B"]
            attrs["num_groups"] = spec.groups
        else:
            op, ins = "InstanceNormalization", ins + ["B"]
        node = helper.make_node(op, ins, outs, **attrs)
        inputs = [helper.make_tensor_value_info(n, elem, None) for n in ins]
        outputs = [helper.make_tensor_value_info(n, elem, None) for n in outs]
        graph = helper.make_graph([node], op, inputs, outputs)
        self._models[key] = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
        return self._models[key]

    def forward(self, x, training, mask=None):
        from onnx.reference import ReferenceEvaluator

        feeds = {"X": x, "scale": self.gamma, "B": self.beta, "mean": self.running_mean, "var": self.running_var}
        run = ReferenceEvaluator(self._model(training))
        names = [i.name for i in run.proto_.graph.input]
        got = run.run(None, {n: np.asarray(feeds[n]) for n in names})
        if training and self.spec.op == "batch_norm":
            self.running_mean, self.running_var = got[1], got[2]
        elif not training and self.spec.op == "batch_norm":
            pass  # inference reads the running statistics and updates none
        return np.asarray(got[0])


class OnnxReference(Adapter):
    name = "onnx-reference"
    builders = dict.fromkeys(("layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm"),
                             ReferenceNode)
    requires = ("onnx",)
    dtypes = frozenset({"float32", "float64", "float16"})
    layouts = frozenset({"channels_first"})  # ONNX's ops take channels on axis 1
    features = frozenset({"eval", "running_stats"})
    running_var = "biased"  # BatchNormalization-15: the population variance
    momentum_convention = "old"  # running = momentum · running + (1 − momentum) · batch
    semantics = ("onnx",)
