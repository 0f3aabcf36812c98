"""A batch of one: what BatchNorm training does with one value per channel (recorded, not
judged), and that everything with more than one value per statistic still agrees."""

from __future__ import annotations

import pytest

from normbench import behaviour, checks, metamorphic
from normbench.checks import Case
from normbench.spec import NormSpec

SUITE = "batch_size_one"
BN = NormSpec("batch_norm")


def test_train_one_value_per_channel(norm_adapter, norm_record):
    norm_record(behaviour.batch_of_one(norm_adapter, Case(BN, (1, 6)), suite=SUITE))


@pytest.mark.parametrize("case", [Case(BN, (1, 3, 4, 5)), Case(NormSpec("batch_norm", layout="channels_last"),
                                                                (1, 4, 5, 3))], ids=str)
def test_train_one_sample_with_spatial_extent(norm_adapter, case, norm_record):
    norm_record(checks.forward(norm_adapter, case, training=True, suite=SUITE)
                + checks.running_stats(norm_adapter, case, suite=SUITE)
                + checks.gradients(norm_adapter, case, suite=SUITE))


def test_eval_one_sample(norm_adapter, norm_record):
    norm_record(checks.forward(norm_adapter, Case(BN, (1, 6)), training=False, suite=SUITE))


def test_layer_norm_one_sample_equals_its_row(norm_adapter, norm_record):
    norm_record(metamorphic.sample_independence(norm_adapter, Case(NormSpec("layer_norm"), (5, 16)), suite=SUITE))


def test_layer_norm_single_feature(norm_adapter, norm_record):
    """Variance 0 by construction: the output is β, and the gradients are finite."""
    case = Case(NormSpec("layer_norm"), (4, 1))
    norm_record(checks.forward(norm_adapter, case, training=True, suite=SUITE)
                + checks.gradients(norm_adapter, case, suite=SUITE))
