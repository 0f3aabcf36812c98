"""One adapter's process in a head-to-head pass: it prepares a case, then times one block each
time the conductor (``bench.conductor``) gives it the turn.

``python -m normbench.bench.contender ADAPTER`` reads one JSON request per line on stdin and
answers each with one JSON line on stdout (anything else it prints goes to stderr):

- ``{"prepare": {BenchCase fields}, "inputs": {name: path}, "settle": bool}`` builds the layer and reads its
  inputs (those the conductor drew, ``bench.drawn``; it draws any not given), makes the first call (which
  compiles where a framework does) and plans the block: ``{"ready": …, "first_call_s", "iterations"}``,
  or ``{"skip": why}`` / ``{"error": why, "traceback": …}``; with ``settle``, it then runs untimed blocks
  until one leaves its resident memory where it was (``settle``) and says how many it ran (``settled``);
- ``{"block": rounds, "warm": w}`` times ``w`` untimed then ``rounds`` timed rounds of the prepared
  call (``iterations`` calls each, garbage collection off, as ``timeit`` does):
  ``{"samples_s": [per-call seconds of each timed round], "faults_per_call": …}``;
- ``{"release": true}`` drops the case; ``{"peak": true}`` answers ``{"peak_rss_mb": …}``;
- ``{"recompiles": true}``: the adapter's recompile count over sequence lengths
  (``harness.recompiles``), as ``{"record": row}``.

It needs numpy, normbench and the adapter's framework only (no pytest), so it can run under the
interpreter of another virtual environment (``torch@/path/to/venv/bin/python``) with this
normbench on its ``PYTHONPATH``.
"""

from __future__ import annotations

import ctypes
import gc
import json
import os
import resource
import sys
import timeit
import traceback
from typing import TextIO

TARGET_BLOCK_S = 0.02  # one block: long enough for the timer, short enough to follow the machine's drift
WARM_ENOUGH_S = 0.005  # one untimed round this long wakes the threads and brings the data in: one is enough
SETTLE_BLOCKS = 4  # at most this many untimed blocks to reach a steady footprint ...
SETTLED_MB = 4.0  # ... the first that grows the process by less than this ends it


def trim() -> None:
    """Hand the freed pages of the case just dropped back to the kernel (glibc's ``malloc_trim``).

    Under the default allocator setting freed memory stays mapped, so without this each process
    would hold the footprint of the largest case it has timed until it exits, and the processes of
    a pass hold them all at once. The next case's first calls fault its pages in again, before any
    timing (its warm-up rounds), and its steady state keeps them."""
    try:
        ctypes.CDLL(None).malloc_trim(0)
    except (AttributeError, OSError):  # not glibc
        pass


def _proc_mb(path: str, key: str) -> float | None:
    """A ``Key:  N kB`` line of a /proc file, in MB, or None where it cannot be read."""
    try:
        with open(path) as lines:
            return next(int(line.split()[1]) for line in lines if line.startswith(f"{key}:")) / 1024
    except (OSError, StopIteration, ValueError, IndexError):
        return None


def status_mb(pid: int | str, key: str) -> float | None:
    """A memory field of ``/proc/PID/status`` (VmRSS, VmHWM) in MB, or None where it cannot be read."""
    return _proc_mb(f"/proc/{pid}/status", key)


