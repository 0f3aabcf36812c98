"""Synchronized BatchNorm across data-parallel replicas, judged against the global batch.

Each case splits its global batch into per-replica shards (equal, uneven, one sample per
replica, a mean offset of 1e4, masked positions); the adapter runs them on its framework's own
data-parallel engine and the records compare every replica's output, the running statistics
after several steps, dx and the replica-summed dγ, dβ with the float64 global-batch reference
(``numerics.replicas``), under the one tolerance policy. Each output record also says which
statistics the output matches — the global batch's, the unweighted average of the replicas'
(``lax.pmean`` of per-device moments) or each replica's own — which is how the report states
whether a framework weights replicas by their counts and honours masks when it synchronizes.
"""

from __future__ import annotations

import os

import numpy as np

from ..adapters import framework
from ..adapters.base import Adapter, Refused, ReplicaJob, ReplicaRun
from ..adapters.failures import raised
from ..numerics import replicas, tolerance
from ..ops.case import Case
from ..results.kinds import Check, Outcome, Suite
from ..results.records import Record
from .cases import replica_cases
from .checks import judged, make_record

SUITE = Suite.SYNCHRONIZED
STEPS = 3  # training steps before the running statistics are compared


def max_replicas() -> int:
    return max(len(c.replicas) for c in replica_cases())


def with_host_devices(environ: dict[str, str] | None = None, count: int | None = None) -> dict[str, str]:
    """``environ`` with what every framework needs to start with ``count`` host devices (the most
    replicas a case uses), each as its package's ``host_devices`` asks (JAX: XLA_FLAGS, read once,
    when its CPU backend starts)."""
    env = dict(os.environ if environ is None else environ)
    count = count or max_replicas()
    for fw in framework.frameworks():
        if fw.host_devices:
            env = framework.resolve(fw, fw.host_devices)(env, count)
    return env


def job_of(case: Case, steps: int = STEPS) -> ReplicaJob:
    """The shards and parameters of ``case``, as every replica receives them."""
    x, p = case.data()
    masks = case.split(p.mask) if case.masked else None
    return ReplicaJob(case.spec, case.dtype, case.split(x), case.split(p.dy), masks, p.gamma, p.beta,
                      p.running_mean, p.running_var, steps, max_replicas())


def replicated(adapter: Adapter, case: Case) -> list[Record]:
    """Every check of one replicated run: forward, gradients, running statistics, inference."""
    job = job_of(case)
    try:
        run = adapter.replicated(job)
        rows = list(_judge(adapter, case, job, run))
    except Exception as exc:  # the framework's own failure (or refusal) is a finding, not a crash
        return [make_record(adapter, case, SUITE, Check.FORWARD_TRAIN, **raised(adapter, exc))]
    return [make_record(adapter, case, SUITE, device=device_of(run), **row) for row in rows]


def device_of(run: ReplicaRun) -> str:
    """The kind of device the replicas ran on ("cpu", "cuda"), for the record's ``device``: an
    adapter lists its devices by name in ``facts["devices"]`` where they are not all host CPUs."""
    named = run.facts.get("devices")
    kinds = sorted({str(d).split(":")[0] for d in named}) if isinstance(named, list) else ["cpu"]
    return ",".join(kinds) or "cpu"


def _concat(arrays) -> np.ndarray:
    return replicas.concatenated(arrays)


