"""Agreement with the float64 reference for every op, across dtypes, layouts and numerically
hard inputs, plus metamorphic relations that need no reference at all."""

from __future__ import annotations

import pytest

from normbench.results.kinds import Suite
from normbench.verify import checks, metamorphic
from normbench.verify.cases import ad_cases, agreement_cases, metamorphic_cases, mixed_cases

CASES = agreement_cases() + mixed_cases()
RUNNING = [c for c in CASES if c.spec.has_running_stats]


@pytest.mark.parametrize("case", CASES, ids=str)
def test_forward_train(norm_adapter, case, norm_record):
    norm_record(checks.forward(norm_adapter, case, training=True, suite=Suite.AGREEMENT))


@pytest.mark.parametrize("case", RUNNING, ids=str)
def test_forward_eval(norm_adapter, case, norm_record):
    norm_record(checks.forward(norm_adapter, case, training=False, suite=Suite.AGREEMENT))


@pytest.mark.parametrize("case", CASES, ids=str)
def test_gradients(norm_adapter, case, norm_record):
    norm_record(checks.gradients(norm_adapter, case, suite=Suite.AGREEMENT))


@pytest.mark.parametrize("case", RUNNING, ids=str)
def test_running_stats(norm_adapter, case, norm_record):
    norm_record(checks.running_stats(norm_adapter, case, suite=Suite.AGREEMENT))


@pytest.mark.parametrize("case", metamorphic_cases(), ids=str)
def test_scale_shift_invariance(norm_adapter, case, norm_record):
    norm_record(metamorphic.scale_shift(norm_adapter, case, suite=Suite.AGREEMENT))


@pytest.mark.parametrize("case", ad_cases(), ids=str)
def test_jvp(norm_adapter, case, norm_record):
    norm_record(checks.jvp(norm_adapter, case, suite=Suite.AGREEMENT))


@pytest.mark.parametrize("case", ad_cases(), ids=str)
def test_second_order(norm_adapter, case, norm_record):
    norm_record(checks.second_order(norm_adapter, case, suite=Suite.AGREEMENT))
