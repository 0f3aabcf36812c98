"""torch.nn.LayerNorm, RMSNorm, BatchNorm1d/2d, GroupNorm and InstanceNorm1d/2d, eager.

torch is channels-first: a channels_last input is viewed with its channel axis moved to 1
(for 4-D that is exactly torch's channels_last memory format). torch's momentum already
is normbench's canonical one; torch stores *unbiased* running variance (BatchNorm, and
InstanceNorm with track_running_stats), passed through. Synchronized BatchNorm runs
torch.nn.SyncBatchNorm under torch.distributed (``replicas``), on CPU unless
NORMBENCH_TORCH_DEVICE=cuda.

Mixed precision is torch.autocast("cpu", dtype=<half dtype>) around the layer's calls, as users
write it: float32 parameters and buffers, the input already in the half dtype (as a previous
autocast op returns it), backward outside the context. No norm is on CPU autocast's lists (cdist
is, for contrast): unlisted ops "run in the type defined by their inputs", so the documented
compute dtype is the half one, whatever the mixed-type kernels do inside.
"""

from __future__ import annotations

from ..base import Adapter, MixedPath, Mode, ReplicaJob, ReplicaRun, builder
from ..torch_compile import CXX
from . import replicas
from .native import TorchLayer, _batch_norm, _group_norm, _instance_norm, _layer_norm, _rms_norm

__all__ = ["TorchAdapter", "TorchLayer"]
_AMP_CPU = "https://docs.pytorch.org/docs/stable/amp.html#cpu-op-specific-behavior"
_NO_DOUBLE_BACKWARD = (("second_order", "torch.compile refuses double backward (RuntimeError: torch.compile with "
                        "aot_autograd does not currently support double backward)"),)
_COMPILE = "torch.compile(module, dynamic=False, fullgraph=True"


class TorchAdapter(Adapter):
    name = "torch"
    builders = {op: builder(TorchLayer, native) for op, native in (
        ("layer_norm", _layer_norm), ("rms_norm", _rms_norm), ("batch_norm", _batch_norm),
        ("group_norm", _group_norm), ("instance_norm", _instance_norm))}
    requires = ("torch",)
    extra = "torch"
    features = frozenset({"eval", "running_stats", "grad", "jvp", "second_order"})
    running_var = "unbiased"
    modes = (Mode("eager", "eager torch.nn modules"),
             Mode("inductor", f"{_COMPILE}) (Inductor's C++/OpenMP kernels)", compiled=True,
                  lacks=_NO_DOUBLE_BACKWARD, executables=CXX),
             Mode("inductor_emulate", f"{_COMPILE}, options={{'emulate_precision_casts': True}}) (Inductor, rounding "
                  "half-precision intermediates as eager does)", compiled=True, lacks=_NO_DOUBLE_BACKWARD,
                  executables=CXX, in_run=False))

    def defaults(self, op):
        import torch

        layer = {"layer_norm": lambda: torch.nn.LayerNorm(4), "rms_norm": lambda: torch.nn.RMSNorm(4),
                 "batch_norm": lambda: torch.nn.BatchNorm1d(4), "group_norm": lambda: torch.nn.GroupNorm(2, 4),
                 "instance_norm": lambda: torch.nn.InstanceNorm1d(4)}[op]()
        # RMSNorm's eps=None means torch.finfo(x.dtype).eps, the compute dtype's machine epsilon
        out = {"eps": layer.eps if layer.eps is not None else "machine eps of the input dtype"}
        if op in ("batch_norm", "instance_norm"):
            out["momentum"] = layer.momentum
            out["track_running_stats"] = layer.track_running_stats
        out["affine"] = bool(getattr(layer, "affine", getattr(layer, "elementwise_affine", False)))
        return out

    def mixed_precision(self, spec, dtype):
        """CPU autocast for every op and half dtype (float16 shares bfloat16's lists); the op runs
        in its input's half dtype, as the docs say of unlisted ops."""
        if dtype not in ("bfloat16", "float16"):
            return None
        return MixedPath(f"torch.autocast('cpu', dtype=torch.{dtype})", dtype, _AMP_CPU)

    def replicate(self, job: ReplicaJob) -> ReplicaRun:
        return replicas.run(job, replicas.device())
