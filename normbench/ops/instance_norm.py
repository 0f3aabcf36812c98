"""InstanceNorm: each (sample, channel) normalized over its spatial positions; γ and β per
channel where affine. Running statistics are optional (torch's track_running_stats): kept as
the batch average of the per-instance mean and variance, and used only in inference."""

from __future__ import annotations

from .base import NEGLIGIBLE_EPS, ChannelOp
from .case import BenchCase, Case
from .spec import NormSpec


def _last() -> NormSpec:
    return NormSpec("instance_norm", layout="channels_last")


def _running() -> NormSpec:
    return NormSpec("instance_norm", running_stats=True)


class InstanceNorm(ChannelOp):
    name = "instance_norm"
    title = "InstanceNorm"
    fields = ("eps", "affine", "layout", "momentum", "running_stats")
    running_stats = "optional"

    def validate(self, spec):
        if spec.momentum != NormSpec.momentum and not spec.running_stats:
            raise ValueError("instance_norm momentum applies only with running_stats=True")

    def check_shape(self, spec, shape):
        if len(shape) < 3:
            raise ValueError(f"instance_norm takes inputs of rank >= 3 (N, C, spatial...), got shape {shape}")

    def groups(self, spec, channels):
        return channels

    def configs(self):
        return [(NormSpec(self.name), (4, 6, 10)), (_last(), (4, 10, 6)),
                (NormSpec(self.name), (2, 3, 5, 7)), (_last(), (2, 5, 7, 3))]

    def option_configs(self):
        return [(NormSpec(self.name, eps=0.1), (4, 6, 10)), (NormSpec(self.name, affine=False), (4, 6, 10)),
                (_running(), (4, 6, 10)), (NormSpec(self.name, running_stats=True, momentum=0.3,
                                                 layout="channels_last"), (2, 5, 7, 3))]

    def metamorphic_config(self):
        return NormSpec(self.name, eps=NEGLIGIBLE_EPS, layout="channels_last"), (4, 10, 6)

    def running_cases(self):
        return [Case(_running(), (4, 6, 10)), Case(NormSpec(self.name, running_stats=True, layout="channels_last"),
                                                (2, 5, 7, 3))]

    def stateless_cases(self):
        return [Case(NormSpec(self.name), (4, 6, 10)), Case(_last(), (2, 5, 7, 3))]

    def independence_cases(self):
        return self.stateless_cases()

    def batch_one_cases(self):
        return [Case(NormSpec(self.name), (1, 6, 10)), Case(_last(), (1, 5, 7, 3))]

    def bench_cases(self, dtypes, quick):
        """Style-transfer / U-Net feature maps: 8 × 320 × 64 × 64."""
        shape = (2, 8, 6, 6) if quick else (8, 320, 64, 64)
        return [BenchCase(self.name, m, shape, dtype) for dtype in dtypes for m in self.bench_modes]


OP = InstanceNorm()
