"""torch.nn.LayerNorm and BatchNorm1d/2d, eager.

torch is channels-first: a channels_last input is viewed with its channel axis moved to 1
(for 4-D that is exactly torch's channels_last memory format). torch's momentum already
is normbench's canonical one; torch stores *unbiased* running variance, passed through.
"""

from __future__ import annotations

import numpy as np

from ..dtypes import resolve
from ..reference import Grads
from .base import Adapter, Layer, Timed


def _tensor(a: np.ndarray, dtype: str):
    import torch

    if dtype == "bfloat16":  # torch.from_numpy knows no ml_dtypes bfloat16; via float32 is exact
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(torch.bfloat16)
    return torch.from_numpy(np.ascontiguousarray(a, dtype=resolve(dtype)))


def _numpy(t) -> np.ndarray:
    import torch

    t = t.detach()
    if t.dtype == torch.bfloat16:
        return t.float().numpy().astype(resolve("bfloat16"))
    return t.numpy().copy()


class TorchLayer(Layer):
    def __init__(self, spec, shape, dtype):
        super().__init__(spec, shape, dtype)
        import torch

        tdt = getattr(torch, dtype)
        if spec.op == "layer_norm":
            self.module = torch.nn.LayerNorm(
                spec.param_shape(shape), eps=spec.eps, elementwise_affine=spec.affine, dtype=tdt
            )
        else:
            cls = torch.nn.BatchNorm2d if len(shape) == 4 else torch.nn.BatchNorm1d
            self.module = cls(
                spec.param_shape(shape)[0], eps=spec.eps, momentum=spec.momentum,
                affine=spec.affine, dtype=tdt,
            )
        self._channel = spec.feature_axis(len(shape)) if spec.op == "batch_norm" else 1

    def _to_native(self, x: np.ndarray):
        return _tensor(x, self.dtype)

    def _call(self, t):
        return self.module(t.movedim(self._channel, 1)).movedim(1, self._channel)

    def set_params(self, gamma, beta):
        import torch

        with torch.no_grad():
            self.module.weight.copy_(_tensor(gamma, self.dtype))
            self.module.bias.copy_(_tensor(beta, self.dtype))

    def set_running(self, mean, var):
        import torch

        with torch.no_grad():
            self.module.running_mean.copy_(_tensor(mean, self.dtype))
            self.module.running_var.copy_(_tensor(var, self.dtype))

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
        params = (self.module.weight, self.module.bias) if self.spec.affine else (None, None)
        return Grads(_numpy(t.grad), *(None if p is None else _numpy(p.grad) for p in params))


    def timed(self, x, mode, dy=None):
        import torch

        t, m = self._to_native(x), self.module
        sync = "none needed: torch CPU kernels have finished when the call returns"
        if mode == "forward_backward":
            m.train(True)
            t.requires_grad_(True)
            g, wrt = self._to_native(dy), [t, *(p for p in (m.weight, m.bias) if p is not None)]
            return Timed(lambda: torch.autograd.grad(self._call(t), wrt, g), sync)
        m.train(mode == "train")
        # forward-only calls run as users run inference: no autograd bookkeeping
        mode_ctx = torch.no_grad if mode == "train" else torch.inference_mode

        def call():
            with mode_ctx():
                return self._call(t)

        return Timed(call, sync)


class TorchAdapter(Adapter):
    name = "torch"
    layer = TorchLayer
    requires = ("torch",)
    extra = "torch"
    features = frozenset({"eval", "running_stats", "grad"})

    def defaults(self, op):
        import torch

        if op == "layer_norm":
            return {"eps": torch.nn.LayerNorm(4).eps}
        layer = torch.nn.BatchNorm1d(4)
        return {"eps": layer.eps, "momentum": layer.momentum}
