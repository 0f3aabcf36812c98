"""The self-check: does the harness time what a plain ``timeit`` loop of the same call times,
in the state the benchmarks ran in?

It runs inside each benchmark process after its cases, on the prepared layer and input of a
default case (torch LayerNorm forward 1024 × 4096 and its siblings in each framework family),
interleaving blocks timed by pytest-benchmark's own round loop (A) with plain ``timeit`` blocks
of the same call (B), ABAB…, so both sides share the allocator state, the caches and whatever
else the machine was doing. ``normbench bench --self-check`` also compares the case's median
with a bare loop in a fresh process (``normbench.bench.bare``). A check taken while other
processes kept the cores busy, or while the memory bandwidth dropped, says so instead of
reporting a ratio as if it were the harness's.
"""

from __future__ import annotations

import itertools
import os
import time
import timeit

import numpy as np

from ..adapters import framework
from ..ops.case import BenchCase
from ..results.kinds import Outcome
from . import bandwidth
from .load import OtherLoad

CASE = BenchCase("layer_norm", "forward", (1024, 4096))
FAMILIES = framework.families()  # label -> the adapter timed for it, as each framework package names it
TOLERANCE = 0.05  # |ratio - 1| that passes
BLOCK_S = 0.02  # one block of rounds
FRESH_BLOCK_S = 0.06  # with a fresh process taking turns: fewer blocks, fewer pauses
SIDE_S = 2.0  # each side's blocks together: with 1 s the ratios' spread here was ±2.6 % (one sd)
WARM_ROUNDS = 3  # untimed at the start of each block: waking a process's threads takes more than one call
PAUSE_S = 0.1  # before every block when a fresh process takes turns: worker threads spin after a call
BUSY_CORES = 0.5  # other load (cores) from which the machine was too busy to judge
BANDWIDTH_DROP = 0.8  # bandwidth after / before below which the machine was too busy to judge


FRESH = "NORMBENCH_SELF_CHECK_FRESH"  # set by bench --self-check: interleave a fresh process's blocks too


def wants_fresh() -> bool:
    return os.environ.get(FRESH) == "1"


def family_of(adapter_name: str) -> str | None:
    return next((f for f, a in FAMILIES.items() if a == adapter_name), None)


def _plan(call, iterations: int, fresh: bool) -> tuple[int, int]:
    """(rounds per block, blocks per side): SIDE_S per side in blocks of ~BLOCK_S, a multiple of
    the orders the sides take; with a fresh process, blocks of ~FRESH_BLOCK_S (each waits PAUSE_S)."""
    start = timeit.default_timer()
    call()
    one = max(timeit.default_timer() - start, 1e-7) * iterations
    per_block = max(3, min(100, round((FRESH_BLOCK_S if fresh else BLOCK_S) / one)))
    blocks = max(12, min(120, round(SIDE_S / (one * per_block))))
    return per_block, blocks - blocks % (6 if fresh else 2)


def abab(benchmark, timed, iterations: int, fresh=None) -> dict:
    """Per-call seconds of rounds timed by A (pytest-benchmark's runner, as ``harness.run`` times
    a case) and B (``timeit`` of the same call; both with garbage collection off, as
    ``normbench bench`` runs pytest-benchmark) and, with ``fresh`` (a ``bare.Fresh``), C
    (the same loop in a process that ran nothing else), in short blocks that take turns.

    This machine's speed moves by up to 30 % between consecutive 50 ms blocks, so the blocks
    are short (~20 ms) and many, and the order runs through every permutation of the sides, so
    each follows each other equally often. With a fresh process, every block of every side
    starts the same way: a pause (worker threads spin for a while after a call: ONNX Runtime's
    slowed the other process's next block by up to 60 %), then untimed rounds (the first calls
    find the threads asleep and the data out of cache)."""

    def call() -> None:  # as harness.run wraps it: the output is dropped at once
        timed.call()

    runner = benchmark._make_runner(call, (), {})  # the loop pedantic() times each round with
    loops = range(iterations) if iterations > 1 else None
    per_block, blocks = _plan(call, iterations, fresh is not None)
    pause = PAUSE_S if fresh is not None else 0.0

    def side_a() -> list[float]:
        time.sleep(pause)
        return [_seconds(runner(loops)) / iterations for _ in range(per_block + WARM_ROUNDS)][WARM_ROUNDS:]

    def side_b() -> list[float]:
        time.sleep(pause)
        loop = timeit.repeat(timed.call, number=iterations, repeat=per_block + WARM_ROUNDS)
        return [s / iterations for s in loop][WARM_ROUNDS:]

    def side_c() -> list[float]:
        time.sleep(pause)
        return fresh.block(per_block + WARM_ROUNDS, iterations)[WARM_ROUNDS:]

    sides = {"a": side_a, "b": side_b, **({"c": side_c} if fresh is not None else {})}
    orders = list(itertools.permutations(sides))  # each side follows each other equally often
    blocks_of: dict[str, list[list[float]]] = {k: [] for k in sides}
    with OtherLoad(ours=[fresh.proc.pid] if fresh is not None else []) as other:
        for k in range(blocks):
            for name in orders[k % len(orders)]:
                blocks_of[name].append(sides[name]())
    harness, bare = _median(blocks_of["a"]), _median(blocks_of["b"])
    out = {"harness_median_s": harness, "bare_median_s": bare, "ratio": _ratio(blocks_of["a"], blocks_of["b"]),
           "ratio_ci": _interval(blocks_of["a"], blocks_of["b"]), "rounds_per_block": per_block, "blocks": blocks,
           "iterations": iterations, "other_load": other.cores}
    if blocks_of.get("c"):
        fresh_median = _median(blocks_of["c"])
        out.update(fresh_bare_median_s=fresh_median, fresh_ratio=_ratio(blocks_of["a"], blocks_of["c"]),
                   fresh_ratio_ci=_interval(blocks_of["a"], blocks_of["c"]))
    return out


