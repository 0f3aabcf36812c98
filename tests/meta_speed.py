"""Adapters whose speed is known exactly, for the head-to-head meta-tests (test_head_to_head.py).

Each call waits out a fixed time by spinning on the clock, whatever the op and shape, so two
of them differ by exactly their factor: a slower CPU or a busy machine stretches neither (a
preemption delays both alike). Steady twice must tie; 10 % and 5 % slower must be found so.

On BatchNorm cases each also holds ``HOLD_MB`` of memory while the case is prepared, so that a
memory budget a little above what the field holds idle sends those cases into heats."""

from __future__ import annotations

import atexit
import json
import os
import threading
import time
from pathlib import Path

import numpy as np

from normbench.adapters.base import Adapter, Layer, Mode, Timed

from .meta_adapters import OPS

SPIN_S = 200e-6  # one call
HOLD_MB = 200  # held through a BatchNorm case


class _SpinLayer(Layer):
    factor = 1.0
    compiled_factor = 1.0  # in an adapter's compiled mode

    def hold(self) -> np.ndarray | None:
        """What the prepared case keeps resident (touched)."""
        return np.ones(HOLD_MB * 2**20 // 8) if self.spec.op == "batch_norm" else None

    def timed(self, x, mode, dy=None):
        wait = SPIN_S * self.factor * (self.compiled_factor if self.mode is not None else 1.0)
        held = self.hold()

        def call() -> None:
            assert held is None or held.size
            end = time.perf_counter() + wait
            while time.perf_counter() < end:
                pass

        return Timed(call, "returns when its time is up")


class _Slower10Layer(_SpinLayer):
    factor = 1.10


class _Slower5Layer(_SpinLayer):
    factor = 1.05


class Steady(Adapter):
    name = "meta-steady"
    builders = dict.fromkeys(OPS, _SpinLayer)
    version_of = "numpy"


class Slower10(Steady):
    name = "meta-slower-10"
    builders = dict.fromkeys(OPS, _Slower10Layer)


class Slower5(Steady):
    name = "meta-slower-5"
    builders = dict.fromkeys(OPS, _Slower5Layer)


class _HalvedWhenCompiledLayer(_SpinLayer):
    compiled_factor = 0.5


class Compiles(Steady):
    """A compiled mode that `normbench run` adds by default (``Mode.in_run``), twice as fast as the eager one."""

    name = "meta-compiles"
    builders = dict.fromkeys(OPS, _HalvedWhenCompiledLayer)
    modes = (Mode("eager", "spins its time"), Mode("compiled", "spins half its time", compiled=True, in_run=True))


class _CacheProbeLayer(_SpinLayer):
    """Says, in the file $NORMBENCH_TEST_PROBE, where each compiler's cache points (JAX's, TensorFlow's XLA
    and Inductor's variables) and what Inductor's folder held when it prepared a case, then leaves
    something there as a compiler would."""

    def timed(self, x, mode, dy=None):
        cache = Path(os.environ["TORCHINDUCTOR_CACHE_DIR"])
        found = sorted(p.name for p in cache.iterdir()) if cache.is_dir() else []
        seen = {k: os.environ.get(k) for k in ("JAX_COMPILATION_CACHE_DIR", "TF_XLA_FLAGS")}
        with open(os.environ["NORMBENCH_TEST_PROBE"], "a") as fh:
            fh.write(json.dumps({"pid": os.getpid(), "cache": str(cache), "found": found, **seen}) + "\n")
        cache.mkdir(parents=True, exist_ok=True)
        (cache / f"compiled-by-{os.getpid()}").touch()
        return super().timed(x, mode, dy)


class CacheProbe(Steady):
    name = "meta-cache-probe"
    builders = dict.fromkeys(OPS, _CacheProbeLayer)


LINGER_S = 0.05  # how long a Lingering call's worker thread spins on after it


class _LingeringLayer(_SpinLayer):
    """Like ONNX Runtime's pool (it spins ~45 ms after a call here): each call leaves a worker
    thread spinning for ``LINGER_S``. The spells it spun are written, as CLOCK_MONOTONIC times, to
    $NORMBENCH_TEST_PROBE/linger-PID.json when the process exits."""

    def timed(self, x, mode, dy=None):
        spin = super().timed(x, mode, dy)
        state = {"until": 0.0}
        wake, spells = threading.Event(), []

        def worker() -> None:
            while True:
                wake.wait()
                wake.clear()
                began = time.monotonic()
                while time.monotonic() < state["until"]:
                    pass
                spells.append((began, time.monotonic()))

        threading.Thread(target=worker, daemon=True).start()
        atexit.register(_dump, "linger", spells)

        def call() -> None:
            spin.call()
            state["until"] = time.monotonic() + LINGER_S
            wake.set()

        return Timed(call, spin.sync)


class _StampedLayer(_SpinLayer):
    """Notes when each call starts (CLOCK_MONOTONIC), written to $NORMBENCH_TEST_PROBE/stamps-PID.json at exit."""

    def timed(self, x, mode, dy=None):
        spin = super().timed(x, mode, dy)
        stamps: list[float] = []
        atexit.register(_dump, "stamps", stamps)

        def call() -> None:
            stamps.append(time.monotonic())
            spin.call()

        return Timed(call, spin.sync)


def _dump(kind: str, got: list) -> None:
    path = Path(os.environ["NORMBENCH_TEST_PROBE"]) / f"{kind}-{os.getpid()}-{id(got)}.json"
    path.write_text(json.dumps(got))


class Lingering(Steady):
    name = "meta-lingering"
    builders = dict.fromkeys(OPS, _LingeringLayer)


class Stamped(Steady):
    name = "meta-stamped"
    builders = dict.fromkeys(OPS, _StampedLayer)


KEPT: list[np.ndarray] = []  # what a Ratcheting process never gives back


class _RatchetingLayer(_SpinLayer):
    """Like TensorFlow's CPU allocator, which keeps the largest working set it has had (its pool
    is not returned on release): each BatchNorm case this process prepares stays resident after
    the case is dropped."""

    def hold(self) -> np.ndarray | None:
        held = super().hold()
        if held is not None:
            KEPT.append(held)
        return held


class Ratcheting(Steady):
    name = "meta-ratcheting"
    builders = dict.fromkeys(OPS, _RatchetingLayer)


GROWN_MB = 200  # what a Growing process takes on over its first timed calls of a BatchNorm case
GROW_AFTER = 8  # ... once it has made this many calls of the case


class _GrowingLayer(_SpinLayer):
    """Like a process under the warm allocator setting, whose heap fragments over its first blocks (flax.nnx on
    the largest RMSNorm case: 1,011 MB after its first calls, 2,291 MB two blocks later): on a BatchNorm case it
    takes on ``GROWN_MB`` more, touched, after its first ``GROW_AFTER`` calls, and keeps it until released."""

    def timed(self, x, mode, dy=None):
        inner = super().timed(x, mode, dy)
        grown: list[np.ndarray] = []
        calls = [0]

        def call() -> None:
            calls[0] += 1
            if self.spec.op == "batch_norm" and calls[0] == GROW_AFTER:
                grown.append(np.ones(GROWN_MB * 2**20 // 8))
            inner.call()

        return Timed(call, inner.sync)


class Growing(Steady):
    name = "meta-growing"
    builders = dict.fromkeys(OPS, _GrowingLayer)
