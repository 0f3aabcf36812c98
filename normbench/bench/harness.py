"""Benchmark cases, the byte model, and timing one case honestly.

The timed callable comes from the adapter (``Layer.timed``): inputs are native tensors
before timing starts and each call waits for its result. The first call, which traces
and compiles where a framework does, is timed on its own and reported as ``compile_s``;
pytest-benchmark then times steady-state rounds after warm-up rounds.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from .. import ops
from ..adapters.base import Adapter
from ..adapters.failures import raised
from ..ops import inputs
from ..ops.case import BenchCase
from ..ops.dtypes import resolve
from ..ops.spec import NormSpec
from ..results import records
from ..results.allocators import OVERLAP_CORES, PAGE, faulting  # noqa: F401 - defined there since reports read them too
from ..results.kinds import Check, Outcome, Suite
from ..results.records import Record
from . import allocator, drawn, threads
from .load import OtherLoad

SUITE = Suite.SPEED
TARGET_ROUND_S = 1e-3  # a round lasts at least this long, so timer resolution is negligible
TARGET_CASE_S = 0.15  # steady-state time per case and repeat (three repeats by default)
ROUNDS = (5, 200)


def cases(dtypes: tuple[str, ...] | None = None, quick: bool = False) -> list[BenchCase]:
    """Every op's benchmark cases (``Op.bench_cases``): transformer-like LayerNorm, LLM-like
    RMSNorm, CNN-like BatchNorm, U-Net GroupNorm and InstanceNorm, and sweeps; in ``dtypes``,
    or by default each op's own (float32, and bfloat16 too for RMSNorm)."""
    return [case for op in ops.all() for case in op.bench_cases(tuple(dtypes or op.bench_dtypes), quick)]


def layout_shape(adapter: Adapter, case: BenchCase) -> tuple[NormSpec, tuple[int, ...]]:
    """The spec and array shape in the layout the adapter's users run (channel ops' logical
    N, C, H, W becomes N, H, W, C for a channels-last framework)."""
    spec = case.spec(adapter.preferred_layout)
    if spec.layout == "channels_last" and len(case.shape) > 2:
        n, c, *spatial = case.shape
        return spec, (n, *spatial, c)
    return spec, case.shape


def bytes_moved(case: BenchCase) -> int:
    """The op's minimum-traffic model (``Op.bytes_moved``)."""
    return ops.get(case.op).bytes_moved(case, resolve(case.dtype).itemsize)


def _features(case: BenchCase) -> tuple[str, ...]:
    """What a mode needs beyond a training-mode forward pass."""
    return {"forward_backward": ("grad",), "eval": ("eval",)}.get(case.mode, ())


@dataclass
class Prepared:
    """A built layer, its input, and the timed call on them."""

    layer: object
    x: np.ndarray
    timed: object
    spec: NormSpec
    shape: tuple[int, ...]


def prepare(adapter: Adapter, case: BenchCase, drawn_inputs: Mapping[str, str] | None = None) -> Prepared:
    """Build the layer and its native inputs; raises Unsupported when the adapter cannot. A contender
    reads the inputs its conductor drew (``drawn``), where it drew them."""
    spec, shape = layout_shape(adapter, case)
    layer = adapter.build(spec, shape, case.dtype, _features(case))
    given = drawn.values(case, shape, drawn_inputs)
    return Prepared(layer, given["x"], layer.timed(given["x"], case.mode, given.get("dy")), spec, shape)


def first_calls(call) -> tuple[float, float]:
    """The first call's seconds (it traces and compiles where a framework does), then one steady call's."""
    start = time.perf_counter()
    call()
    first = time.perf_counter() - start
    start = time.perf_counter()
    call()
    return first, max(time.perf_counter() - start, 1e-7)


def _plan(call) -> tuple[float, int, int]:
    """First-call time, then iterations per round and rounds from one steady call."""
    first, one = first_calls(call)
    iterations = max(1, int(TARGET_ROUND_S / one))
    rounds = int(min(max(TARGET_CASE_S / (one * iterations), ROUNDS[0]), ROUNDS[1]))
    return first, iterations, rounds


def record(adapter: Adapter, case: BenchCase, spec: NormSpec, shape, **fields) -> Record:
    check = fields.pop("check", case.mode)
    return records.build(adapter, SUITE, check, case.describe(spec, shape), **fields)


def run(adapter: Adapter, case: BenchCase, benchmark, bandwidth_gbps: float,
        prepared: Prepared | None = None, repeat: int = 0, alive: dict | None = None) -> Record:
    """Time one block of one case with pytest-benchmark; the record carries timing, traffic
    and roofline. Reports pool the repeats of a case; repeat 0's first call holds the compile.

    ``alive`` keeps each case's previous repeat allocated while the next one allocates, so
    repeats see the allocator in other states: whether a call's output is page-faulted in
    afresh (see ``faulting``) depends on that state, and sampling several shows it as spread
    instead of hiding it in one lucky or unlucky run.
    """
    try:
        return _run(adapter, case, benchmark, bandwidth_gbps, prepared, repeat, alive)
    except Exception as exc:  # noqa: BLE001 - a skip (Unsupported) or an error naming the adapter's line
        spec, shape = layout_shape(adapter, case)
        return record(adapter, case, spec, shape, **raised(adapter, exc))