def proportional_mb(pid: int | str) -> float | None:
    """The process's proportional set size (``Pss`` of ``/proc/PID/smaps_rollup``) in MB: its resident
    memory with each shared page divided among the processes that map it, so that the sum over
    processes is what they hold together. Summed resident sizes count a shared library once per
    process that maps it: ~0.9 GB too much for the eight frameworks' processes of a pass, idle."""
    return _proc_mb(f"/proc/{pid}/smaps_rollup", "Pss")


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM, which starts afresh at exec. ``ru_maxrss`` does not
    (Linux keeps it across execve), so every contender reported at least its conductor's size (552 MB
    for a spin adapter holding 50)."""
    peak = status_mb("self", "VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


class Contender:
    def __init__(self, adapter_ref: str) -> None:
        from ..adapters import registry

        self.adapter = registry.get(adapter_ref)
        self.prepared = None
        self.iterations = 1
        self.round_s = 0.0

    def drop(self) -> None:
        """Free the prepared case, cycles included, and hand its pages back. After the first case the
        framework has made what it keeps for the process's life (a TensorFlow process: ~410,000 objects),
        and the collector stops walking them (``gc.freeze``): a collection took 75-190 ms per case and
        process, about 40 s of a pass's 300, and takes ~1 ms. What the frozen objects hold is still freed
        when its count drops; only a cycle through them would be kept."""
        self.prepared = None
        gc.collect()
        if not gc.get_freeze_count():
            gc.freeze()
        trim()

    def prepare(self, fields: dict, drawn_inputs: dict[str, str] | None = None, settle: bool = False) -> dict:
        from ..adapters.base import Unsupported
        from ..ops.case import BenchCase
        from . import harness

        if self.prepared is not None:  # not released (the conductor releases every case it raced)
            self.drop()
        case = BenchCase(**{**fields, "shape": tuple(fields["shape"]),
                            "options": tuple(tuple(o) for o in fields.get("options", ()))})
        try:
            prepared = harness.prepare(self.adapter, case, drawn_inputs)
            first, one = harness.first_calls(prepared.timed.call)
        except Unsupported as exc:
            return {"skip": str(exc)}
        except Exception as exc:  # noqa: BLE001 - the conductor records it as this adapter's error
            return {"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        prepared.x = None  # the timed call holds the native input; the host copy (up to 256 MB) can go
        self.prepared = prepared
        self.iterations = max(1, int(harness.TARGET_ROUND_S / one))
        self.round_s = one * self.iterations
        rounds = max(3, min(100, round(TARGET_BLOCK_S / (one * self.iterations))))
        return {"ready": case.id, "first_call_s": first, "iterations": self.iterations, "rounds": rounds,
                "sync": prepared.timed.sync, "shape": list(prepared.shape), "layout": prepared.spec.layout,
                **({"settled": self.settle(rounds)} if settle else {})}

    def settle(self, rounds: int) -> int:
        """Untimed blocks until the process stops growing; how many ran. A process's footprint on a case can
        grow over its first blocks, past what its first calls left: under the warm allocator setting every
        block comes from one heap that is never trimmed, and its fragmentation is the blocks' own (flax.nnx
        on an RMSNorm of 4096 × 16384: 1,011 MB after its first calls, 1,523 and 2,291 MB after its first
        two blocks, steady after). The conductor plans heats from what a prepared process holds, so it asks
        for this where it has not seen the case timed."""
        for ran in range(1, SETTLE_BLOCKS + 1):
            before = status_mb("self", "VmRSS")
            self.block(rounds, 0)
            after = status_mb("self", "VmRSS")
            if before is None or after is None or after - before < SETTLED_MB:
                return ran
        return SETTLE_BLOCKS

    def block(self, rounds: int, warm: int) -> dict:
        from .harness import minor_faults

        call, n = self.prepared.timed.call, self.iterations
        if warm:  # the first calls find the threads asleep and the data out of cache
            timeit.repeat(call, number=n, repeat=1 if self.round_s >= WARM_ENOUGH_S else warm)
        faults = minor_faults()
        loop = timeit.repeat(call, number=n, repeat=rounds)  # gc off while timing, as timeit does
        return {"samples_s": [s / n for s in loop], "faults_per_call": (minor_faults() - faults) / (rounds * n)}

    def answer(self, ask: dict) -> dict:
        if "prepare" in ask:
            return self.prepare(ask["prepare"], ask.get("inputs"), bool(ask.get("settle")))
        if "block" in ask:
            if self.prepared is None:
                return {"error": "no case prepared"}
            return self.block(int(ask["block"]), int(ask.get("warm", 0)))
        if "release" in ask:
            self.drop()
            return {"released": True}
        if "peak" in ask:
            return {"peak_rss_mb": peak_rss_mb()}
        if "recompiles" in ask:
            from .harness import recompiles

            self.prepared = None
            return {"record": recompiles(self.adapter).to_row()}
        return {"error": f"unknown request {sorted(ask)}"}


def _replies() -> TextIO:
    """The real stdout, for replies only: file descriptor 1 becomes stderr, so whatever the
    frameworks print (from Python or from their C++ code) cannot break a reply line."""
    sys.stdout.flush()
    replies = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    return replies


def serve(adapter_ref: str, requests=sys.stdin, replies: TextIO | None = None) -> None:
    """Answer requests until stdin closes."""
    replies = replies or _replies()
    try:
        contender = Contender(adapter_ref)
    except Exception as exc:  # noqa: BLE001 - an adapter that cannot load is the conductor's one line
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), file=replies, flush=True)
        return
    from . import allocator

    try:  # the framework's import, before the hello: the processes of a pass import theirs at once
        contender.adapter.ensure_available()
    except Exception:  # noqa: BLE001, S110 - each case's prepare says it again, as a skip or an error
        pass
    print(json.dumps({"hello": contender.adapter.name, "version": contender.adapter.version(),
                      "python": sys.version.split()[0], "executable": sys.executable, "pid": os.getpid(),
                      "allocator": allocator.describe()}), file=replies, flush=True)
    for line in requests:
        print(json.dumps(contender.answer(json.loads(line))), file=replies, flush=True)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m normbench.bench.contender ADAPTER", file=sys.stderr)
        return 2
    from . import threads

    threads.pin()  # before any framework starts its pools (XLA sizes its pool by the affinity mask)
    serve(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
