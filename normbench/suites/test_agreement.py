"""Agreement with the float64 reference: forward (train and eval), running stats, gradients."""

from __future__ import annotations

import pytest

from normbench import checks
from normbench.cases import batch_norm_cases, layer_norm_cases, masked_batch_norm_cases

CASES = layer_norm_cases() + batch_norm_cases() + masked_batch_norm_cases()


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward(norm_adapter, case, training, norm_record):
    norm_record(checks.forward(norm_adapter, case, training=training))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradients(norm_adapter, case, norm_record):
    norm_record(checks.gradients(norm_adapter, case))


@pytest.mark.parametrize("case", batch_norm_cases() + masked_batch_norm_cases(), ids=str)
def test_running_stats(norm_adapter, case, norm_record):
    norm_record(checks.running_stats(norm_adapter, case))
