"""Keras on torch, eager as Keras's torch trainer runs it, gradients through torch.autograd."""

from __future__ import annotations

from ..base import Mode
from ..torch_compile import CXX, torch_compile
from .layers import (
    KerasLayer,
    KerasTensorflowAdapter,
    Timed,
    _builders,
    _call_kwargs,
    _numpy,
    _slots,
    _tangents,
    _tensor,
)

_STEP_ONLY = ("Keras's jit_compile=True compiles the train step (the forward pass and its gradients), not "
              "forward-mode or second derivatives")


class KerasTorchLayer(KerasLayer):
    """Eager, as Keras runs on torch (its torch trainer does not compile by default);
    gradients through torch.autograd, forward-only benchmarks without autograd bookkeeping."""

    backend = "torch"

    def _graph(self, fn):
        """``fn`` as the mode runs it: eager, or under torch.compile as Keras's ``jit_compile=True`` compiles
        its torch train step (no fullgraph: a graph break runs eager, as it does for Keras's users), with
        the recompile limits of ``torch_compile``."""
        return fn if self.mode is None else torch_compile(fn)

    def _grad(self, t, dy, mask):
        import torch

        t = t.detach().requires_grad_(True)
        params = [p.value for p in self._params()]
        y = self._call(t, True, mask)
        dx, *dparams = torch.autograd.grad(y, [t, *params], dy)
        return _slots(dx, dparams)

    def jvp(self, x, tx, tgamma, tbeta, mask=None):
        """torch.func.jvp through ``stateless_call`` (a functional call of the layer, whose variables
        torch.func cannot replace in place); the statistics it updates are dropped."""
        import torch

        m = None if mask is None else _tensor(mask, "bool")
        trainable, non_trainable = ([v.value.detach() for v in vs] for vs in (
            self.module.trainable_variables, self.module.non_trainable_variables))
        tangents = _tangents(self.module.trainable_variables, self._params(), tgamma, tbeta)

        def f(t, trainable):
            return self.module.stateless_call(trainable, non_trainable, t, **_call_kwargs(self.native, True, m))[0]

        return _numpy(torch.func.jvp(f, (self._to_native(x), trainable), (self._to_native(tx), tangents))[1])

    def second_order(self, x, dy, v, mask=None):
        """The vjp above with create_graph=True, then torch.autograd.grad of ⟨dx, v⟩ wrt x and γ."""
        import torch

        m = None if mask is None else _tensor(mask, "bool")
        t, wrt = self._to_native(x).requires_grad_(True), [p.value for p in self._params()[:1]]
        dx, = torch.autograd.grad(self._call(t, True, m), t, self._to_native(dy), create_graph=True)
        ddx, *ddgamma = torch.autograd.grad((dx * self._to_native(v)).sum(), [t, *wrt])
        return _numpy(ddx), _numpy(ddgamma[0]) if ddgamma else None

    def timed(self, x, mode, dy=None):
        import torch

        t = self._to_native(x)
        sync = ("torch.cuda.synchronize after each call" if t.is_cuda else
                "none needed: torch CPU kernels have finished when the call returns")
        wait = torch.cuda.synchronize if t.is_cuda else (lambda: None)
        if mode == "forward_backward":
            t.requires_grad_(True)
            g, wrt = self._to_native(dy), [t, *(p.value for p in self._params())]

            grad = self._graph(lambda t: torch.autograd.grad(self._call(t, True), wrt, g))

            def call():
                out = grad(t)
                wait()
                return out

            return Timed(call, sync)
        # Forward-only calls skip autograd bookkeeping as the torch adapter's do: no_grad for
        # "train" (it updates the moving statistics in place), inference_mode otherwise.
        mode_ctx = torch.no_grad if mode == "train" else torch.inference_mode
        run = self._graph(lambda t: self._call(t, mode == "train"))

        def call():
            with mode_ctx():
                out = run(t)
            wait()
            return out

        return Timed(call, sync)


class KerasTorchAdapter(KerasTensorflowAdapter):
    name = "keras[torch]"
    modes = (Mode("eager", "eager torch ops (Keras's torch trainer does not compile by default)"),
             Mode("compiled", "torch.compile(fn, dynamic=False), as Keras's jit_compile=True compiles its torch train "
                  "step (graph breaks run eager)", compiled=True,
                  lacks=(("jvp", _STEP_ONLY), ("second_order", _STEP_ONLY)), executables=CXX, in_run=False))
    backend = "torch"
    builders = _builders(KerasTorchLayer)
    requires = ("keras", "torch")
    extra = "torch"
    environment = {"KERAS_BACKEND": "torch"}
