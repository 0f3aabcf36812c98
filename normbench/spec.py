"""The framework-neutral description of one norm layer; adapters translate it."""

from __future__ import annotations

from dataclasses import asdict, dataclass

OPS = ("layer_norm", "batch_norm")
LAYOUTS = ("channels_first", "channels_last")


@dataclass(frozen=True)
class NormSpec:
    """One norm layer, in normbench's canonical conventions.

    momentum is the weight of the *new* batch statistic (torch's convention):
    ``running = (1 - momentum) * running + momentum * batch``. Keras, Flax and ONNX
    call ``1 - momentum`` their momentum; adapters convert.

    layout picks the BatchNorm feature axis: 1 (channels_first, NC...) or -1
    (channels_last, N...C). normalized_ndim is how many trailing axes LayerNorm
    normalizes; γ and β have the shape of those axes.
    """

    op: str
    eps: float = 1e-5
    momentum: float = 0.1
    affine: bool = True
    layout: str = "channels_first"
    normalized_ndim: int = 1

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown op {self.op!r}; expected one of {', '.join(OPS)}")
        if self.layout not in LAYOUTS:
            raise ValueError(f"unknown layout {self.layout!r}; expected one of {', '.join(LAYOUTS)}")
        if not self.eps >= 0:
            raise ValueError(f"eps must be >= 0, got {self.eps!r}")
        if not 0 <= self.momentum <= 1:
            raise ValueError(f"momentum must be in [0, 1] (weight of the new batch), got {self.momentum!r}")
        if self.normalized_ndim < 1:
            raise ValueError(f"normalized_ndim must be >= 1, got {self.normalized_ndim!r}")

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ValueError naming the shape if this layer cannot take it."""
        shape = tuple(shape)
        if any(int(d) < 1 for d in shape):
            raise ValueError(f"shape {shape} has an empty or negative dimension")
        if self.op == "batch_norm" and len(shape) not in (2, 3, 4):
            raise ValueError(f"batch_norm takes 2-D, 3-D or 4-D inputs, got shape {shape}")
        if self.op == "layer_norm" and not self.normalized_ndim < len(shape):
            raise ValueError(
                f"layer_norm over {self.normalized_ndim} trailing axes needs an input of rank "
                f">= {self.normalized_ndim + 1}, got shape {shape}"
            )

    def feature_axis(self, ndim: int) -> int:
        """BatchNorm's channel axis, as a non-negative index."""
        return ndim - 1 if self.layout == "channels_last" and ndim > 2 else 1

    def reduce_axes(self, ndim: int) -> tuple[int, ...]:
        """The axes statistics are taken over."""
        if self.op == "layer_norm":
            return tuple(range(ndim - self.normalized_ndim, ndim))
        c = self.feature_axis(ndim)
        return tuple(a for a in range(ndim) if a != c)

    def param_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of γ and β (and BatchNorm's running statistics)."""
        if self.op == "layer_norm":
            return tuple(shape[len(shape) - self.normalized_ndim :])
        return (shape[self.feature_axis(len(shape))],)

    def param_axes(self, ndim: int) -> tuple[int, ...]:
        """The axes γ and β vary along."""
        if self.op == "layer_norm":
            return self.reduce_axes(ndim)
        return (self.feature_axis(ndim),)

    def broadcast_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape that makes γ, β and running statistics broadcast against x."""
        if self.op == "layer_norm":
            return (1,) * (len(shape) - self.normalized_ndim) + self.param_shape(shape)
        out = [1] * len(shape)
        c = self.feature_axis(len(shape))
        out[c] = shape[c]
        return tuple(out)

    def mask_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """A BatchNorm mask marks positions: x's shape without the feature axis."""
        c = self.feature_axis(len(shape))
        return tuple(d for i, d in enumerate(shape) if i != c)

    def to_dict(self) -> dict:
        return asdict(self)
