"""GroupNorm: per sample, the channels split into ``groups`` contiguous groups, each
normalized over its channels and every spatial position; γ and β per channel. Statistics never
mix samples, so a batch of one is as well defined as any other (its selling point over BatchNorm)."""

from __future__ import annotations

from .base import NEGLIGIBLE_EPS, ChannelOp
from .case import BenchCase, Case
from .spec import NormSpec


def _spec(groups: int, **kw) -> NormSpec:
    return NormSpec("group_norm", groups=groups, **kw)


class GroupNorm(ChannelOp):
    name = "group_norm"
    title = "GroupNorm"
    fields = ("eps", "affine", "layout", "groups")

    def validate(self, spec):
        if spec.groups is None or spec.groups < 1:
            raise ValueError(f"group_norm needs groups >= 1, got {spec.groups!r}")

    def check_shape(self, spec, shape):
        if len(shape) < 2:
            raise ValueError(f"group_norm takes inputs of rank >= 2 (N, C, ...), got shape {shape}")
        c = shape[self.feature_axis(spec, len(shape))]
        if c % spec.groups:
            raise ValueError(f"group_norm with groups={spec.groups} needs channels divisible by it, "
                             f"got {c} channels in shape {shape}")

    def groups(self, spec, channels):
        return spec.groups

    def configs(self):
        return [(_spec(3), (4, 6, 10)), (_spec(2, layout="channels_last"), (4, 10, 6)),
                (_spec(4), (2, 8, 5, 7)), (_spec(4, layout="channels_last"), (2, 5, 7, 8))]

    def option_configs(self):
        """eps, no affine, and the two ends: one group (LayerNorm over C, H, W) and C groups (InstanceNorm)."""
        return [(_spec(3, eps=0.1), (4, 6, 10)), (_spec(2, affine=False), (4, 6, 10)),
                (_spec(1), (2, 8, 5, 7)), (_spec(8), (2, 8, 5, 7))]

    def metamorphic_config(self):
        return _spec(2, eps=NEGLIGIBLE_EPS, layout="channels_last"), (4, 10, 6)

    def stateless_cases(self):
        return [Case(_spec(3), (4, 6, 10)), Case(_spec(4, layout="channels_last"), (2, 5, 7, 8))]

    def independence_cases(self):
        return self.stateless_cases()

    def batch_one_cases(self):
        return [Case(_spec(3), (1, 6, 10)), Case(_spec(4, layout="channels_last"), (1, 5, 7, 8))]

    def bench_cases(self, dtypes, quick):
        """A diffusion U-Net block: 8 × 320 × 64 × 64 in 32 groups."""
        shape, groups = ((2, 8, 6, 6), 4) if quick else ((8, 320, 64, 64), 32)
        return [BenchCase(self.name, m, shape, dtype, options=(("groups", groups),))
                for dtype in dtypes for m in self.bench_modes]


OP = GroupNorm()
