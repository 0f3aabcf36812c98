"""`normbench new-adapter NAME`: a commented adapter file to fill in. Until a layer is filled in, each op
verifies as a skip, "not built yet", so the file runs from its first minute."""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path

from .. import ops
from ..adapters import registry
from .common import fail

TEMPLATE = '''"""A normbench adapter for {name}. Fill in each TODO, then:

    normbench check-adapter {module}:{cls}Adapter      # what it will exercise, and what it cannot
    normbench verify --adapters {module}:{cls}Adapter  # every suite, against the float64 oracle
    normbench run --adapters {module}:{cls}Adapter     # the suites, the benchmark and the report

(from the folder holding {module}.py). Until {cls}Layer builds an op, that op is a skip: "not built yet".
The whole contract is in normbench's README, "Your own adapter".
"""

import numpy as np

from normbench import Adapter, Grads, Layer, Unsupported


class {cls}Layer(Layer):
    """One layer of one op. normbench hands numpy arrays in and takes numpy arrays back: convert to
    your framework's tensors here. What you have:

    - self.spec: spec.op ({ops}), spec.eps, spec.affine, spec.momentum, spec.layout
      ("channels_first": channels on axis 1; "channels_last": on the last axis), spec.normalized_ndim
      (LayerNorm/RMSNorm: how many trailing axes), spec.groups (GroupNorm), spec.reduce_axes(ndim)
      (the axes statistics are taken over) and spec.param_shape(shape) (the shape of γ and β).
    - self.shape, self.dtype ("float32", "float64", "float16" or "bfloat16").
    - self.gamma, self.beta, self.running_mean, self.running_var: numpy arrays (γ = 1, β = 0, mean 0,
      var 1) that set_params / set_running below keep. A framework that holds its own variables
      overrides set_params, set_running and running() to write and read them.
    """

    def __init__(self, spec, shape, dtype, native=None, mode=None):
        super().__init__(spec, shape, dtype, native, mode)
        # TODO: build your framework's layer for spec.op (with spec.eps, spec.affine, ...) and delete this line.
        raise Unsupported(f"{{spec.op}}: not built yet (fill in {cls}Layer in {module}.py)")

    def forward(self, x, training, mask=None):
        """y for x (its shape, in self.dtype). training=True uses the batch's statistics and updates the
        running ones where the op keeps them (BatchNorm); training=False uses the running ones.
        mask (features "mask"): which positions count towards the statistics."""
        raise NotImplementedError  # TODO

    def vjp(self, x, dy, mask=None):
        """features "grad": the gradients of the training-mode output for upstream gradient dy, by
        your framework's autodiff: Grads(dx, dgamma, dbeta), dgamma/dbeta None without affine (dbeta
        None for RMSNorm)."""
        raise Unsupported("no gradients yet")  # TODO, then add "grad" to features

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        """features "jvp": the forward-mode derivative of the training-mode output along the tangents
        of x, γ and β (tgamma/tbeta None where the layer has no such parameter)."""
        raise Unsupported("no forward-mode derivative yet")  # TODO, then add "jvp" to features

    def second_order(self, x, dy, v, mask=None):
        """features "second_order": the gradients of <dx, v> with respect to x and γ, where dx is your
        own VJP of dy (differentiate through your backward pass): (d_x, d_gamma or None)."""
        raise Unsupported("no second-order gradients yet")  # TODO, then add "second_order" to features

    # Benchmarks time timed(x, mode, dy): return normbench.adapters.base.Timed(call, sync) where call()
    # runs your layer once on native tensors prepared here and returns when the result is computed.


class {cls}Adapter(Adapter):
    name = "{name}"  # a name of its own: records, reports and rerun commands carry it
    builders = dict.fromkeys({op_tuple}, {cls}Layer)  # delete the ops it does not build
    requires = ()  # TODO: the modules your layer imports, e.g. ("my_framework",): missing -> a clean skip
    version_of = None  # TODO: the distribution whose version every record carries, e.g. "my-framework"
    dtypes = frozenset({{"float32", "float64"}})  # add "float16", "bfloat16" where it runs them
    layouts = frozenset({{"channels_first", "channels_last"}})  # for BatchNorm, GroupNorm and InstanceNorm
    features = frozenset({{"eval", "running_stats"}})  # and "grad", "mask", "jvp", "second_order" when it has them
    running_var = None  # TODO: "biased" or "unbiased", the running variance it stores (then checked)
    momentum_convention = "new"  # "new": momentum weighs the batch statistic (torch); "old": the running value
    semantics = ()  # ("onnx",) if it runs ONNX operators as the spec defines them: their known divergences apply

    def defaults(self, op):
        """What a default-constructed layer of op does, for the train_eval defaults check:
        {{"eps": ..., "momentum": ... (ops with running statistics, in your convention), "affine": ...}}."""
        raise Unsupported("defaults not reported yet")  # TODO
'''


def add(sub: argparse._SubParsersAction) -> None:
    new = sub.add_parser("new-adapter", help="write a commented adapter file to fill in (every op a skip, "
                                             "'not built yet', until it is)")
    new.add_argument("name", help="the adapter's name, e.g. my-norm (its file: my_norm.py)")
    new.add_argument("-o", "--output", help="the file to write (default: <name>.py here, - and . as _)")
    new.set_defaults(func=new_adapter)


def _module(name: str) -> str:
    return re.sub(r"[^0-9a-zA-Z_]", "_", name).lower()


def new_adapter(args: argparse.Namespace) -> int:
    name = args.name.strip()
    module = _module(name)
    if not name or not module.isidentifier() or keyword.iskeyword(module) or module[0].isdigit():
        return fail(f"adapter name {args.name!r} makes no Python module name; use letters, digits, - and _ "
                    "(e.g. my-norm)")
    if name in registry.known():
        return fail(f"{name!r} is the name of {registry.known()[name]}: give your adapter a name of its own")
    path = Path(args.output) if args.output else Path(f"{module}.py")
    if path.exists():
        return fail(f"{path} already exists; not overwriting it (choose another name or -o)")
    if path.suffix != ".py":
        return fail(f"{path}: the adapter file must end in .py")
    cls = "".join(part.capitalize() for part in module.split("_") if part) or "My"
    text = TEMPLATE.format(name=name, module=path.stem, cls=cls, ops=", ".join(ops.names()),
                           op_tuple=repr(tuple(ops.names())))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"normbench: wrote {path}: fill in {cls}Layer and {cls}Adapter, then\n"
          f"  normbench check-adapter {path.stem}:{cls}Adapter\n"
          f"  normbench verify --adapters {path.stem}:{cls}Adapter")
    return 0
