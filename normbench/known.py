"""Known upstream divergences: failures we expect, each with its reason and upstream link.

A failing (or erroring) record that an entry matches is recorded as ``known`` and its test
is an xfail, so the default run passes while the report still lists it. Strictness is kept
per entry: if an entry matched records in a run but none of them failed, the divergence no
longer reproduces (fixed upstream?) and the run fails, so somebody updates this list.
Behaviour differences that follow a framework's own documented convention (torch's
unbiased running variance, what a batch of one does) are facts, not entries here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Row = dict[str, Any]


@dataclass(frozen=True)
class Known:
    key: str
    reason: str
    link: str
    applies: Callable[[Row], bool]  # does this record fall under the divergence?

    def matches(self, row: Row) -> bool:
        return bool(self.applies(row))


def _in(row: Row, **allowed) -> bool:
    return all(row.get(field) in values for field, values in allowed.items())


def _params(row: Row) -> dict:
    return row.get("params") or {}


_FLAX = ("flax.linen", "flax.nnx")
_WIDE = ("float32", "float64")
_KERAS = ("keras[tensorflow]",)

KNOWN: tuple[Known, ...] = (
    Known(
        "flax-fast-variance",
        "flax's LayerNorm and BatchNorm default to use_fast_variance=True, var = E[x²] − E[x]², which "
        "cancels when |mean| ≫ std: the error grows as κ², beyond the two-pass bound (κ = |mean|/std)",
        "https://github.com/google/flax/blob/main/flax/linen/normalization.py",
        lambda r: _in(r, adapter=_FLAX, dtype=_WIDE,
                      input=("offset1e2", "offset1e4", "tiny_variance", "constant"),
                      check=("forward_train", "grad_dx", "grad_dgamma", "running_var")),
    ),
    Known(
        "flax-nnx-float32-batch-stats",
        "flax.nnx.BatchNorm creates its running mean and variance as float32 whatever param_dtype is, "
        "so float64 running statistics are rounded to float32",
        "https://github.com/google/flax/blob/main/flax/nnx/nn/normalization.py",
        lambda r: _in(r, adapter=("flax.nnx",), dtype=("float64",), check=("running_mean", "running_var")),
    ),
    Known(
        "onnx-float32-attributes",
        "ONNX float attributes are 32-bit: epsilon and momentum reach a float64 kernel rounded to "
        "float32 (momentum 0.9 becomes 0.89999998)",
        "https://github.com/onnx/onnx/issues/3261",
        lambda r: _in(r, adapter=("onnxruntime",), dtype=("float64",),
                      check=("forward_train", "forward_eval", "running_mean", "running_var")),
    ),
    Known(
        "keras-masked-moments-epsilon",
        "Keras's masked BatchNorm moments divide by sum(mask) + keras.config.epsilon() (1e-7): a "
        "relative error of ~1e-7/count, visible at float64",
        "https://github.com/keras-team/keras/blob/master/keras/src/layers/normalization/batch_normalization.py",
        lambda r: _in(r, adapter=_KERAS, dtype=("float64",)) and _params(r).get("masked")
        and r.get("layout") != "channels_first",
    ),
    Known(
        "keras-mask-last-axis",
        "Keras's masked BatchNorm expands the mask on the last axis whatever `axis` is, so "
        "channels-first inputs with a mask raise or are weighted wrongly",
        "https://github.com/keras-team/keras/issues/19848",
        lambda r: _in(r, adapter=_KERAS, layout=("channels_first",)) and _params(r).get("masked"),
    ),
    Known(
        "torch-half-batchnorm-overflow",
        "torch's CPU BatchNorm in float16 overflows to inf on channels-last (strided) inputs near the "
        "float16 limit (~6e4), where a contiguous copy of the same input does not: that kernel keeps an "
        "intermediate in half precision (PR 126525 widened var_sum on another path)",
        "https://github.com/pytorch/pytorch/pull/126525",
        lambda r: _in(r, adapter=("torch",), dtype=("float16",), input=("large",), op=("batch_norm",),
                      layout=("channels_last",)),
    ),
)


def lookup(row: Row) -> Known | None:
    """The first known divergence that covers this record, if any."""
    return next((k for k in KNOWN if k.matches(row)), None)
