"""Behaviour checks: what a layer does over several calls, across modes, and at the edges.

They measure rather than trust: the momentum convention and the variance a layer stores
are found by trying each candidate reference, and what a framework does with a batch of
one is recorded as a fact, whatever it is.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import ops
from ..adapters.base import Adapter, Unsupported
from ..adapters.failures import raised
from ..numerics import reference, tolerance
from ..ops import inputs
from ..results.facts import says
from ..results.kinds import Check, Outcome, Suite
from ..results.records import Record
from . import metamorphic
from .checks import Case, compute_dtype, judged, make_record, run_check

STEPS = 5


def _batch(case: Case, step: int) -> np.ndarray:
    return inputs.make(case.input, case.shape, case.dtype, case.seed + step, case.spec.stats_view(case.shape))


def defaults(adapter: Adapter, op: str, *, suite: Suite = Suite.TRAIN_EVAL) -> list[Record]:
    """What a default-constructed layer of ``op`` does: eps, momentum (native and canonical)
    where it keeps running statistics, and whether it is affine or tracks statistics."""
    case = Case(*ops.get(op).configs()[0])
    try:
        reason = adapter.unsupported(case.spec, case.shape, case.dtype)
        if reason:
            raise Unsupported(reason)
        adapter.ensure_available()
        found = adapter.defaults(op)
    except Exception as exc:  # noqa: BLE001 - a skip or an error record, like every check
        return [make_record(adapter, case, suite, Check.DEFAULTS, **raised(adapter, exc))]
    facts = {f"default_{k}": v for k, v in found.items()}
    if "momentum" in found:
        m = found["momentum"]
        facts["default_momentum_new_weight"] = m if adapter.momentum_convention == "new" else 1 - m
        facts["momentum_convention"] = adapter.momentum_convention
    message = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in found.items())
    return [make_record(adapter, case, suite, Check.DEFAULTS, outcome=Outcome.PASS, message=message, facts=facts)]


def _trajectories(case: Case, rm0, rv0, batches) -> dict[tuple[str, str], list]:
    """Running statistics after each step under each candidate convention."""
    out = {}
    for weight in ("new", "old"):  # is the momentum the weight of the batch, or of the running value?
        m = case.spec.momentum if weight == "new" else 1 - case.spec.momentum
        spec = dataclasses.replace(case.spec, momentum=m)
        for var in ("biased", "unbiased"):
            rm, rv, states = rm0, rv0, []
            for x in batches:
                rm, rv = reference.update_running(spec, rm, rv, x, unbiased=var == "unbiased")
                states.append((rm, rv))
            out[(weight, var)] = states
    return out


def train_steps(adapter: Adapter, case: Case, *, suite: Suite = Suite.TRAIN_EVAL) -> list[Record]:
    """K training steps: which convention the running statistics follow, step by step; then
    eval output from them, eval leaving them alone, and training resuming after eval."""
    spec, dtype = case.spec, compute_dtype(adapter, case)

    def body(layer, x, p):
        rm0, rv0 = (np.asarray(a, np.float64) for a in layer.running())
        batches = [_batch(case, k) for k in range(STEPS)]
        seen = []
        for xb in batches:
            layer.forward(xb, True)
            seen.append(tuple(np.asarray(a, np.float64) for a in layer.running()))
        worst: dict[tuple[str, str], tuple[tolerance.Verdict, tolerance.Verdict]] = {}
        for key, states in _trajectories(case, rm0, rv0, batches).items():
            prev, verdicts = (rm0, rv0), []
            for (rm, rv), (want_m, want_v), xb in zip(seen, states, batches, strict=True):
                bm, bv = tolerance.running_bound(spec, dtype, *prev, xb)
                verdicts.append((tolerance.judge("running_mean", rm, want_m, bm),
                                 tolerance.judge("running_var", rv, want_v, bv)))
                prev = (want_m, want_v)
            worst[key] = tuple(max((v[i] for v in verdicts), key=lambda v: v.ratio) for i in (0, 1))
        matching = [k for k, (vm, vv) in worst.items() if vm.passed and vv.passed]
        weight = matching[0][0] if matching else min(worst, key=lambda k: worst[k][0].ratio)[0]
        var = sorted({k[1] for k in matching})
        facts = {
            "steps": STEPS, "momentum_applied_as": f"weight of the {weight} value",
            "running_var": var, "momentum_convention": adapter.momentum_convention,
        }
        best = min(worst.items(), key=lambda kv: max(kv[1][0].ratio, kv[1][1].ratio))
        (_, best_var), (vm, vv) = best
        declared = adapter.running_var
        kept_promise = declared is None or any(k[1] == declared for k in matching)
        ok = bool(matching) and weight == "new" and kept_promise
        note = (f"after {STEPS} steps the running statistics follow momentum as the weight of the "
                f"{weight} value and {says(var)} variance")
        if not kept_promise:
            note += f", but {adapter.name} declares {declared} running variance"
        facts["declared_running_var"] = declared
        for name, v in ((Check.RUNNING_MEAN_STEPS, vm), (Check.RUNNING_VAR_STEPS, vv)):
            row = judged(name, v, facts)
            row["outcome"] = Outcome.PASS if ok else Outcome.FAIL
            row["message"] = f"{note}; {v.message}"
            yield row
        # eval from the running statistics, which eval must not change
        rm, rv = layer.running()
        y = layer.forward(x, False)
        expected = reference.forward_eval(spec, x, p.gamma, p.beta, rm, rv)
        bound = tolerance.returned_in(tolerance.eval_bound(spec, dtype, x, p.gamma, p.beta, rm, rv), y, expected)
        yield judged(Check.EVAL_AFTER_TRAINING, tolerance.judge("y", y, expected, bound))
        after = layer.running()
        same = all(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=True)
                   for a, b in zip((rm, rv), after, strict=True))
        yield {"check": Check.EVAL_KEEPS_RUNNING_STATS, "outcome": Outcome.PASS if same else Outcome.FAIL,
               "message": "eval left the running statistics unchanged" if same else
               "an eval-mode call changed the running statistics", "facts": {"unchanged": same}}
        # training resumes from where it was: train -> eval -> train stays consistent
        layer.forward(x, True)
        rm2, rv2 = layer.running()
        unbiased = best_var == "unbiased"
        want = reference.update_running(spec, rm, rv, x, unbiased=unbiased)
        bm, bv = tolerance.running_bound(spec, dtype, np.asarray(rm, np.float64), np.asarray(rv, np.float64), x)
        verdict = max((tolerance.judge("running_mean", rm2, want[0], bm),
                       tolerance.judge("running_var", rv2, want[1], bv)), key=lambda v: v.ratio)
        yield judged(Check.TRAIN_AFTER_EVAL, verdict)

    return run_check(adapter, case, suite, Check.RUNNING_MEAN_STEPS, ("eval", "running_stats"), body)


def modes_identical(adapter: Adapter, case: Case, *, suite: Suite = Suite.TRAIN_EVAL) -> list[Record]:
    """A layer without running statistics has no state: training and inference outputs must be
    bit-identical."""

    def body(layer, x, p):
        train, infer = layer.forward(x, True), layer.forward(x, False)
        same = np.array_equal(np.asarray(train), np.asarray(infer), equal_nan=True)
        diff = float(np.max(np.abs(np.asarray(train, np.float64) - np.asarray(infer, np.float64))))
        broken = metamorphic.nonfinite(case.spec, x, p, train)
        message = "identical" if same else f"train and eval outputs differ by up to {diff:.3g}"
        if broken:
            message += f", but {broken} outputs are non-finite where the reference is finite"
        yield {"check": Check.TRAIN_EQUALS_EVAL, "outcome": Outcome.PASS if same and not broken else Outcome.FAIL,
               "max_abs_err": diff, "message": message, "facts": {"identical": same}}

    return run_check(adapter, case, suite, Check.TRAIN_EQUALS_EVAL, (), body)


def batch_of_one(adapter: Adapter, case: Case, *, suite: Suite = Suite.BATCH_SIZE_ONE) -> list[Record]:
    """BatchNorm training on one value per channel: record what happens, whatever it is.

    The reference says β (each value is its own mean); torch raises, others return β or NaN.
    """
    spec, dtype = case.spec, compute_dtype(adapter, case)

    def body(layer, x, p):
        try:
            y = layer.forward(x, True)
        except Unsupported:
            raise
        except Exception as exc:  # a documented refusal is a behaviour, not an error
            text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
            yield {"check": Check.TRAIN_ONE_VALUE_PER_CHANNEL, "outcome": Outcome.PASS, "message": f"raises {text}",
                   "facts": {"behaviour": "raises", "exception": text}}
            return
        y64 = np.asarray(y, np.float64)
        expected = reference.forward(spec, x, p.gamma, p.beta)
        verdict = tolerance.judge("y", y, expected, tolerance.forward_bound(spec, dtype, x, p.gamma, p.beta))
        if np.isnan(y64).any():
            behaviour = "returns NaN"
        elif verdict.passed:
            behaviour = "returns beta"
        else:
            behaviour = "returns other values"
        facts = {"behaviour": behaviour}
        if "running_stats" in adapter.features:
            facts["running_var_after"] = np.asarray(layer.running()[1], np.float64).tolist()
        row = judged(Check.TRAIN_ONE_VALUE_PER_CHANNEL, verdict, facts)
        row["outcome"] = Outcome.PASS
        row["message"] = f"{behaviour}; {verdict.message}"
        yield row

    return run_check(adapter, case, suite, Check.TRAIN_ONE_VALUE_PER_CHANNEL, (), body)


def padding_shift(adapter: Adapter, case: Case, *, suite: Suite = Suite.SEQUENCE_LENGTHS) -> list[Record]:
    """BatchNorm without a mask on padded sequences: how far padding moves the statistics."""
    spec = case.spec
    if not case.pad or case.masked:
        raise ValueError("padding_shift needs a padded, unmasked case")

    def body(layer, x, p):
        valid = p.valid
        rm0, rv0 = (np.asarray(a, np.float64) for a in layer.running())
        y = np.asarray(layer.forward(x, True), np.float64)
        rm1 = np.asarray(layer.running()[0], np.float64)
        m = spec.momentum
        batch_mean = (rm1 - (1 - m) * rm0) / m  # what the layer used, from its own update
        true = reference.channel_moments(spec, x, valid)
        shift = float(np.max(np.abs(batch_mean - true.mean) / np.sqrt(true.var)))
        expected = reference.forward(spec, x, p.gamma, p.beta, valid)
        dev = float(np.max(np.abs(y - expected)[np.broadcast_to(case.spread(valid), x.shape)]))
        broken = metamorphic.nonfinite(spec, x, p, y)  # measured, unless nonsense
        yield {"check": Check.PADDING_SHIFT, "outcome": Outcome.FAIL if broken else Outcome.PASS, "max_abs_err": dev,
               "message": f"padding ({case.pad}) moves the batch mean by {shift:.3g} std; valid outputs "
                          f"differ from masked statistics by up to {dev:.3g}"
                          + (f"; {broken} outputs are non-finite where the reference is finite" if broken else ""),
               "facts": {"mean_shift_std": shift, "valid_output_deviation": dev,
                         "valid_fraction": float(valid.mean())}}

    return run_check(adapter, case, suite, Check.PADDING_SHIFT, ("running_stats",), body)


def varying_lengths(adapter: Adapter, case: Case, lengths=(5, 9, 3, 9), *,
                    suite: Suite = Suite.SEQUENCE_LENGTHS) -> list[Record]:
    """One layer called on (B, T, C) batches whose T changes from call to call."""
    spec, dtype = case.spec, compute_dtype(adapter, case)

    def body(layer, x, p):
        verdicts = []
        for k, t in enumerate(lengths):
            shape = (case.shape[0], t, *case.shape[2:])
            xt = inputs.make(case.input, shape, dtype, case.seed + k, spec.stats_view(shape))
            y = layer.forward(xt, True)
            expected = reference.forward(spec, xt, p.gamma, p.beta)
            bound = tolerance.forward_bound(spec, dtype, xt, p.gamma, p.beta)
            verdicts.append(tolerance.judge(f"y[T={t}]", y, expected, bound))
        yield judged(Check.VARYING_LENGTHS, max(verdicts, key=lambda v: v.ratio), {"lengths": list(lengths)})

    return run_check(adapter, case, suite, Check.VARYING_LENGTHS, (), body)
