"""Synchronized BatchNorm across data-parallel replicas, on each framework's own engine.

JAX reads its host device count once, when its CPU backend starts: this module asks for enough
before any adapter imports JAX (`normbench run` and `normbench verify` also start the process
with it), and TensorFlow's logical CPU devices are configured by its adapters before first use.
"""

from __future__ import annotations

import os

import pytest

from normbench.verify import synchronized
from normbench.verify.cases import replica_cases

os.environ.update(synchronized.with_host_devices())


def test_synchronized_support(norm_adapter, norm_record):
    norm_record(synchronized.support(norm_adapter))


@pytest.mark.parametrize("case", replica_cases(), ids=str)
def test_synchronized_batch_norm(norm_adapter, case, norm_record):
    norm_record(synchronized.replicated(norm_adapter, case))
