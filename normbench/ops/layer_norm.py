"""LayerNorm: each position normalized over its trailing feature axes, with γ and β of their shape."""

from __future__ import annotations

from .base import TokenOp
from .case import BenchCase
from .spec import NormSpec


class LayerNorm(TokenOp):
    name = "layer_norm"
    title = "LayerNorm"

    def option_configs(self):
        return [(NormSpec(self.name, eps=0.1), (8, 16)), (NormSpec(self.name, affine=False), (4, 6, 10))]

    def bench_cases(self, dtypes, quick):
        """Transformer-like (tokens × hidden), and a sweep over tokens that grows ~4× per step."""
        shapes = [(64, 32)] if quick else [(2048, 768), (2048, 1024), (1024, 4096)]
        sweep = [(16, 32), (64, 32)] if quick else [(t, 1024) for t in (256, 1024, 4096, 16384)]
        out = []
        for dtype in dtypes:
            out += [BenchCase(self.name, m, s, dtype) for s in shapes for m in self.bench_modes]
            out += [BenchCase(self.name, "forward", s, dtype, "sweep") for s in sweep]
        return out


OP = LayerNorm()

