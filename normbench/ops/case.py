"""What one check or one benchmark runs on: a layer configuration, a shape, a dtype, an input.

A case's id names everything that differs from the defaults and seeds every array it uses,
so a record's id regenerates exactly the arrays its check saw.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from . import inputs, registry
from .spec import NormSpec

PADDING = {"zeros": 0.0, "junk": 1e4}


@dataclass(frozen=True)
class CaseArrays:
    """Everything besides x that a check feeds a layer or the oracle, regenerated from the case's seed.

    Parameters a layer does not have (γ, β without ``affine``; β of an op without bias) are None,
    so a check cannot feed an array the layer never had."""

    gamma: np.ndarray | None
    beta: np.ndarray | None
    running_mean: np.ndarray
    running_var: np.ndarray
    dy: np.ndarray  # the upstream gradient of a VJP
    tx: np.ndarray  # forward-mode tangents: of x, γ and β
    tgamma: np.ndarray | None
    tbeta: np.ndarray | None
    v: np.ndarray  # the second-order direction
    mask: np.ndarray | None  # what the layer is given (None where the case is not masked)
    valid: np.ndarray  # which positions hold real values (all of them without padding)


def _spec_parts(spec: NormSpec, shape: tuple[int, ...]) -> list[str]:
    """The spec's non-default fields, in the order ids have always named them."""
    parts = []
    if spec.layout_of(shape):
        parts.append(spec.layout)
    if spec.normalized_ndim != 1:
        parts.append(f"last{spec.normalized_ndim}")
    if spec.groups is not None:
        parts.append(f"groups{spec.groups}")
    if spec.eps != NormSpec.eps:
        parts.append(f"eps{spec.eps:g}")
    if spec.momentum != NormSpec.momentum:
        parts.append(f"momentum{spec.momentum:g}")
    if not spec.affine:
        parts.append("noaffine")
    if spec.running_stats:
        parts.append("running")
    if spec.precision:
        parts.append(spec.precision)
    return parts


