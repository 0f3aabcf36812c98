"""Checks: run one case on one adapter, compare with the oracle, return result records.

Each check builds a fresh layer, so no check sees state another one left behind. A
combination the adapter declares unsupported is a ``skip`` with its reason; an exception
from the framework is an ``error`` with its message and the adapter's line that led to it,
never a crash of the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from ..adapters.base import Adapter, Layer
from ..adapters.failures import raised
from ..numerics import reference, tolerance
from ..ops.case import PADDING, Case, CaseArrays
from ..results import records
from ..results.facts import says
from ..results.kinds import Check, Outcome, Suite
from ..results.records import Record

__all__ = ["PADDING", "Case", "compute_dtype", "forward", "gradients", "judged", "jvp", "make_record",
           "run_check", "running_stats", "second_order"]

Body = Callable[[Layer, np.ndarray, CaseArrays], Iterable[dict]]


def compute_dtype(adapter: Adapter, case: Case) -> str:
    """The dtype a case's tolerance is derived for: the tested dtype, or on a mixed-precision path
    the dtype that path documents for the op's computation (judge adds the output's rounding)."""
    if case.spec.precision == "mixed":
        path = adapter.mixed_precision(case.spec, case.dtype)
        if path is not None:
            return path.compute
    return case.dtype


def precision_facts(adapter: Adapter, case: Case) -> dict:
    """What a record on a mixed-precision path says about the path."""
    path = adapter.mixed_precision(case.spec, case.dtype) if case.spec.precision == "mixed" else None
    return {"precision": path.how, "compute_documented": path.compute, "precision_link": path.link} if path else {}


def make_record(adapter: Adapter, case: Case, suite: Suite | str, check: Check, **fields) -> Record:
    """A record of ``check`` on ``case``; ``fields`` carry the outcome, errors and facts."""
    return records.build(adapter, suite, check, case.describe(), **fields)


def judged(check: Check, verdict: tolerance.Verdict, facts: dict | None = None) -> dict:
    """The record fields of a comparison with the oracle."""
    return {
        "check": check, "outcome": Outcome.PASS if verdict.passed else Outcome.FAIL,
        "max_abs_err": verdict.max_abs_err, "err_eps": verdict.err_eps,
        "tolerance": verdict.tolerance, "excess": verdict.excess, "message": verdict.message, "facts": facts or {},
    }


def run_check(adapter: Adapter, case: Case, suite: str, check: str, features: tuple[str, ...],
              body: Body) -> list[Record]:
    """Build a fresh layer loaded with the case's parameters, run ``body``, record each row.

    Unsupported combinations become one ``skip``; an exception becomes one ``error``.
    """
    try:
        features += ("mask",) if case.masked else ()
        layer = adapter.build(case.spec, case.shape, case.dtype, features)
        x, p = case.data()
        if case.spec.affine:
            layer.set_params(p.gamma, p.beta)
        if case.spec.has_running_stats and "running_stats" in adapter.features:
            layer.set_running(p.running_mean, p.running_var)
        return [make_record(adapter, case, suite, **row) for row in body(layer, x, p)]
    except Exception as exc:  # the framework's own failure is a finding, not a crash
        return [make_record(adapter, case, suite, check, **raised(adapter, exc))]


def forward(adapter: Adapter, case: Case, *, training: bool, suite: Suite = Suite.AGREEMENT) -> list[Record]:
    """Output in training (batch statistics) or eval mode vs the oracle."""
    spec, dtype = case.spec, compute_dtype(adapter, case)
    check = Check.FORWARD_TRAIN if training else Check.FORWARD_EVAL
    needs_eval = not training and spec.has_running_stats

    def body(layer, x, p):
        if needs_eval:
            rm, rv = layer.running()
            expected = reference.forward_eval(spec, x, p.gamma, p.beta, rm, rv)
            bound = tolerance.eval_bound(spec, dtype, x, p.gamma, p.beta, rm, rv)
        else:
            expected = reference.forward(spec, x, p.gamma, p.beta, p.mask)
            bound = tolerance.forward_bound(spec, dtype, x, p.gamma, p.beta, p.mask)
        y = layer.forward(x, training, p.mask)
        bound = tolerance.returned_in(bound, y, expected)
        yield judged(check, tolerance.judge("y", y, expected, bound),
                      {"output_dtype": np.asarray(y).dtype.name, **precision_facts(adapter, case)})

    return run_check(adapter, case, suite, check, ("eval",) if needs_eval else (), body)


def running_stats(adapter: Adapter, case: Case, *, suite: Suite = Suite.AGREEMENT) -> list[Record]:
    """Running statistics after one training step; measures which variance is stored."""
    spec, dtype = case.spec, compute_dtype(adapter, case)

    def body(layer, x, p):
        rm0, rv0 = (np.asarray(a, np.float64) for a in layer.running())
        layer.forward(x, True, p.mask)
        rm, rv = layer.running()
        mean_b, var_b = tolerance.running_bound(spec, dtype, rm0, rv0, x, p.mask)
        biased = reference.update_running(spec, rm0, rv0, x, p.mask, unbiased=False)
        unbiased = reference.update_running(spec, rm0, rv0, x, p.mask, unbiased=True)
        yield judged(Check.RUNNING_MEAN, tolerance.judge("running_mean", rm, biased[0], mean_b))
        as_biased = tolerance.judge("running_var", rv, biased[1], var_b)
        as_unbiased = tolerance.judge("running_var", rv, unbiased[1], var_b)
        matches = sorted(n for n, v in (("biased", as_biased), ("unbiased", as_unbiased)) if v.passed)
        declared = adapter.running_var
        verdicts = {"biased": as_biased, "unbiased": as_unbiased}
        # A declared convention is a promise: judged against it alone, storing the other fails.
        best = verdicts[declared] if declared else min(verdicts.values(), key=lambda v: v.ratio)
        row = judged(Check.RUNNING_VAR, best, {
            "running_var": matches, "declared_running_var": declared,
            "err_vs_biased": as_biased.max_abs_err, "err_vs_unbiased": as_unbiased.max_abs_err,
            "running_dtype": np.asarray(rv).dtype.name, **precision_facts(adapter, case),
        })
        stored = np.asarray(rv, np.float64)
        if not np.isfinite(stored).all():  # overflowed: neither convention is the question, the overflow is
            bad = int((~np.isfinite(stored)).sum())
            row["facts"]["running_var_nonfinite"] = bad
            row["message"] = (f"stores a non-finite running variance ({bad} of {stored.size} values inf or NaN: "
                              f"the update overflowed in {np.asarray(rv).dtype.name}); {best.message}")
        else:
            broken = f", but {adapter.name} declares {declared}" if declared and not best.passed else ""
            row["message"] = f"stores {says(matches)} running variance{broken}; {best.message}"
        yield row

    if not spec.has_running_stats:
        raise ValueError(f"{case} keeps no running statistics")
    return run_check(adapter, case, suite, Check.RUNNING_VAR, ("running_stats",), body)


def gradients(adapter: Adapter, case: Case, *, suite: Suite = Suite.AGREEMENT) -> list[Record]:
    """dx, dγ, dβ of the training-mode output vs the analytic float64 VJP."""
    spec, dtype = case.spec, compute_dtype(adapter, case)

    def body(layer, x, p):
        got = layer.vjp(x, p.dy, p.mask)
        want = reference.vjp(spec, x, p.gamma, p.dy, p.mask)
        bounds = tolerance.grad_bounds(spec, dtype, x, p.gamma, p.dy, p.mask)
        bounds = (tolerance.returned_in(bounds[0], got[0], want[0]), *bounds[1:])  # dx: the input's dtype
        for name, g, w, b in zip(("dx", "dgamma", "dbeta"), got, want, bounds, strict=True):
            if w is not None:
                yield judged(Check(f"grad_{name}"), tolerance.judge(name, g, w, b),
                             {"grad_dtype": np.asarray(g).dtype.name, **precision_facts(adapter, case)})

    return run_check(adapter, case, suite, Check.GRAD_DX, ("grad",), body)


def jvp(adapter: Adapter, case: Case, *, suite: Suite = Suite.AGREEMENT) -> list[Record]:
    """Forward-mode derivative along (tx, tγ, tβ) vs the analytic float64 JVP: forward-mode AD is
    an implementation of its own, not reverse mode transposed."""
    spec, dtype = case.spec, compute_dtype(adapter, case)

    def body(layer, x, p):
        got = layer.jvp(x, p.tx, p.tgamma, p.tbeta, p.mask)
        want = reference.jvp(spec, x, p.gamma, p.tx, p.tgamma, p.tbeta, p.mask)
        bound = tolerance.jvp_bound(spec, dtype, x, p.gamma, p.tx, p.tgamma, p.tbeta, p.mask)
        yield judged(Check.JVP, tolerance.judge("jvp", got, want, bound))

    return run_check(adapter, case, suite, Check.JVP, ("jvp",), body)


def second_order(adapter: Adapter, case: Case, *, suite: Suite = Suite.AGREEMENT) -> list[Record]:
    """∂⟨dx, v⟩/∂x and ∂⟨dx, v⟩/∂γ through the layer's own backward pass vs the float64 reference."""
    spec, dtype = case.spec, compute_dtype(adapter, case)

    def body(layer, x, p):
        got = layer.second_order(x, p.dy, p.v, p.mask)
        want = reference.second_order(spec, x, p.gamma, p.dy, p.v, p.mask)
        bounds = tolerance.second_order_bounds(spec, dtype, x, p.gamma, p.dy, p.v, p.mask)
        for name, g, w, b in zip(("dx", "dgamma"), got, want, bounds, strict=True):
            if w is not None:
                yield judged(Check(f"second_order_{name}"), tolerance.judge(f"d<dx,v>/d{name[1:]}", g, w, b))

    return run_check(adapter, case, suite, Check.SECOND_ORDER_DX, ("second_order",), body)
