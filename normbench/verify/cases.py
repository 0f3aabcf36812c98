"""The case matrices the suites and the project's own tests share, gathered from every op.

Each op module owns its cases (``normbench.ops``); this module only collects them, so a new
op's cases reach every suite without touching a suite. Stress inputs reuse the shapes of the
ordinary cases, so frameworks that compile per shape (JAX) compile each configuration once.
"""

from __future__ import annotations

import dataclasses

from .. import ops
from ..ops.case import Case

MATRICES = ("full", "short")
SHORT_DTYPES = ("float32", "bfloat16")  # the single precision and the half users compile for


def _gather(method: str, *args) -> list[Case]:
    return [case for op in ops.all() for case in getattr(op, method)(*args)]


def agreement_cases() -> list[Case]:
    """Every op in every dtype, on ordinary and numerically hard inputs, with non-default options."""
    return _gather("agreement_cases")


def mixed_cases() -> list[Case]:
    """Every op on its frameworks' mixed-precision paths (half inputs, float32 parameters)."""
    return _gather("mixed_cases")


def mixed_running_cases() -> list[Case]:
    return _gather("mixed_running_cases")


def ad_cases() -> list[Case]:
    """Forward-mode and second-order derivatives of every op."""
    return _gather("ad_cases")


def metamorphic_cases() -> list[Case]:
    return _gather("metamorphic_cases")


def train_eval_cases() -> list[Case]:
    """Layers with running statistics, stepped through training and inference."""
    return _gather("running_cases")


def stateless_cases() -> list[Case]:
    """Layers without running statistics: training and inference must be bit-identical."""
    return _gather("stateless_cases")


def independence_cases() -> list[Case]:
    """Ops whose statistics never mix samples: each sample alone equals its row of the batch."""
    return _gather("independence_cases")


def batch_one_cases() -> list[Case]:
    return _gather("batch_one_cases")


def one_value_cases() -> list[Case]:
    """Training with one value per statistic (BatchNorm at batch 1 without spatial extent)."""
    return _gather("one_value_cases")


def sequence_cases(pad: str) -> list[Case]:
    """Padded (batch, time, features) sequences of per-token ops."""
    return _gather("sequence_cases", pad)


def padding_cases(pad: str, masked: bool) -> list[Case]:
    """Padded sequences under ops whose statistics span positions, with or without a mask."""
    return _gather("padding_cases", pad, masked)


def replica_cases() -> list[Case]:
    """Global batches split over data-parallel replicas, for synchronized statistics."""
    return _gather("replica_cases")


def varying_length_cases() -> list[Case]:
    return [Case(spec, (4, 9, 8)) for op in ops.all() if (spec := op.varying_length_spec()) is not None]


def in_short_matrix(case: Case) -> bool:
    """The short matrix, which `normbench run` verifies the compiled modes it adds on: where each op's
    stress inputs run (``Op.short_configs``: the stress configuration in each layout, and BatchNorm's
    4-D images) in float32 and bfloat16, with ordinary inputs, the mixed path, masks, JVP and second
    order, train and eval. A few shapes per op, so a compiler compiles each configuration once per
    dtype, and every input that has found a compiler's variance algorithm."""
    configs = ops.get(case.spec.op).short_configs()
    return (case.dtype in SHORT_DTYPES and case.replicas is None
            and (dataclasses.replace(case.spec, precision=None), case.shape) in configs)
