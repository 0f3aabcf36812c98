"""BatchNorm: statistics per channel over the batch and every spatial position, running
statistics updated in training and used in inference; the one op whose statistics mix samples."""

from __future__ import annotations

from .base import NEGLIGIBLE_EPS, STRESS, ChannelOp, Op
from .case import BenchCase, Case
from .spec import NormSpec

IMAGE = (2, 5, 7, 3)  # (N, H, W, C)


def _last() -> NormSpec:
    return NormSpec("batch_norm", layout="channels_last")


class BatchNorm(ChannelOp):
    name = "batch_norm"
    title = "BatchNorm"
    fields = ("eps", "affine", "layout", "momentum")
    running_stats = "always"
    maskable = True
    per_sample = False
    bench_modes = ("train", "eval", "forward_backward")

    def check_shape(self, spec, shape):
        if len(shape) not in (2, 3, 4):
            raise ValueError(f"batch_norm takes 2-D, 3-D or 4-D inputs, got shape {shape}")

    def stats_view(self, spec, shape):
        return Op.stats_view(self, spec, shape)

    def reduce_axes(self, spec, ndim):
        c = self.feature_axis(spec, ndim)
        return tuple(a for a in range(ndim) if a != c)

    def configs(self):
        """2-D, 3-D and 4-D inputs, in both layouts where the layout means something."""
        return [(NormSpec(self.name, layout=lay), shape)
                for shape in ((8, 16), (4, 6, 10), (2, 3, 5, 7)) for lay in self.layouts(shape)]

    def stress_config(self):
        return _last(), (4, 6, 10)

    def agreement_cases(self):
        """Also 4-D images under stress, in both layouts, in float32 and float16: fused BatchNorm kernels
        take 4-D inputs alone (XLA's expansion of TF's is a one-pass variance, found on them)."""
        return super().agreement_cases() + [Case(spec, shape, dtype, name) for dtype in ("float32", "float16")
                                            for spec, shape in self.image_configs() for name in STRESS]

    def image_configs(self):
        return self.in_every_layout([(_last(), IMAGE)])

    def short_configs(self):
        return self.stress_configs() + self.image_configs()

    def option_configs(self):
        return [(NormSpec(self.name, eps=0.1, momentum=0.3), (4, 6, 10)),
                (NormSpec(self.name, eps=1e-3, affine=False), (2, 3, 5, 7))]

    def masked_cases(self, dtype):
        """Padded (batch, time, channels) sequences and a 2-D batch with masked-out rows."""
        return [
            Case(_last(), (4, 6, 10), dtype, masked=True),
            Case(_last(), (2, 3, 5, 7), dtype, masked=True),
            Case(NormSpec(self.name), (8, 16), dtype, masked=True),
            Case(NormSpec(self.name), (4, 10, 6), dtype, masked=True),
        ]

    def metamorphic_config(self):
        return NormSpec(self.name, eps=NEGLIGIBLE_EPS, layout="channels_last"), (4, 6, 10)

    def running_cases(self):
        return [Case(NormSpec(self.name), (8, 16)), Case(_last(), (4, 6, 10))]

    def batch_one_cases(self):
        """One sample with spatial extent: several values per channel, so statistics exist."""
        return [Case(NormSpec(self.name), (1, 3, 4, 5)), Case(_last(), (1, 4, 5, 3))]

    def one_value_cases(self) -> list[Case]:
        """One value per channel: training has no variance to normalize with (recorded, not judged)."""
        return [Case(NormSpec(self.name), (1, 6))]

    def replica_cases(self) -> list[Case]:
        """2 and 4 replicas: equal shards, uneven ones (one holding a single sample), one sample
        each, a mean offset of 1e4 (where one-pass synchronized moments cancel), masked padded
        sequences, 4-D images, float64, and one replica (nothing to synchronize: the baseline)."""
        dense, last = NormSpec(self.name), _last()
        split = [((8, 6), (8,)), ((8, 6), (4, 4)), ((8, 6), (2, 2, 2, 2)), ((8, 6), (2, 6)),
                 ((16, 6), (1, 3, 4, 8)), ((2, 6), (1, 1)), ((4, 6), (1, 1, 1, 1))]
        out = [Case(dense, shape, replicas=r) for shape, r in split]
        out += [Case(last, (8, 3, 4, 5), replicas=(4, 4)), Case(last, (16, 3, 4, 5), replicas=(1, 3, 4, 8))]
        out += [Case(dense, (8, 6), input="offset1e4", replicas=r) for r in ((4, 4), (2, 2, 2, 2))]
        out += [Case(last, (8, 6, 5), masked=True, replicas=r) for r in ((4, 4), (2, 2, 2, 2))]
        out += [Case(dense, (16, 6), "float64", replicas=(1, 3, 4, 8))]
        return out

    def padding_cases(self, pad: str, masked: bool) -> list[Case]:
        """Padded (batch, time, channels) sequences: unmasked padding shifts the statistics."""
        return [Case(_last(), (4, 9, 8), pad=pad, masked=masked)]

    def varying_length_spec(self):
        return _last()

    def bench_cases(self, dtypes, quick):
        """CNN-like (N, C, H, W), and a sweep over the batch that grows 4× per step."""
        shapes = [(4, 8, 6, 6)] if quick else [(16, 64, 56, 56)]
        sweep = [(2, 8, 6, 6), (8, 8, 6, 6)] if quick else [(n, 32, 32, 32) for n in (2, 8, 32, 128)]
        out = []
        for dtype in dtypes:
            out += [BenchCase(self.name, m, s, dtype) for s in shapes for m in self.bench_modes]
            out += [BenchCase(self.name, "train", s, dtype, "sweep") for s in sweep]
        return out


OP = BatchNorm()
