"""Training vs inference: running statistics over several steps, measured conventions,
eval from running statistics, state across mode switches, and each layer's defaults."""

from __future__ import annotations

import pytest

from normbench import behaviour
from normbench.cases import train_eval_cases
from normbench.checks import Case
from normbench.spec import OPS, NormSpec


@pytest.mark.parametrize("op", OPS)
def test_defaults(norm_adapter, op, norm_record):
    norm_record(behaviour.defaults(norm_adapter, Case(NormSpec(op), (2, 4))))


@pytest.mark.parametrize("case", train_eval_cases(), ids=str)
def test_running_statistics_over_steps(norm_adapter, case, norm_record):
    norm_record(behaviour.train_steps(norm_adapter, case))


@pytest.mark.parametrize("case", [Case(NormSpec("layer_norm"), (8, 16)),
                                  Case(NormSpec("layer_norm", normalized_ndim=2), (4, 6, 10))], ids=str)
def test_layer_norm_train_equals_eval(norm_adapter, case, norm_record):
    norm_record(behaviour.layer_norm_modes_identical(norm_adapter, case))