def _run(adapter: Adapter, case: BenchCase, benchmark, bandwidth_gbps: float, prepared: Prepared | None,
         repeat: int, alive: dict | None) -> Record:
    prepared = prepared or prepare(adapter, case)
    if alive is not None:
        alive[(adapter.name, case.id)] = prepared
    timed, spec, shape = prepared.timed, prepared.spec, prepared.shape

    def call() -> None:
        # Drop the output at once, as a plain loop does: pytest-benchmark keeps a round's
        # result alive through the next round, and a second live 16 MB output makes the
        # allocator map fresh pages every call (~3 ms of page faults for torch).
        timed.call()

    first, iterations, rounds = _plan(call)
    faults = minor_faults()
    with OtherLoad() as other:
        benchmark.pedantic(call, rounds=rounds, iterations=iterations, warmup_rounds=2)
    faults = (minor_faults() - faults) / ((rounds + 2) * iterations)
    stats = benchmark.stats.stats
    moved = bytes_moved(case)
    timing = {
        "median_s": stats.median, "iqr_s": stats.iqr, "min_s": stats.min, "rounds": stats.rounds,
        "iterations": iterations, "first_call_s": first, "compile_s": max(first - stats.median, 0.0),
        "bytes": moved, "gbps": moved / stats.median / 1e9,
        "roofline_frac": moved / stats.median / 1e9 / bandwidth_gbps, "bandwidth_gbps": bandwidth_gbps,
        "threads": threads.report(), "sync": timed.sync, "faults_per_call": faults,
        "samples_s": list(stats.data),  # per-call time of each round, for significance tests
        "other_load": other.cores,  # cores other processes kept busy meanwhile (load.OtherLoad)
        "allocator": allocator.active_name(),
    }
    benchmark.extra_info.update({k: v for k, v in timing.items() if k not in ("threads", "samples_s")},
                                adapter=adapter.name)
    timing["repeat"] = repeat
    message = (f"median {stats.median * 1e3:.3f} ms (IQR {stats.iqr * 1e3:.3f}), {timing['gbps']:.1f} GB/s = "
               f"{timing['roofline_frac']:.0%} of measured bandwidth; first call {first * 1e3:.1f} ms"
               + (f"; {faults:.0f} page faults per call" if faulting(faults, moved) else "")
               + (f"; other processes kept {other.cores:.1f} cores busy meanwhile"
                  if other.cores is not None and other.cores >= OVERLAP_CORES else ""))
    return record(adapter, case, spec, shape, outcome=Outcome.PASS, message=message, timing=timing)


def minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


LENGTHS = (17, 33, 64, 17, 100, 33, 128, 64)


def recompiles(adapter: Adapter, lengths=LENGTHS, dtype: str = "float32") -> Record:
    """LayerNorm on (8, T, 256) with T changing call to call: how many traces/compiles."""
    case = BenchCase("layer_norm", "forward", (8, max(lengths), 256), dtype, "recompiles")
    spec = NormSpec("layer_norm")
    try:
        return _recompiles(adapter, case, spec, lengths, dtype)
    except Exception as exc:  # noqa: BLE001 - a skip (Unsupported) or an error naming the adapter's line
        return record(adapter, case, spec, case.shape, check=Check.RECOMPILES, **raised(adapter, exc))


def _recompiles(adapter: Adapter, case: BenchCase, spec: NormSpec, lengths, dtype: str) -> Record:
    layer = adapter.build(spec, case.shape, dtype)
    first_calls, traces, baseline = [], [], None
    for k, t in enumerate(lengths):
        x = inputs.make("normal", (8, t, 256), dtype, k)
        timed = layer.timed(x, "forward")
        if baseline is None and timed.traces:  # compiled functions may be shared across layers
            baseline = timed.traces()
        start = time.perf_counter()
        timed.call()
        first_calls.append(time.perf_counter() - start)
        traces.append(timed.traces() - baseline if timed.traces else None)
    counted = traces[-1] is not None
    n = traces[-1] if counted else None
    message = (f"{n} traces for {len(set(lengths))} distinct lengths over {len(lengths)} calls" if counted
               else "no tracing: runs any shape without recompiling")
    facts = {"lengths": list(lengths), "traces": traces, "recompiles": n, "first_call_s": first_calls}
    rec = record(adapter, case, spec, case.shape, outcome=Outcome.PASS, message=message, facts=facts,
                 timing={"recompiles": n, "compile_s": max(first_calls) - min(first_calls)})
    rec.check = Check.RECOMPILES
    return rec
