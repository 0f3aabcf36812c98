"""A bare ``timeit`` loop of one benchmark case's call, in a process of its own.

The self-check (``bench.self_check``) compares the harness with this in a *fresh* process:
one that has run nothing but the case's preparation. ``python -m normbench.bench.bare ADAPTER``
prepares the case, prints ``{"ready": …}`` and then times one block per request line it reads
(``{"rounds": R, "iterations": I}``), answering with the per-call seconds of each round, so
the benchmark process can interleave its blocks with this process's: both see the machine
as it is at that moment.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import timeit

from ..adapters import registry
from . import harness
from .self_check import CASE


def measure(adapter_name: str, case=CASE, rounds: int = 200) -> dict:
    """Median seconds and minor page faults per call of a case's call in this process, after
    warm-up: its steady state. Both are medians over rounds, so one round in which the heap
    grows once (the full test suite saw one) does not read as faulting on every call."""
    prepared = harness.prepare(registry.get(adapter_name), case)
    call = prepared.timed.call
    _, iterations, _ = harness._plan(call)
    timeit.repeat(call, number=iterations, repeat=5)
    loop, faults = [], []
    for _ in range(rounds):
        before = harness.minor_faults()
        loop.append(timeit.timeit(call, number=iterations))
        faults.append(harness.minor_faults() - before)
    return {"adapter": adapter_name, "case": case.id, "median_s": statistics.median(loop) / iterations,
            "faults_per_call": statistics.median(faults) / iterations}


def serve(adapter_name: str, stdin=sys.stdin, stdout=sys.stdout) -> None:
    prepared = harness.prepare(registry.get(adapter_name), CASE)
    call = prepared.timed.call
    call()  # the first call compiles where the framework does
    print(json.dumps({"ready": adapter_name, "case": CASE.id}), file=stdout, flush=True)
    for line in stdin:
        ask = json.loads(line)
        n, faults = ask["iterations"], harness.minor_faults()
        loop = timeit.repeat(call, number=n, repeat=ask["rounds"])  # gc off, as in the harness
        faults = (harness.minor_faults() - faults) / len(loop) / n
        print(json.dumps({"samples_s": [s / n for s in loop], "faults_per_call": faults}), file=stdout, flush=True)


class Fresh:
    """The benchmark process's handle on a fresh bare process (same environment: allocator,
    threads): ``block(rounds, iterations)`` times one block there."""

    def __init__(self, adapter_name: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "normbench.bench.bare", adapter_name],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self._read()

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the fresh bare process exited with status {self.proc.wait()}")
        return json.loads(line)

    def block(self, rounds: int, iterations: int) -> list[float]:
        self.proc.stdin.write(json.dumps({"rounds": rounds, "iterations": iterations}) + "\n")
        self.proc.stdin.flush()
        return self._read()["samples_s"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(30)

    def __enter__(self) -> Fresh:
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            try:
                self.close()
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m normbench.bench.bare ADAPTER", file=sys.stderr)
        return 2
    serve(argv[0])
    return 0


if __name__ == "__main__":
    sys.exit(main())
