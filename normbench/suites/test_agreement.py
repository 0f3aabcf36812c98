"""Agreement with the float64 reference across dtypes, layouts and numerically hard inputs,
plus metamorphic relations that need no reference at all."""

from __future__ import annotations

import pytest

from normbench import checks, metamorphic
from normbench.cases import LN, agreement_cases, metamorphic_cases
from normbench.checks import Case
from normbench.spec import NormSpec

CASES = agreement_cases()
BN_CASES = [c for c in CASES if c.spec.op == "batch_norm"]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_train(norm_adapter, case, norm_record):
    norm_record(checks.forward(norm_adapter, case, training=True, suite="agreement"))


@pytest.mark.parametrize("case", BN_CASES, ids=str)
def test_forward_eval(norm_adapter, case, norm_record):
    norm_record(checks.forward(norm_adapter, case, training=False, suite="agreement"))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradients(norm_adapter, case, norm_record):
    norm_record(checks.gradients(norm_adapter, case, suite="agreement"))


@pytest.mark.parametrize("case", BN_CASES, ids=str)
def test_running_stats(norm_adapter, case, norm_record):
    norm_record(checks.running_stats(norm_adapter, case, suite="agreement"))


@pytest.mark.parametrize("case", metamorphic_cases(), ids=str)
def test_scale_shift_invariance(norm_adapter, case, norm_record):
    norm_record(metamorphic.scale_shift(norm_adapter, case, suite="agreement"))


@pytest.mark.parametrize("case", [Case(LN, (8, 16)), Case(NormSpec("layer_norm", normalized_ndim=2), (4, 6, 10))],
                         ids=str)
def test_layer_norm_sample_independence(norm_adapter, case, norm_record):
    norm_record(metamorphic.sample_independence(norm_adapter, case, suite="agreement"))
