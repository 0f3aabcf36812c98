"""Padded variable-length sequences (batch, time, channels): LayerNorm must ignore padding,
BatchNorm without a mask cannot (how much it shifts is recorded), and with a mask must."""

from __future__ import annotations

import pytest

from normbench import behaviour, checks, metamorphic
from normbench.cases import BN_LAST, LN, sequence_cases
from normbench.checks import Case

SUITE = "sequence_lengths"
PADS = ["zeros", "junk"]


@pytest.mark.parametrize("pad", PADS)
def test_layer_norm_valid_tokens_equal_each_sequence_alone(norm_adapter, pad, norm_record):
    case = sequence_cases(pad)[0]
    norm_record(metamorphic.sequence_alone(norm_adapter, case, suite=SUITE)
                + checks.forward(norm_adapter, case, training=True, suite=SUITE))


@pytest.mark.parametrize("pad", PADS)
def test_batch_norm_padding_shifts_unmasked_statistics(norm_adapter, pad, norm_record):
    norm_record(behaviour.padding_shift(norm_adapter, Case(BN_LAST, (4, 9, 8), pad=pad), suite=SUITE))


@pytest.mark.parametrize("pad", PADS)
def test_batch_norm_with_mask(norm_adapter, pad, norm_record):
    case = sequence_cases(pad, masked=True)[0]
    norm_record(checks.forward(norm_adapter, case, training=True, suite=SUITE)
                + checks.running_stats(norm_adapter, case, suite=SUITE)
                + checks.gradients(norm_adapter, case, suite=SUITE))


@pytest.mark.parametrize("spec", [LN, BN_LAST], ids=lambda s: s.op)
def test_lengths_varying_call_to_call(norm_adapter, spec, norm_record):
    norm_record(behaviour.varying_lengths(norm_adapter, Case(spec, (4, 9, 8)), suite=SUITE))
