"""torch layers as standalone source (``adapters.repro``): the ``torch`` adapter's torch.nn module, eager or under
torch.compile (``native.py``), and the ``torch.onnx`` adapter's export of it run in onnxruntime (``exported.py``)."""

from __future__ import annotations

from ..repro import Cannot, Source, Target, klass, lines, method, py
from .exported import _LEVELS, _MODES, ExportedAdapter
from .native import COMPILE_OPTIONS

ADAPTERS = ("torch", "torch.onnx")

_HELPERS = '''
def tensor(a, dtype):
    """A float64 array as a torch tensor of ``dtype`` (exact: it holds that dtype's values)."""
    return torch.from_numpy(np.array(a)).to(dtype)


def numpy(t):
    t = t.detach()
    return (t.float() if t.dtype == torch.bfloat16 else t).numpy().copy()
'''


def module(target: Target, dtype: str) -> str:
    """The torch.nn constructor call the adapter makes (``native._layer_norm`` and its siblings)."""
    spec, shape = target.spec, target.shape
    pshape, eps, dt, affine = spec.param_shape(shape), py(float(spec.eps)), f"torch.{dtype}", spec.affine
    if spec.op in ("layer_norm", "rms_norm"):
        cls = "LayerNorm" if spec.op == "layer_norm" else "RMSNorm"
        return f"torch.nn.{cls}({py(pshape)}, eps={eps}, elementwise_affine={affine}, dtype={dt})"
    c, d = pshape[0], "2d" if len(shape) == 4 else "1d"
    momentum = py(float(spec.momentum))
    if spec.op == "batch_norm":
        return f"torch.nn.BatchNorm{d}({c}, eps={eps}, momentum={momentum}, affine={affine}, dtype={dt})"
    if spec.op == "group_norm":
        return f"torch.nn.GroupNorm({spec.groups}, {c}, eps={eps}, affine={affine}, dtype={dt})"
    return (f"torch.nn.InstanceNorm{d}({c}, eps={eps}, momentum={momentum}, affine={affine}, "
            f"track_running_stats={spec.running_stats}, dtype={dt})")


def _params(target: Target) -> list[tuple[str, str]]:
    """(module attribute, array) of the parameters the layer has."""
    spec = target.spec
    return [p for p, has in ((("weight", "gamma"), spec.affine), (("bias", "beta"), spec.affine and spec.kind.has_bias))
            if has]


def _load(target: Target, dtype: str) -> str:
    """γ, β and the running statistics copied in, as ``TorchLayer.set_params`` and ``set_running`` do."""
    pairs = _params(target) + ([("running_mean", "running_mean"), ("running_var", "running_var")]
                               if target.stateful else [])
    if not pairs:
        return ""
    return "with torch.no_grad():\n" + "\n".join(f"    self.module.{a}.copy_(tensor({b}, torch.{dtype}))"
                                                  for a, b in pairs)


