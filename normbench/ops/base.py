"""What every norm op owns, in the shape PyTorch's OpInfo gives each operator.

An op says which spec fields apply to it, how a shape splits into normalized groups and
parameters, whether it centres (RMSNorm does not) and keeps running statistics, and which
cases exercise it. The float64 oracle (``normbench.numerics.reference``) and the tolerance policy
compute from that geometry alone; checks and suites branch on the capability flags here,
never on an op's name. All numpy, no framework.
"""

from __future__ import annotations

import dataclasses
import math
from typing import ClassVar

from .case import BenchCase, Case
from .spec import NormSpec

DTYPES = ("float32", "float64", "float16", "bfloat16")
STRESS = ("offset1e2", "offset1e4", "tiny_variance", "constant", "large")
Config = tuple[NormSpec, tuple[int, ...]]  # a layer configuration and the shape it is called on
# A negligible eps (2⁻⁸⁰; torch refuses 0) keeps the metamorphic relations exact.
NEGLIGIBLE_EPS = 2.0**-80


class Op:
    """One normalization: y = γ·(x − μ)/√(σ² + eps) + β over each normalized group."""

    name: ClassVar[str]
    title: ClassVar[str]  # how people write it: "LayerNorm"
    fields: ClassVar[tuple[str, ...]] = ("eps", "affine")  # NormSpec fields that apply
    # ---- capability flags: what checks and suites branch on ----
    centred: ClassVar[bool] = True  # subtracts the mean (RMSNorm divides by the root mean square only)
    has_bias: ClassVar[bool] = True  # has β as well as γ
    running_stats: ClassVar[str] = "never"  # "always" (BatchNorm), "optional" (spec.running_stats), "never"
    maskable: ClassVar[bool] = False  # statistics can skip masked positions
    per_sample: ClassVar[bool] = True  # statistics never mix samples: a sample alone normalizes the same
    per_token: ClassVar[bool] = False  # statistics per position over the features: padding cannot reach a token
    channel_axis: ClassVar[bool] = False  # γ/β live on one channel axis that ``layout`` places
    # ---- benchmarks ----
    bench_modes: ClassVar[tuple[str, ...]] = ("forward", "forward_backward")
    bench_dtypes: ClassVar[tuple[str, ...]] = ("float32",)  # timed unless --bench-dtypes says otherwise

    @property
    def shift_invariant(self) -> bool:
        """y(x + b) = y(x) for b constant over each normalized group."""
        return self.centred

    def tracks_running_stats(self, spec: NormSpec) -> bool:
        return self.running_stats == "always" or (self.running_stats == "optional" and spec.running_stats)

    def validate(self, spec: NormSpec) -> None:
        """Raise ValueError for a field value this op cannot take."""

    # ---- geometry ----
    def check_shape(self, spec: NormSpec, shape: tuple[int, ...]) -> None:
        raise NotImplementedError

    def feature_axis(self, spec: NormSpec, ndim: int) -> int:
        raise ValueError(f"{self.name} has no channel axis")

    def stats_view(self, spec: NormSpec, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """x viewed so that each normalized group is the set of reduced axes of the view."""
        return shape, self.reduce_axes(spec, len(shape))

    def reduce_axes(self, spec: NormSpec, ndim: int) -> tuple[int, ...]:
        raise ValueError(f"{self.name} normalizes groups of a split axis; use stats_view")

    def param_axes(self, spec: NormSpec, ndim: int) -> tuple[int, ...]:
        raise NotImplementedError

    def param_shape(self, spec: NormSpec, shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(shape[a] for a in self.param_axes(spec, len(shape)))

    def group_size(self, spec: NormSpec, shape: tuple[int, ...]) -> int:
        """How many values each statistic covers (the reduction size n)."""
        view, axes = self.stats_view(spec, shape)
        return math.prod(view[a] for a in axes)

    # ---- cases: the ordinary configurations, the stress one, non-default options ----
    def configs(self) -> list[tuple[NormSpec, tuple[int, ...]]]:
        """Ordinary (spec, shape) pairs every dtype runs."""
        raise NotImplementedError

    def stress_config(self) -> tuple[NormSpec, tuple[int, ...]]:
        """The configuration stress inputs run on first (a shape of ``configs``, compiled once): also
        the one derivatives are stressed on and the short matrix holds."""
        return self.configs()[0]

    def stress_configs(self) -> list[Config]:
        """Every configuration stress inputs run on in every dtype: the stress configuration in each
        layout the op allows, so an adapter of one layout loses none of them."""
        return self.in_every_layout([self.stress_config()])

    def short_configs(self) -> list[Config]:
        """The configurations of the short matrix (compiled modes in `normbench run`): where stress runs."""
        return self.stress_configs()

    def in_every_layout(self, configs: list[Config]) -> list[Config]:
        return configs

    def option_configs(self) -> list[tuple[NormSpec, tuple[int, ...]]]:
        """Non-default eps, momentum, affine and the like, in float32."""
        return []

    def masked_cases(self, dtype: str) -> list[Case]:
        return []

    def agreement_cases(self) -> list[Case]:
        """Every dtype on ordinary inputs and on inputs that stress the numerics, plus options."""
        out = []
        for dtype in DTYPES:
            out += [Case(spec, shape, dtype) for spec, shape in self.configs()]
            out += [Case(spec, shape, dtype, name) for spec, shape in self.stress_configs() for name in STRESS]
        out += [Case(spec, shape) for spec, shape in self.option_configs()]
        return out + self.masked_cases("float32") + self.masked_cases("float64")

    def mixed_cases(self) -> list[Case]:
        """Each framework's mixed-precision path: half-precision inputs, float32 parameters."""
        return [Case(dataclasses.replace(spec, precision="mixed"), shape, dtype)
                for dtype in ("bfloat16", "float16") for spec, shape in self.configs()]

    def mixed_running_cases(self) -> list[Case]:
        """Running statistics (float32) updated from half-precision inputs on a mixed path."""
        return [Case(dataclasses.replace(c.spec, precision="mixed"), c.shape, "bfloat16") for c in self.running_cases()]

    def ad_cases(self) -> list[Case]:
        """Forward-mode and second-order derivatives: the ordinary shapes in float32 and float64,
        a mean offset (the conditioning the bounds carry), and a mask where the op takes one."""
        out = [Case(spec, shape, dtype) for dtype in ("float32", "float64") for spec, shape in self.configs()]
        out += [Case(spec, shape, dtype, "offset1e2") for spec, shape in self.stress_configs()
                for dtype in ("float32", "float64")]
        return out + self.masked_cases("float32")[:1]

    def metamorphic_cases(self) -> list[Case]:
        """Exactly representable inputs and a negligible eps, so relations hold below rounding."""
        raise NotImplementedError

    def running_cases(self) -> list[Case]:
        """Cases whose layers keep running statistics: the train_eval suite steps them."""
        return []

    def stateless_cases(self) -> list[Case]:
        """Cases without running statistics: training and inference must be identical."""
        return []

    def independence_cases(self) -> list[Case]:
        """per_sample ops: each sample alone must equal its row of the batch."""
        return []

    def batch_one_cases(self) -> list[Case]:
        """Batch size 1 where the op is defined on it: output and gradients against the oracle."""
        return []

    def one_value_cases(self) -> list[Case]:
        """Training with one value per statistic: recorded as behaviour, whatever it is."""
        return []

    def replica_cases(self) -> list[Case]:
        """Global batches split over data-parallel replicas (ops whose statistics mix samples)."""
        return []

    def padding_cases(self, pad: str, masked: bool) -> list[Case]:
        """Padded sequences where the statistics span positions, with or without a mask."""
        return []

    def sequence_cases(self, pad: str) -> list[Case]:
        """Padded (batch, time, features) sequences, for per_token ops."""
        return []

    def varying_length_spec(self) -> NormSpec | None:
        """A (B, T, C) layer called with T changing call to call, where that is how it is used."""
        return None

    # ---- benchmarks ----
    def bench_cases(self, dtypes: tuple[str, ...], quick: bool) -> list[BenchCase]:
        return []

    def bytes_moved(self, case: BenchCase, itemsize: int) -> int:
        """Minimum traffic: every tensor read or written once. Forward reads x and writes y;
        backward also reads dy and writes dx. Parameters: γ (and β), and their gradients;
        running statistics are read in eval and read and written in training."""
        spec = case.spec()
        n = math.prod(case.shape)
        p = math.prod(self.param_shape(spec, case.shape))
        tensors = 4 if case.mode == "forward_backward" else 2
        per_param = 1 + self.has_bias
        params = per_param * (2 if case.mode == "forward_backward" else 1)
        if spec.has_running_stats:
            params += {"train": 4, "forward_backward": 4, "eval": 2}.get(case.mode, 0)
        return (tensors * n + params * p) * itemsize

    def __repr__(self) -> str:
        return f"<op {self.name}>"


class TokenOp(Op):
    """Normalizes the trailing ``normalized_ndim`` axes of each position (LayerNorm, RMSNorm);
    γ and β have the shape of those axes."""

    fields = ("eps", "affine", "normalized_ndim")
    per_token = True

    def check_shape(self, spec, shape):
        if not spec.normalized_ndim < len(shape):
            raise ValueError(
                f"{self.name} over {spec.normalized_ndim} trailing axes needs an input of rank "
                f">= {spec.normalized_ndim + 1}, got shape {shape}"
            )

    def reduce_axes(self, spec, ndim):
        return tuple(range(ndim - spec.normalized_ndim, ndim))

    def param_axes(self, spec, ndim):
        return self.reduce_axes(spec, ndim)

    def configs(self):
        """Over the last axis, and over the last two where the rank allows."""
        out = []
        for shape in ((8, 16), (4, 6, 10), (2, 3, 5, 7)):
            for k in range(1, min(2, len(shape) - 1) + 1):
                out.append((NormSpec(self.name, normalized_ndim=k), shape))
        return out

    def metamorphic_cases(self):
        spec = NormSpec(self.name, eps=NEGLIGIBLE_EPS)
        return [Case(spec, (8, 16), dtype, "quantized") for dtype in ("float32", "float64")]

    def stateless_cases(self):
        return [Case(NormSpec(self.name), (8, 16)), Case(NormSpec(self.name, normalized_ndim=2), (4, 6, 10))]

    def independence_cases(self):
        return self.stateless_cases()

    def batch_one_cases(self):
        """One row alone, and a single feature (variance 0 by construction: output β, finite gradients)."""
        return [Case(NormSpec(self.name), (1, 16)), Case(NormSpec(self.name), (4, 1))]

    def sequence_cases(self, pad):
        return [Case(NormSpec(self.name), (4, 9, 8), pad=pad)]

    def varying_length_spec(self):
        return NormSpec(self.name)


class ChannelOp(Op):
    """Statistics per channel group, γ and β per channel on the axis ``layout`` places (axis 1,
    or the last axis of a 3-D or wider channels_last input)."""

    fields = ("eps", "affine", "layout")
    channel_axis = True

    def feature_axis(self, spec, ndim):
        return ndim - 1 if spec.layout == "channels_last" and ndim > 2 else 1

    def param_axes(self, spec, ndim):
        return (self.feature_axis(spec, ndim),)

    def groups(self, spec: NormSpec, channels: int) -> int:
        """How many groups the channel axis splits into (1 for BatchNorm, C for InstanceNorm)."""
        raise NotImplementedError

    def stats_view(self, spec, shape):
        """Per sample (axis 0 kept), the channel axis split into (groups, channels per group)."""
        c = self.feature_axis(spec, len(shape))
        g = self.groups(spec, shape[c])
        view = (*shape[:c], g, shape[c] // g, *shape[c + 1 :])
        return view, tuple(a for a in range(len(view)) if a not in (0, c))

    def layouts(self, shape: tuple[int, ...]) -> tuple[str, ...]:
        return ("channels_first",) if len(shape) == 2 else ("channels_first", "channels_last")

    def in_every_layout(self, configs):
        """Each configuration, then the same channels in the other layout (its channel axis moved),
        where the shape has positions besides the batch."""
        out = []
        for spec, shape in configs:
            out.append((spec, shape))
            if len(shape) > 2:
                first = spec.layout == "channels_first"
                moved = (shape[0], *shape[2:], shape[1]) if first else (shape[0], shape[-1], *shape[1:-1])
                out.append((dataclasses.replace(spec, layout="channels_last" if first else "channels_first"), moved))
        return out

    def metamorphic_cases(self):
        """The op's metamorphic configuration in each layout."""
        configs = self.in_every_layout([self.metamorphic_config()])
        return [Case(spec, shape, dtype, "quantized") for spec, shape in configs for dtype in ("float32", "float64")]

    def metamorphic_config(self) -> Config:
        raise NotImplementedError
