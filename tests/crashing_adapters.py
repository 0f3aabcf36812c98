"""Adapters that take their process down (or never get one), for the isolation tests of
`normbench run`.

Each is the numpy reference until its layer's forward pass has run ``AFTER`` times, so
the process has written records before it dies:

    normbench run --adapters numpy,tests.crashing_adapters:Segfaulting --timeout 30
"""

from __future__ import annotations

import ctypes
import itertools
import signal
import time

from normbench.adapters.numpy.layers import NumpyAdapter, NumpyLayer

AFTER = 20
_calls = itertools.count()


class SegfaultingLayer(NumpyLayer):
    def forward(self, x, training, mask=None):
        if next(_calls) >= AFTER:
            ctypes.string_at(0)  # reads address 0: SIGSEGV, as a crashing native kernel would
        return super().forward(x, training, mask)


class HangingLayer(NumpyLayer):
    def forward(self, x, training, mask=None):
        if next(_calls) >= AFTER:
            time.sleep(3600)  # a deadlocked kernel
        return super().forward(x, training, mask)


class Segfaulting(NumpyAdapter):
    name = "segfaulting"
    builders = dict.fromkeys(NumpyAdapter.builders, SegfaultingLayer)


class Hanging(NumpyAdapter):
    name = "hanging"
    builders = dict.fromkeys(NumpyAdapter.builders, HangingLayer)


class Unimportable(NumpyAdapter):
    """Installed (the module exists) but raises when imported, like a broken wheel."""

    name = "unimportable"
    requires = ("tests.broken_framework",)


class Uninstalled(NumpyAdapter):
    """Its framework is not installed at all: no process is started for it."""

    name = "uninstalled"
    requires = ("no_such_framework",)
    extra = "nosuch"


class SegfaultingAtOnceLayer(NumpyLayer):
    def forward(self, x, training, mask=None):
        ctypes.string_at(0)  # before the process has written any record


class SegfaultingAtOnce(NumpyAdapter):
    name = "segfaulting-at-once"
    builders = dict.fromkeys(NumpyAdapter.builders, SegfaultingAtOnceLayer)


class StubbornLayer(NumpyLayer):
    def forward(self, x, training, mask=None):
        if next(_calls) >= AFTER:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a kernel that does not return to Python
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            time.sleep(3600)
        return super().forward(x, training, mask)


class Stubborn(NumpyAdapter):
    """Hangs and ignores SIGINT and SIGTERM: only SIGKILL stops it."""

    name = "stubborn"
    builders = dict.fromkeys(NumpyAdapter.builders, StubbornLayer)