def layer(target: Target) -> Source:
    if target.adapter == "torch.onnx":
        return _exported(target)
    mode = target.mode
    if mode not in (None, *COMPILE_OPTIONS):
        raise Cannot(f"torch has no mode {mode!r}")
    pdt, dt, ch, needs = target.params_dtype, target.dtype, target.channel, target.needs
    options = COMPILE_OPTIONS.get(mode or "", {})
    compiled = ("torch.compile({}, dynamic=False, fullgraph=True" + (f", options={options!r})" if options else ")")
                if mode else "{}")
    move = ch is not None and ch != 1
    state = "jvp" in needs
    run = ("self.run(t) if state is None else torch.func.functional_call(self.module, state, (t,))" if state
           else "self.run(t)")
    autocast = f"with torch.autocast('cpu', dtype=torch.{dt}):  # the mixed-precision path" if target.mixed else None
    params = _params(target)
    grads = ", ".join([f"numpy(self.module.{p}.grad)" for p, _ in params] + ["None"] * (2 - len(params)))
    tangents = ", ".join(f"{p!r}: tensor(t{a}, torch.{dt})" for p, a in params)
    how = f"under {compiled.format('module')}" if mode else "eagerly"
    header = f'''
        class Layer:
            """{module(target, pdt).split('(')[0]} as normbench's torch adapter builds it and calls it {how}."""
        '''
    code = _HELPERS + "\n\n" + klass(
        header,
        method(True, f"""
            def __init__(self):
                self.module = {module(target, pdt)}
                @@load@@
                self.run = {compiled.format('self.module')}
            """, load=_load(target, pdt)),
        method(True, f"""
            def call(self, t{', state=None' if state else ''}):
                @@call@@
                return {f'y.movedim(1, {ch})' if move else 'y'}
            """, call=lines(f"t = t.movedim({ch}, 1)  # torch is channels-first" if move else None,
                            autocast, ("    " if autocast else "") + f"y = {run}")),
        method("forward" in needs, f"""
            def forward(self, x, training, mask=None):
                self.module.train(training)
                with torch.no_grad():
                    return numpy(self.call(tensor(x, torch.{dt})))
            """),
        method("running" in needs, """
            def running(self):
                return numpy(self.module.running_mean), numpy(self.module.running_var)
            """),
        method("vjp" in needs, f"""
            def vjp(self, x, dy, mask=None):
                self.module.train(True)
                self.module.zero_grad(set_to_none=True)
                t = tensor(x, torch.{dt}).requires_grad_(True)
                self.call(t).backward(tensor(dy, torch.{dt}))
                return numpy(t.grad), {grads}
            """),
        method("jvp" in needs, f"""
            def jvp(self, x, tx, tgamma, tbeta, mask=None):
                # torch.func.jvp over functional_call; the buffers are cloned inside, so a training step's
                # in-place update of the running statistics lands on the clones
                self.module.train(True)
                buffers = dict(self.module.named_buffers())
                tangents = {{{tangents}}}
                params = {{k: getattr(self.module, k).detach() for k in tangents}}

                def f(t, p):
                    return self.call(t, {{**{{k: b.clone() for k, b in buffers.items()}}, **p}})

                def jvp(t, p, tt, tp):
                    return torch.func.jvp(f, (t, p), (tt, tp))

                _, out = {compiled.format('jvp')}(tensor(x, torch.{dt}), params, tensor(tx, torch.{dt}), tangents)
                return numpy(out)
            """),
        method("second_order" in needs, f"""
            def second_order(self, x, dy, v, mask=None):
                # grad of grad: torch's own dx with create_graph=True, then <dx, v> differentiated wrt x and γ
                self.module.train(True)
                t = tensor(x, torch.{dt}).requires_grad_(True)
                dx, = torch.autograd.grad(self.call(t), t, tensor(dy, torch.{dt}), create_graph=True)
                wrt = {'(t, self.module.weight)' if params else '(t,)'}
                ddx, *ddgamma = torch.autograd.grad((dx * tensor(v, torch.{dt})).sum(), wrt)
                return numpy(ddx), numpy(ddgamma[0]) if ddgamma else None
            """),
    )
    return Source(("import torch",), code, install="torch")


def _exported(target: Target) -> Source:
    """``exported.ExportedLayer``: the module exported in eval mode, run in an onnxruntime InferenceSession."""
    name = target.mode or ExportedAdapter.modes[0].name
    if name not in _MODES:
        raise Cannot(f"torch.onnx has no mode {name!r}")
    opset, level = _MODES[name]
    spec, dt, ch, shape = target.spec, target.dtype, target.channel, target.shape
    first = shape if ch is None else (shape[0], shape[ch], *(d for a, d in enumerate(shape) if a not in (0, ch)))
    fixed = set(range(len(shape) - spec.normalized_ndim, len(shape))) if ch is None else {1}
    axes = {a: f"d{a}" for a in range(len(shape)) if a not in fixed}
    move = ch is not None and ch != 1
    x_in = (f"np.ascontiguousarray(np.moveaxis(np.asarray(x, np.{dt}), {ch}, 1))" if move
            else f"np.ascontiguousarray(x, np.{dt})")
    header = f'''
        class Layer:
            """{module(target, dt).split('(')[0]} as normbench's torch.onnx adapter exports it (the TorchScript
            exporter, opset {opset}) and runs it in onnxruntime ({_LEVELS[level]})."""
        '''
    code = _HELPERS + "\n\n" + klass(
        header,
        method(True, f"""
            def __init__(self):
                self.module = {module(target, dt)}
                @@load@@
                # exported in eval mode, every axis dynamic but {'the channels' if ch is not None else 'the normalized'}
                example = torch.zeros({py(tuple(first))}, dtype=torch.{dt})
                axes = {axes!r}
                model = io.BytesIO()
                with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
                    warnings.simplefilter("ignore")
                    torch.onnx.export(self.module.eval(), (example,), model, dynamo=False, opset_version={opset},
                                      input_names=["x"], output_names=["y"], dynamic_axes={{"x": axes, "y": axes}})
                opts = ort.SessionOptions()
                opts.log_severity_level = 3
                opts.graph_optimization_level = ort.GraphOptimizationLevel.{_LEVELS[level]}
                self.session = ort.InferenceSession(model.getvalue(), opts, providers=["CPUExecutionProvider"])
            """, load=_load(target, dt)),
        method("forward" in target.needs, f"""
            def forward(self, x, training, mask=None):
                # an inference graph: it normalizes with the running statistics, training or not
                y = self.session.run(None, {{"x": {x_in}}})[0]
                return {f'np.moveaxis(y, 1, {ch})' if move else 'y'}
            """),
        method("running" in target.needs, """
            def running(self):
                return numpy(self.module.running_mean), numpy(self.module.running_var)
            """),
    )
    return Source(("import io", "import warnings", "import onnxruntime as ort", "import torch"), code,
                  install="torch onnx onnxruntime")
