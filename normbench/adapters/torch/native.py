"""torch.nn modules and the Layer around them, shared by the adapter (``layers``) and the
synchronized path (``replicas``), which runs the same Layer under torch.distributed."""

from __future__ import annotations

import contextlib

import numpy as np

from ...numerics.reference import Grads
from ...ops.dtypes import resolve
from ..base import Layer, Mode, Timed
from ..torch_compile import torch_compile

# torch.compile options of each compiled mode (``layers.TorchAdapter.modes``): Inductor's config keys.
COMPILE_OPTIONS = {"inductor": {}, "inductor_emulate": {"emulate_precision_casts": True}}


def compiled(fn, mode: Mode | None):
    """``fn`` under torch.compile in ``mode`` (``fn`` itself in eager mode); fullgraph, so no part of it
    falls back to eager unseen (see ``torch_compile`` for the rest)."""
    if mode is None:
        return fn
    return torch_compile(fn, fullgraph=True, options=COMPILE_OPTIONS[mode.name] or None)


def _tensor(a: np.ndarray, dtype: str):
    import torch

    if dtype == "bfloat16":  # torch.from_numpy knows no ml_dtypes bfloat16; via float32 is exact
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=resolve(dtype)))


def _numpy(t) -> np.ndarray:
    import torch

    t = t.detach().cpu()  # a no-op on CPU; the synchronized path may run on CUDA
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(resolve("bfloat16"))
    return t.numpy().copy()


def _layer_norm(spec, shape, dtype):
    import torch

    return torch.nn.LayerNorm(spec.param_shape(shape), eps=spec.eps, elementwise_affine=spec.affine,
                              dtype=getattr(torch, dtype))


def _rms_norm(spec, shape, dtype):
    import torch

    return torch.nn.RMSNorm(spec.param_shape(shape), eps=spec.eps, elementwise_affine=spec.affine,
                            dtype=getattr(torch, dtype))


def _batch_norm(spec, shape, dtype):
    import torch

    cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
    return cls(spec.param_shape(shape)[0], eps=spec.eps, momentum=spec.momentum, affine=spec.affine,
               dtype=getattr(torch, dtype))


def _group_norm(spec, shape, dtype):
    import torch

    return torch.nn.GroupNorm(spec.groups, spec.param_shape(shape)[0], eps=spec.eps, affine=spec.affine,
                              dtype=getattr(torch, dtype))


def _instance_norm(spec, shape, dtype):
    import torch

    cls = torch.nn.InstanceNorm2d if len(shape) == 4 else torch.nn.InstanceNorm1d
    return cls(spec.param_shape(shape)[0], eps=spec.eps, momentum=spec.momentum, affine=spec.affine,
               track_running_stats=spec.running_stats, dtype=getattr(torch, dtype))