@dataclass(frozen=True)
class Case:
    """One input to one layer configuration; its id seeds every array it uses."""

    spec: NormSpec
    shape: tuple[int, ...]
    dtype: str = "float32"
    input: str = "normal"
    masked: bool = False  # statistics over a per-position mask (padded sequences), where the op takes one
    pad: str | None = None  # fill masked-out positions: "zeros" or "junk" (1e4); mask not passed unless masked
    # Data-parallel replicas: how many samples of the batch each one holds (None: one device).
    # The case's arrays are the global batch, split along axis 0 in this order.
    replicas: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        self.spec.check_shape(self.shape)
        if self.replicas is not None:
            if any(int(b) < 1 for b in self.replicas) or sum(self.replicas) != self.shape[0]:
                raise ValueError(f"replica batches {self.replicas} must be positive and add up to the batch "
                                 f"{self.shape[0]} of shape {self.shape}")
            if self.spec.kind.per_sample:
                raise ValueError(f"{self.spec.op} never mixes samples: replicas have nothing to synchronize")
        if self.masked and not self.spec.kind.maskable:
            masked = [o.name for o in registry.all() if o.maskable]
            raise ValueError(f"{self.spec.op} takes no mask (a mask applies to {', '.join(masked)})")
        if self.pad not in (None, *PADDING):
            raise ValueError(f"unknown padding {self.pad!r}; expected one of {', '.join(PADDING)}")

    @classmethod
    def from_record(cls, row: dict) -> Case:
        """The case a result record came from: same spec, shape, dtype and input, so
        ``case.data()`` regenerates exactly the arrays that check used."""
        params = dict(row["params"])
        params.pop("op", None)
        masked, pad = params.pop("masked", False), params.pop("pad", None)
        replicas = params.pop("replicas", None)
        known = {f.name for f in fields(NormSpec)}
        spec = NormSpec(op=row["op"], **{k: v for k, v in params.items() if k in known})
        case = cls(spec, tuple(row["shape"]), row["dtype"], row["input"], masked, pad,
                   None if replicas is None else tuple(replicas))
        if case.id != row["case"]:
            raise ValueError(f"record of case {row['case']!r} rebuilds as {case.id!r}")
        return case

    @property
    def layout(self) -> str | None:
        return self.spec.layout_of(self.shape)

    @property
    def id(self) -> str:
        parts = [self.spec.op, "x".join(map(str, self.shape)), self.dtype, self.input]
        parts += _spec_parts(self.spec, self.shape)
        if self.masked:
            parts.append("masked")
        if self.pad:
            parts.append(f"pad_{self.pad}")
        if self.replicas:
            parts.append("replicas" + "+".join(map(str, self.replicas)))
        return "-".join(parts)

    def __str__(self) -> str:
        return self.id

    @property
    def seed(self) -> int:
        return inputs.seed_for(self.id)

    def params(self) -> dict:
        """What records carry as ``params``: the spec's fields, plus the mask, padding and replicas."""
        extra = {"replicas": list(self.replicas)} if self.replicas else {}
        return {**self.spec.to_dict(), "masked": self.masked, "pad": self.pad, **extra}

    def describe(self) -> dict:
        """What a record of this case says about it (``records.build``)."""
        return {"op": self.spec.op, "dtype": self.dtype, "shape": list(self.shape), "layout": self.layout,
                "input": self.input, "seed": self.seed, "params": self.params(), "case": self.id}

    def data(self) -> tuple[np.ndarray, CaseArrays]:
        """The input and the arrays around it (γ, β, running statistics, dy, tangents, mask)."""
        spec = self.spec
        pshape = spec.param_shape(self.shape)
        # a mixed-precision layer keeps its parameters and running statistics in float32
        p = inputs.params(pshape, "float32" if spec.precision == "mixed" else self.dtype, self.seed)
        p.update(inputs.tangents(self.shape, pshape, self.dtype, self.seed))
        if not spec.affine:
            p["gamma"] = p["beta"] = p["tgamma"] = p["tbeta"] = None
        if not spec.kind.has_bias:
            p["beta"] = p["tbeta"] = None
        x = inputs.make(self.input, self.shape, self.dtype, self.seed, spec.stats_view(self.shape))
        valid = self.valid()
        if self.pad:
            x = np.where(self.spread(valid), x, np.asarray(PADDING[self.pad], x.dtype))
        return x, CaseArrays(**p, dy=inputs.upstream(self.shape, self.dtype, self.seed),
                             mask=valid if self.masked else None, valid=valid)

    def split(self, a: np.ndarray | None) -> list[np.ndarray | None]:
        """A global-batch array (x, dy, a mask) cut into the replicas' shards along axis 0."""
        if self.replicas is None:
            raise ValueError(f"{self} has no replicas")
        if a is None:
            return [None] * len(self.replicas)
        return np.split(np.asarray(a), np.cumsum(self.replicas)[:-1])

    def valid(self) -> np.ndarray | None:
        """Which positions hold real data (a prefix of axis 1 per sample), if any are padding."""
        if not (self.masked or self.pad):
            return None
        return inputs.mask(self.spec.position_shape(self.shape), self.seed)

    def spread(self, valid: np.ndarray) -> np.ndarray:
        """A position mask broadcast over the feature axes, to select elements of x."""
        return np.expand_dims(valid, self.spec.param_axes(len(self.shape)))


@dataclass(frozen=True)
class BenchCase:
    """One op, mode and logical shape (channel ops' shapes are given as N, C, H, W), with the
    op's options (GroupNorm's groups) as (field, value) pairs."""

    op: str
    mode: str
    shape: tuple[int, ...]
    dtype: str = "float32"
    group: str = "default"  # "default" shapes, or the "sweep" that grows ~4x per step
    options: tuple[tuple[str, object], ...] = ()

    @property
    def id(self) -> str:
        extra = "".join(f"-{k}{v}" for k, v in self.options)
        return f"{self.op}-{self.mode}-{'x'.join(map(str, self.shape))}-{self.dtype}{extra}-{self.group}"

    def __str__(self) -> str:
        return self.id

    def spec(self, layout: str = "channels_first") -> NormSpec:
        kind = registry.get(self.op)
        return NormSpec(self.op, layout=layout if kind.channel_axis else "channels_first", **dict(self.options))

    def describe(self, spec: NormSpec, shape: tuple[int, ...]) -> dict:
        """What a record of this case says about it, as run in ``spec``'s layout and ``shape``."""
        return {"op": self.op, "dtype": self.dtype, "shape": list(shape),
                "layout": spec.layout_of(shape), "input": "normal",
                "seed": inputs.seed_for(self.id), "case": self.id,
                "params": {**spec.to_dict(), "group": self.group, "logical_shape": list(self.shape)}}