def _median(blocks: list[list[float]]) -> float:
    return float(np.median(np.concatenate(blocks)))


def _ratio(a: list[list[float]], b: list[list[float]]) -> float:
    """median(a) / median(b) over the blocks' medians: the estimator ``_interval`` resamples (pooling
    every round instead lets one slow block's many rounds move it outside its own interval)."""
    return float(np.median([np.median(x) for x in a]) / np.median([np.median(x) for x in b]))


def _interval(a: list[list[float]], b: list[list[float]], resamples: int = 400) -> list[float]:
    """95 % bootstrap interval of median(a) / median(b), resampling whole blocks in step (block k
    of each side ran next to each other, so they are drawn together)."""
    rng = np.random.default_rng(0)
    a_, b_ = np.array([np.median(x) for x in a]), np.array([np.median(x) for x in b])
    n = min(len(a_), len(b_))
    picks = rng.integers(0, n, size=(resamples, n))
    ratios = np.median(a_[picks], axis=1) / np.median(b_[picks], axis=1)
    return [float(x) for x in np.percentile(ratios, [2.5, 97.5])]


def _seconds(result) -> float:
    return result[0] if isinstance(result, tuple) else result  # one iteration: (duration, result)


def busy(facts: dict) -> str | None:
    """Why the machine was too busy for the check to mean anything, or None."""
    reasons = []
    load = facts.get("other_load")
    if load is not None and load >= BUSY_CORES:
        reasons.append(f"other processes kept {load:.1f} cores busy during the check")
    before, after = facts.get("bandwidth_before_gbps"), facts.get("bandwidth_after_gbps")
    if before and after and after / before < BANDWIDTH_DROP:
        reasons.append(f"memory bandwidth fell from {before:.1f} to {after:.1f} GB/s")
    return "; ".join(reasons) or None


def probe_bandwidth(threads: int) -> float:
    """A quick copy-bandwidth probe (64 MB, best of 5) around the check."""
    return bandwidth.measure(threads, megabytes=64, trials=5)["gbps"]


def judge(facts: dict) -> tuple[Outcome, str]:
    """(outcome, message) on whether the harness agrees within ±TOLERANCE with the bare loop
    interleaved with it in this process and, where measured, in a fresh process.

    Each ratio comes with a 95 % interval (blocks resampled): it fails only where the interval
    lies wholly outside 1 ± TOLERANCE (a disagreement the noise cannot explain) and passes where
    the ratio is within; a ratio outside whose interval reaches back in is inconclusive, since
    this machine's noise at that moment is as large as the target. The case's own median, timed
    earlier in this process, is reported beside them: on a machine whose speed drifts by more
    than 5 % over a minute it cannot be judged against later blocks."""
    judged = {"harness/bare (ABAB, this process)": (facts["ratio"], facts.get("ratio_ci"))}
    if facts.get("fresh_ratio"):
        judged["harness/bare (interleaved, fresh process)"] = (facts["fresh_ratio"], facts.get("fresh_ratio_ci"))
    lo, hi = 1 - TOLERANCE, 1 + TOLERANCE
    text = ", ".join(f"{k} {v:.3f}" + (f" [{ci[0]:.3f}–{ci[1]:.3f}]" if ci else "") for k, (v, ci) in judged.items())
    if facts.get("case_median_s") and facts.get("bare_median_s"):
        text += f", case median (timed earlier)/bare {facts['case_median_s'] / facts['bare_median_s']:.3f}"
    times = (f"harness {facts['harness_median_s'] * 1e3:.3f} ms, bare {facts['bare_median_s'] * 1e3:.3f} ms"
             + (f", fresh-process bare {facts['fresh_bare_median_s'] * 1e3:.3f} ms"
                if facts.get("fresh_bare_median_s") else ""))
    target = f"(target 1.00 ± {TOLERANCE:.2f}; 95 % intervals)"
    if all(lo <= v <= hi for v, _ in judged.values()):
        return Outcome.PASS, f"self-check {text} {target}: {times}"
    outside = [k for k, (v, ci) in judged.items() if ci is None or ci[1] < lo or ci[0] > hi]
    why = busy(facts)
    if why:
        return Outcome.SKIP, (f"self-check inconclusive: the machine was busy ({why}); measured {text}, "
                              f"not judged: {times}")
    if not outside:
        return Outcome.SKIP, (f"self-check inconclusive: a ratio is outside the target but its interval reaches "
                              f"back in (the machine's noise at that moment is as large as the target); measured "
                              f"{text} {target}, not judged: {times}")
    return Outcome.FAIL, f"self-check {text} {target}: {times}"