class TorchLayer(Layer):
    def __init__(self, spec, shape, dtype, native, mode=None):
        super().__init__(spec, shape, dtype, native, mode)
        self._params = "float32" if spec.precision == "mixed" else dtype  # parameters' and buffers' dtype
        self.module = native(spec, self.shape, self._params)
        self._run = compiled(self.module, mode)  # what a call runs: the module, or it under torch.compile
        self._channel = spec.feature_axis(len(shape)) if spec.kind.channel_axis else 1

    def _to_native(self, x: np.ndarray):
        return _tensor(x, self.dtype)

    def _call(self, t, state=None):
        """The module on ``t`` in its layout; with ``state`` (name -> tensor) through
        torch.func.functional_call, its tensors standing in for the module's own of those names."""
        import torch

        t = t.movedim(self._channel, 1)
        with self._autocast():
            y = self._run(t) if state is None else torch.func.functional_call(self.module, state, (t,))
        return y.movedim(1, self._channel)

    def _autocast(self):
        """The forward's context: CPU autocast to the input's half dtype on the mixed path. Only the
        forward runs in it; backward runs outside, as torch documents."""
        import torch

        if self.spec.precision != "mixed":
            return contextlib.nullcontext()
        return torch.autocast("cpu", dtype=getattr(torch, self.dtype))

    def set_params(self, gamma, beta):
        import torch

        with torch.no_grad():
            self.module.weight.copy_(_tensor(gamma, self._params))
            if beta is not None:
                self.module.bias.copy_(_tensor(beta, self._params))

    def set_running(self, mean, var):
        import torch

        with torch.no_grad():
            self.module.running_mean.copy_(_tensor(mean, self._params))
            self.module.running_var.copy_(_tensor(var, self._params))

    def running(self):
        return _numpy(self.module.running_mean), _numpy(self.module.running_var)

    def forward(self, x, training, mask=None):
        import torch

        self.module.train(training)
        with torch.no_grad():
            return _numpy(self._call(self._to_native(x)))

    def vjp(self, x, dy, mask=None):
        self.module.train(True)
        self.module.zero_grad(set_to_none=True)
        t = self._to_native(x).requires_grad_(True)
        self._call(t).backward(self._to_native(dy))
        params = (getattr(self.module, "weight", None), getattr(self.module, "bias", None))
        return Grads(_numpy(t.grad), *(None if p is None else _numpy(p.grad) for p in params))

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        """torch.func.jvp over functional_call, as users take forward-mode derivatives of a module;
        only x, γ and β carry tangents. BatchNorm's training step updates its buffers in place, which
        torch.func refuses on a tensor captured from outside (pytorch/pytorch#85533) and cannot take
        as a primal (num_batches_tracked is an integer), so each call copies them inside the function:
        the update lands on the copies and nothing leaks into the layer."""
        import torch

        self.module.train(True)
        buffers = dict(self.module.named_buffers())
        tangents = {k: self._to_native(a) for k, a in (("weight", tgamma), ("bias", tbeta)) if a is not None}
        params = {k: getattr(self.module, k).detach() for k in tangents}

        def f(t, p):
            return self._call(t, {**{k: b.clone() for k, b in buffers.items()}, **p})

        def jvp(t, p, tt, tp):  # in a compiled mode, compiled whole: torch.compile over torch.func.jvp
            return torch.func.jvp(f, (t, p), (tt, tp))

        _, out = compiled(jvp, self.mode)(self._to_native(x), params, self._to_native(tx), tangents)
        return _numpy(out)

    def second_order(self, x, dy, v, mask=None):
        """Grad of grad, as a gradient penalty takes it: torch's own dx with create_graph=True,
        then ⟨dx, v⟩ differentiated with respect to x and γ."""
        import torch

        self.module.train(True)
        t = self._to_native(x).requires_grad_(True)
        weight = getattr(self.module, "weight", None)
        dx, = torch.autograd.grad(self._call(t), t, self._to_native(dy), create_graph=True)
        wrt = (t,) if weight is None else (t, weight)
        ddx, *ddgamma = torch.autograd.grad((dx * self._to_native(v)).sum(), wrt)
        return _numpy(ddx), _numpy(ddgamma[0]) if ddgamma else None

    def timed(self, x, mode, dy=None):
        import torch

        t, m = self._to_native(x), self.module
        sync = "none needed: torch CPU kernels have finished when the call returns"
        # in a compiled mode, the graphs Dynamo has compiled in this process: a new shape's recompile shows
        traces = (lambda: torch._dynamo.utils.counters["stats"]["unique_graphs"]) if self.mode is not None else None
        if mode == "forward_backward":
            m.train(True)
            t.requires_grad_(True)
            g, wrt = self._to_native(dy), [t, *(p for p in m.parameters())]
            return Timed(lambda: torch.autograd.grad(self._call(t), wrt, g), sync, traces)
        m.train(mode == "train")
        # forward-only calls run as users run inference: no autograd bookkeeping
        mode_ctx = torch.no_grad if mode == "train" else torch.inference_mode

        def call():
            with mode_ctx():
                return self._call(t)

        return Timed(call, sync, traces)
