"""A batch of one. Norms whose statistics stay within a sample (LayerNorm, RMSNorm, GroupNorm,
InstanceNorm) must agree at batch 1 exactly as at any batch, and each sample alone must equal
its row of the batch; BatchNorm training with one value per channel has no variance, so what a
framework does there is recorded, not judged."""

from __future__ import annotations

import pytest

from normbench.results.kinds import Suite
from normbench.verify import behaviour, checks, metamorphic
from normbench.verify.cases import batch_one_cases, independence_cases, one_value_cases

SUITE = Suite.BATCH_SIZE_ONE


@pytest.mark.parametrize("case", one_value_cases(), ids=str)
def test_train_one_value_per_channel(norm_adapter, case, norm_record):
    norm_record(behaviour.batch_of_one(norm_adapter, case, suite=SUITE))


@pytest.mark.parametrize("case", one_value_cases(), ids=str)
def test_eval_one_sample(norm_adapter, case, norm_record):
    norm_record(checks.forward(norm_adapter, case, training=False, suite=SUITE))


@pytest.mark.parametrize("case", batch_one_cases(), ids=str)
def test_train_one_sample(norm_adapter, case, norm_record):
    running = checks.running_stats(norm_adapter, case, suite=SUITE) if case.spec.has_running_stats else []
    norm_record(checks.forward(norm_adapter, case, training=True, suite=SUITE) + running
                + checks.gradients(norm_adapter, case, suite=SUITE))


@pytest.mark.parametrize("case", independence_cases(), ids=str)
def test_one_sample_equals_its_row(norm_adapter, case, norm_record):
    norm_record(metamorphic.sample_independence(norm_adapter, case, suite=SUITE))
