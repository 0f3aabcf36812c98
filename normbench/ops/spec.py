"""The framework-neutral description of one norm layer; adapters translate it.

Which fields a spec may set, and what its shapes mean, is the op's business (``normbench.ops``):
a field that does not apply to the op must keep its default, so a spec never says something
its layer would silently ignore.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from . import registry

if TYPE_CHECKING:
    from .base import Op

LAYOUTS = ("channels_first", "channels_last")
PRECISIONS = ("mixed",)  # float32 parameters and statistics around half-precision inputs


@dataclass(frozen=True)
class NormSpec:
    """One norm layer, in normbench's canonical conventions.

    momentum is the weight of the *new* batch statistic (torch's convention):
    ``running = (1 - momentum) * running + momentum * batch``. Keras, Flax and ONNX
    call ``1 - momentum`` their momentum; adapters convert.

    layout picks the channel axis of the ops that have one: 1 (channels_first, NC...) or -1
    (channels_last, N...C). normalized_ndim is how many trailing axes LayerNorm and RMSNorm
    normalize; groups is GroupNorm's group count; running_stats asks InstanceNorm to track
    running statistics (BatchNorm always does). precision "mixed" runs the layer on its
    framework's mixed-precision path: parameters and running statistics in float32, inputs in
    half precision, compute as the path documents (autocast, a Keras dtype policy, flax's
    dtype/param_dtype, ONNX's stash_type); None is the layer in one dtype.
    """

    op: str
    eps: float = 1e-5
    momentum: float = 0.1
    affine: bool = True
    layout: str = "channels_first"
    normalized_ndim: int = 1
    groups: int | None = None
    running_stats: bool = False
    precision: str | None = None

    def __post_init__(self) -> None:
        kind = registry.get(self.op)  # ValueError listing the known ops
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; expected one of {', '.join(LAYOUTS)}")
        if not self.eps >= 0:
            raise ValueError(f"eps must be >= 0, got {self.eps!r}")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1] (weight of the new batch), got {self.momentum!r}")
        if self.normalized_ndim < 1:
            raise ValueError(f"normalized_ndim must be >= 1, got {self.normalized_ndim!r}")
        if self.precision not in (None, *PRECISIONS):
            raise ValueError(f"unknown precision {self.precision!r}; expected one of {', '.join(PRECISIONS)} or None")
        for f in fields(self):
            if f.name not in ("op", "precision", *kind.fields) and getattr(self, f.name) != f.default:
                applies = [o.name for o in registry.all() if f.name in o.fields]
                raise ValueError(f"{f.name}={getattr(self, f.name)!r} does not apply to {self.op}; "
                                 f"it applies to {', '.join(applies) or 'no op'}")
        kind.validate(self)

    @property
    def kind(self) -> Op:
        """The op object that owns this spec's shape rules, oracle pieces and flags."""
        return registry.get(self.op)

    @property
    def has_running_stats(self) -> bool:
        return self.kind.tracks_running_stats(self)

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError naming the shape if this layer cannot take it."""
        shape = tuple(shape)
        if any(int(d) < 1 for d in shape):
            raise ValueError(f"shape {shape} has an empty or negative dimension")
        self.kind.check_shape(self, shape)

    def layout_of(self, shape: tuple[int, ...]) -> str | None:
        """The layout an input of ``shape`` is in, where it has one to be in: a channel op's
        input with positions besides the batch (2-D inputs have their channels at axis 1 either way)."""
        return self.layout if self.kind.channel_axis and len(shape) > 2 else None

    def feature_axis(self, ndim: int) -> int:
        """The channel axis of a channel op, as a non-negative index."""
        return self.kind.feature_axis(self, ndim)

    def stats_view(self, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(shape x is viewed as, axes of that view statistics are taken over)."""
        return self.kind.stats_view(self, tuple(shape))

    def reduce_axes(self, ndim: int) -> tuple[int, ...]:
        """The axes of x statistics are taken over, for ops whose groups are whole axes
        (every op but GroupNorm and InstanceNorm, which split the channel axis)."""
        return self.kind.reduce_axes(self, ndim)

    def param_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of γ and β (and of running statistics)."""
        return self.kind.param_shape(self, tuple(shape))

    def param_axes(self, ndim: int) -> tuple[int, ...]:
        """The axes γ and β vary along."""
        return self.kind.param_axes(self, ndim)

    def broadcast_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape that makes γ, β and running statistics broadcast against x."""
        axes = self.param_axes(len(shape))
        return tuple(d if a in axes else 1 for a, d in enumerate(shape))

    def position_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """x's shape without the feature axes: what a mask or a padding pattern marks."""
        axes = self.param_axes(len(shape))
        return tuple(d for a, d in enumerate(shape) if a not in axes)

    def mask_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        return self.position_shape(shape)

    def to_dict(self) -> dict:
        """The op and the fields that apply to it: what records carry and cases rebuild from."""
        kind = self.kind
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name in ("op", *kind.fields)}
        return {**out, "precision": self.precision} if self.precision else out
