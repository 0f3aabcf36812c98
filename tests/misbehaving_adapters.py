"""Adapters that break the contract the ways third-party adapters do, for the tests that the
record says so, and where (tests/test_adapter_errors.py).

Each is the numpy reference but for the one thing it gets wrong.
"""

from __future__ import annotations

import numpy as np

from normbench import Unsupported
from normbench.adapters.numpy.layers import NumpyAdapter, NumpyLayer


class RaisingLayer(NumpyLayer):
    def forward(self, x, training, mask=None):
        return x.shape[5]  # IndexError: the kind of slip an adapter author makes


class Raising(NumpyAdapter):
    name = "raising"
    builders = dict.fromkeys(NumpyAdapter.builders, RaisingLayer)


class RefusingLayer(NumpyLayer):
    def vjp(self, x, dy, mask=None):
        raise Unsupported("refusing: this kernel has no backward pass")


class Refusing(NumpyAdapter):
    """Declares grad but finds out only when called that it cannot: still a skip."""

    name = "refusing"
    builders = dict.fromkeys(NumpyAdapter.builders, RefusingLayer)


class NanLayer(NumpyLayer):
    def forward(self, x, training, mask=None):
        return np.full(x.shape, np.nan, dtype=np.asarray(x).dtype)


class NanEverywhere(NumpyAdapter):
    name = "nan-everywhere"
    builders = dict.fromkeys(NumpyAdapter.builders, NanLayer)


class Impostor(NumpyAdapter):
    """Another adapter under a built-in's name."""

    name = "numpy"