def _judge(adapter: Adapter, case: Case, job: ReplicaJob, run: ReplicaRun):
    spec, dtype = case.spec, case.dtype
    x, mask = _concat(job.shards), None if job.masks is None else _concat(job.masks)
    dy = _concat(job.dys)
    layout = {"replicas": list(case.replicas), **run.facts}

    bound = tolerance.forward_bound(spec, dtype, x, job.gamma, job.beta, mask)
    y = _concat(run.y)
    want = {kind: replicas.forward(spec, job.shards, job.gamma, job.beta, job.masks, kind) for kind in replicas.KINDS}
    verdicts = {kind: tolerance.judge("y", y, _concat(w), bound) for kind, w in want.items()}
    per_replica = [float(np.max(np.abs(np.asarray(a, np.float64) - b), initial=0.0))
                   for a, b in zip(run.y, want["global"], strict=True)]
    matches = [k for k, v in verdicts.items() if v.passed]
    yield judged(Check.FORWARD_TRAIN, verdicts["global"], {
        **layout, "statistics_match": matches, "output_dtype": np.asarray(run.y[0]).dtype.name,
        "replica_max_abs_err": per_replica,
        "err_vs": {k: v.max_abs_err for k, v in verdicts.items()},
    })

    if run.dx is not None:
        want = replicas.vjp(spec, job.shards, job.gamma, job.dys, job.masks)
        got = (_concat(run.dx), run.dgamma, run.dbeta)
        bounds = tolerance.grad_bounds(spec, dtype, x, job.gamma, dy, mask)
        for name, g, w, b in zip(("dx", "dgamma", "dbeta"), got, (_concat(want[0]), *want[1:]), bounds,
                                 strict=True):
            if w is not None:
                yield judged(f"grad_{name}", tolerance.judge(name, g, w, b), layout)

    yield from _running(adapter, case, job, run, x, mask, layout)

    if run.y_eval is not None:
        rm, rv = run.running_mean, run.running_var
        want = _concat(replicas.forward_eval(spec, job.shards, job.gamma, job.beta, rm, rv))
        eb = tolerance.eval_bound(spec, dtype, x, job.gamma, job.beta, rm, rv)
        yield judged(Check.FORWARD_EVAL, tolerance.judge("y_eval", _concat(run.y_eval), want, eb), layout)


def _running(adapter: Adapter, case: Case, job: ReplicaJob, run: ReplicaRun, x, mask, layout: dict):
    """Running statistics after ``job.steps`` steps, judged against the declared variance
    convention (or whichever one matches, for an adapter that declares none)."""
    spec, dtype = case.spec, case.dtype
    verdicts = {}
    for unbiased in (False, True):
        states, state = [], (np.asarray(job.running_mean, np.float64), np.asarray(job.running_var, np.float64))
        for _ in range(job.steps):
            states.append(state)
            state = replicas.update_running(spec, *state, job.shards, job.masks, unbiased=unbiased)
        mb, vb = tolerance.running_steps_bound(spec, dtype, states, x, mask)
        verdicts["unbiased" if unbiased else "biased"] = (
            tolerance.judge("running_mean", run.running_mean, state[0], mb),
            tolerance.judge("running_var", run.running_var, state[1], vb))
    yield judged(Check.RUNNING_MEAN, verdicts["biased"][0], {**layout, "steps": job.steps})
    matches = [k for k, v in verdicts.items() if v[1].passed]
    declared = adapter.running_var
    best = verdicts[declared][1] if declared else min((v[1] for v in verdicts.values()), key=lambda v: v.ratio)
    row = judged(Check.RUNNING_VAR, best, {**layout, "steps": job.steps,
                                           "running_var": sorted(matches),
                                           "declared_running_var": declared})
    broken = f", but {adapter.name} declares {declared}" if declared and not best.passed else ""
    row["message"] = f"stores {' or '.join(matches) or 'neither'} running variance{broken}; {best.message}"
    yield row


def support_case() -> Case:
    """The case the support record runs: two replicas of an even batch."""
    return next(c for c in replica_cases() if len(c.replicas) == 2 and len(set(c.replicas)) == 1)


def support(adapter: Adapter) -> list[Record]:
    """Whether the framework synchronizes BatchNorm here at all: the engine it runs on, or its
    refusal as measured (with the documented fallbacks checked around it)."""
    case = support_case()
    try:
        run = adapter.replicated(job_of(case, steps=1))
    except Refused as exc:
        failed = [name for name, held in exc.fallbacks.items() if not held]
        note = (f"; documented fallbacks that do not hold: {', '.join(failed)}" if failed
                else f"; documented fallbacks hold: {', '.join(exc.fallbacks)}" if exc.fallbacks else "")
        return [make_record(adapter, case, SUITE, Check.SYNCHRONIZED,
                            outcome=Outcome.FAIL if failed else Outcome.PASS,
                            message=f"refuses: {exc}{note}",
                            facts={"synchronized": "refused", "refusal": str(exc), **exc.facts,
                                   "fallbacks": exc.fallbacks})]
    except Exception as exc:  # noqa: BLE001 - recorded (an Unsupported is a skip)
        return [make_record(adapter, case, SUITE, Check.SYNCHRONIZED, **raised(adapter, exc))]
    return [make_record(adapter, case, SUITE, Check.SYNCHRONIZED, outcome=Outcome.PASS,
                        message=f"synchronizes on {run.facts.get('engine', 'its engine')}",
                        facts={"synchronized": "runs", **run.facts})]
