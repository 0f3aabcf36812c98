"""RMSNorm: y = γ·x/√(mean(x²) + eps) over the trailing feature axes; no mean, no β.

Nothing is subtracted, so there is no cancellation to condition on, and only a positive
scale leaves the output unchanged (a shift does not).
"""

from __future__ import annotations

from .base import TokenOp
from .case import BenchCase
from .spec import NormSpec


class RMSNorm(TokenOp):
    name = "rms_norm"
    title = "RMSNorm"
    centred = False
    has_bias = False
    bench_dtypes = ("float32", "bfloat16")  # what LLMs train in

    def configs(self):
        return [(NormSpec(self.name), (8, 16)), (NormSpec(self.name), (4, 6, 10)),
                (NormSpec(self.name, normalized_ndim=2), (2, 3, 5, 7))]

    def option_configs(self):
        return [(NormSpec(self.name, eps=0.1), (8, 16)), (NormSpec(self.name, affine=False), (4, 6, 10))]

    def bench_cases(self, dtypes, quick):
        """LLM shapes: 4096 tokens × hidden 1024–16384, in float32 and bfloat16 (what LLMs train in)."""
        if quick:
            shapes, sweep = [(64, 32)], [(64, 16), (64, 64)]
        else:
            shapes, sweep = [(4096, 1024), (4096, 4096)], [(4096, h) for h in (1024, 4096, 16384)]
        out = []
        for dtype in dtypes:
            out += [BenchCase(self.name, m, s, dtype) for s in shapes for m in self.bench_modes]
        out += [BenchCase(self.name, "forward", s, dtypes[0], "sweep") for s in sweep]
        return out


OP = RMSNorm()

