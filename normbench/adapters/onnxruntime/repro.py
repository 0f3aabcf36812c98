"""ONNX norm operators as standalone source (``adapters.repro``): the one-node graph ``layers.py`` builds (its
``_NODES`` data), run in an onnxruntime InferenceSession at the mode's graph optimization level, its inputs bound
through IOBinding as the adapter binds them (bfloat16 as raw bits)."""

from __future__ import annotations

from ..repro import Cannot, Source, Target, klass, method, py
from .layers import _NODES, _ONNX_TYPE, LEVELS

ADAPTERS = ("onnxruntime",)


def layer(target: Target) -> Source:
    level = target.mode or next(iter(LEVELS))
    if level not in LEVELS:
        raise Cannot(f"onnxruntime has no mode {level!r}")
    spec, dt, pdt, ch, needs = target.spec, target.dtype, target.params_dtype, target.channel, target.needs
    node = _NODES[spec.op]
    if spec.has_running_stats and not node.running:
        raise Cannot(f"ONNX {node.type} keeps no running statistics")
    inputs = ["X", "scale"]
    if node.bias == "required" or (node.bias == "optional" and spec.affine):
        inputs.append("bias")
    attrs = {"epsilon": float(spec.eps), **node.attrs(spec)}
    if node.running:
        inputs += ["mean", "var"]
    pshape = spec.param_shape(target.shape)
    feeds = {"scale": "gamma" if spec.affine else f"np.ones({py(pshape)})",
             "bias": "beta" if spec.affine else f"np.zeros({py(pshape)})",
             "mean": "self.running_mean", "var": "self.running_var"}
    elem, other = _ONNX_TYPE[dt], _ONNX_TYPE[pdt]
    move = ch is not None and ch != 1
    bf16 = "bfloat16" in (dt, pdt)
    outputs = ('attrs["training_mode"] = int(training)\n'
               'outputs = ["Y", "running_mean", "running_var"] if training else ["Y"]') if node.running else \
        'outputs = ["Y"]'
    header = f'''
        class Layer:
            """ONNX {node.type}-{node.opset} as normbench's onnxruntime adapter builds it: a one-node graph in an
            InferenceSession (graph_optimization_level {LEVELS[level]}), channels first."""
        '''
    code = klass(
        header,
        method(True, f"""
            def __init__(self):
                self.running_mean, self.running_var = running_mean, running_var
                self.sessions = {{t: self.session(t) for t in {'(False, True)' if node.running else '(False,)'}}}

            def session(self, training):
                inputs = {inputs!r}
                attrs = {{{', '.join(f'{k!r}: {py(v)}' for k, v in attrs.items())}}}
                @@outputs@@
                # X and Y in the tested dtype; scale, B and running statistics in {pdt}
                graph = helper.make_graph(
                    [helper.make_node({node.type!r}, inputs, outputs, **attrs)], {spec.op!r},
                    [helper.make_tensor_value_info(n, TensorProto.{elem} if n == "X" else
                                                   TensorProto.{other}, None) for n in inputs],
                    [helper.make_tensor_value_info(n, TensorProto.{elem} if n == "Y" else TensorProto.{other}, None)
                     for n in outputs])
                opset = [helper.make_opsetid("", {node.opset})]
                model = helper.make_model(graph, opset_imports=opset, ir_version=helper.find_min_ir_version_for(opset))
                opts = ort.SessionOptions()
                opts.log_severity_level = 3
                opts.graph_optimization_level = ort.GraphOptimizationLevel.{LEVELS[level]}
                return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
            """, outputs=outputs),
        method("forward" in needs, f"""
            def forward(self, x, training, mask=None):
                sess = self.sessions[{'training' if node.running else 'False'}]
                x = {f'np.moveaxis(x, {ch}, 1)' if move else 'x'}
                feeds = {{{', '.join(f'{k!r}: {v}' for k, v in feeds.items())}}}
                io = sess.io_binding()
                io.bind_ortvalue_input("X", ortvalue(np.ascontiguousarray(x, {_np(dt)})))
                for inp in sess.get_inputs()[1:]:
                    io.bind_ortvalue_input(inp.name, ortvalue(np.ascontiguousarray(feeds[inp.name], {_np(pdt)})))
                names = [o.name for o in sess.get_outputs()]
                outs = [np.empty(x.shape, {_np(dt)}) if n == "Y" else np.empty({py(pshape)}, {_np(pdt)})
                        for n in names]
                for name, a in zip(names, outs):
                    io.bind_ortvalue_output(name, ortvalue(a))
                sess.run_with_iobinding(io)
                y, *running = outs
                if running:
                    self.running_mean, self.running_var = running
                return {f'np.moveaxis(y, 1, {ch})' if move else 'y'}
            """),
        method("running" in needs, """
            def running(self):
                return self.running_mean, self.running_var
            """),
    )
    helpers = '''
def ortvalue(a):
    """An OrtValue over a numpy array (bfloat16 as its raw bits: InferenceSession.run takes no ml_dtypes)."""
    if a.dtype == ml_dtypes.bfloat16:
        return ort.OrtValue.ortvalue_from_numpy_with_onnx_type(a.view(np.uint16), TensorProto.BFLOAT16)
    return ort.OrtValue.ortvalue_from_numpy(a)
''' if bf16 else '''
def ortvalue(a):
    return ort.OrtValue.ortvalue_from_numpy(a)
'''
    imports = (*(("import ml_dtypes",) if bf16 else ()), "import onnxruntime as ort",
               "from onnx import TensorProto, helper")
    return Source(imports, helpers + "\n\n" + code, install="onnx onnxruntime")


def _np(dtype: str) -> str:
    return "ml_dtypes.bfloat16" if dtype == "bfloat16" else f"np.{dtype}"
