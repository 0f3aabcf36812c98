"""Training vs inference: running statistics over several steps, measured conventions,
eval from running statistics, state across mode switches, and each layer's defaults."""

from __future__ import annotations

import pytest

from normbench import ops
from normbench.verify import behaviour
from normbench.verify.cases import mixed_running_cases, stateless_cases, train_eval_cases


@pytest.mark.parametrize("op", ops.names())
def test_defaults(norm_adapter, op, norm_record):
    norm_record(behaviour.defaults(norm_adapter, op))


@pytest.mark.parametrize("case", train_eval_cases() + mixed_running_cases(), ids=str)
def test_running_statistics_over_steps(norm_adapter, case, norm_record):
    norm_record(behaviour.train_steps(norm_adapter, case))


@pytest.mark.parametrize("case", stateless_cases(), ids=str)
def test_train_equals_eval(norm_adapter, case, norm_record):
    norm_record(behaviour.modes_identical(norm_adapter, case))
