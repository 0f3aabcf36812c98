"""Padded variable-length sequences (batch, time, channels): per-token norms (LayerNorm,
RMSNorm) must ignore padding; BatchNorm without a mask cannot (how much it shifts is
recorded), and with a mask must."""

from __future__ import annotations

import pytest

from normbench.results.kinds import Suite
from normbench.verify import behaviour, checks, metamorphic
from normbench.verify.cases import padding_cases, sequence_cases, varying_length_cases

SUITE = Suite.SEQUENCE_LENGTHS
PADS = ["zeros", "junk"]


def _each_pad(gather, *args):
    return [case for pad in PADS for case in gather(pad, *args)]


@pytest.mark.parametrize("case", _each_pad(sequence_cases), ids=str)
def test_valid_tokens_equal_each_sequence_alone(norm_adapter, case, norm_record):
    norm_record(metamorphic.sequence_alone(norm_adapter, case, suite=SUITE)
                + checks.forward(norm_adapter, case, training=True, suite=SUITE))


@pytest.mark.parametrize("case", _each_pad(padding_cases, False), ids=str)
def test_padding_shifts_unmasked_statistics(norm_adapter, case, norm_record):
    norm_record(behaviour.padding_shift(norm_adapter, case, suite=SUITE))


@pytest.mark.parametrize("case", _each_pad(padding_cases, True), ids=str)
def test_with_mask(norm_adapter, case, norm_record):
    norm_record(checks.forward(norm_adapter, case, training=True, suite=SUITE)
                + checks.running_stats(norm_adapter, case, suite=SUITE)
                + checks.gradients(norm_adapter, case, suite=SUITE))


@pytest.mark.parametrize("case", varying_length_cases(), ids=str)
def test_lengths_varying_call_to_call(norm_adapter, case, norm_record):
    norm_record(behaviour.varying_lengths(norm_adapter, case, suite=SUITE))
