"""Known upstream divergences: failures we expect, each with its reason, upstream link and bound.

A failing (or erroring) record that an entry matches is recorded as ``known`` and its test
is an xfail, so the default run passes while the report still lists it — but only within the
entry's envelope: the largest error its cause explains (a one-pass variance errs by about
ε·√n·κ², so at most ~(1+κ) policy tolerances; a float32 computation by the float32 tolerance),
or, for a cause that raises, the exceptions it raises. A matched record outside the envelope
is a new failure hiding behind an old one, and stays a ``fail``. Strictness is kept per entry:
if an entry matched records in a run but none of them failed, the divergence no longer
reproduces (fixed upstream?) and the run fails, so somebody updates this list. Behaviour
differences that follow a framework's own documented convention (torch's unbiased running
variance, what a batch of one does) are facts, not entries here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from ..numerics.dtypes import machine_eps, overflow_threshold

Row = dict[str, Any]
Envelope = Callable[[Row], float]  # the largest max_abs_err / tolerance the cause explains for a record


@dataclass(frozen=True)
class Known:
    key: str
    reason: str
    link: str
    applies: Callable[[Row], bool]  # does this record fall under the divergence?
    envelope: Envelope | None = None  # None: the cause only raises
    raises: tuple[str, ...] = ()  # exception types the cause raises
    nonfinite: bool = False  # the cause overflows: inf/NaN results are what it explains

    def matches(self, row: Row) -> bool:
        return bool(self.applies(row))

    def explains(self, row: Row) -> tuple[bool, str]:
        """Whether this cause accounts for a failing or erroring record, and how far within it."""
        if row.get("outcome") == "error":
            exc = (row.get("facts") or {}).get("exception") or str(row.get("message", "")).split(":", 1)[0]
            ok = exc in self.raises
            return ok, (f"raises {exc}, as this cause does" if ok else
                        f"raises {exc}; this cause raises {', '.join(self.raises) or 'nothing'}")
        err, tol = _number(row.get("max_abs_err")), _number(row.get("tolerance"))
        if not math.isfinite(err):
            return self.nonfinite, ("non-finite, as this cause overflows" if self.nonfinite
                                    else "non-finite, which this cause does not explain")
        if self.envelope is None:
            return False, "a numeric error, where this cause only raises"
        ratio = err / tol if tol > 0 else math.inf
        bound = self.envelope(row)
        return ratio <= bound, f"{ratio:.3g}x its tolerance, envelope {bound:.3g}x"

    def bound(self, row: Row) -> float | None:
        """The envelope for a record, in multiples of its tolerance (for the report)."""
        return None if self.envelope is None else self.envelope(row)


def _number(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


# What a record says about its case: enough to regenerate the arrays it was computed from.
_CASE_FIELDS = ("op", "params", "shape", "dtype", "input", "case", "check")


def _from_arrays(measure: Callable[..., float]) -> Callable[..., float]:
    """``measure(row, case, x, p, *args)`` on the record's regenerated arrays (``Case.from_record``),
    computed once per record and arguments: explaining and reporting a record both ask for it."""

    @cache
    def cached(key: str, *args) -> float:
        from ..ops.case import Case

        row = json.loads(key)
        case = Case.from_record(row)
        x, p = case.data()
        with np.errstate(all="ignore"):
            return measure(row, case, x, p, *args)

    def envelope(row: Row, *args) -> float:
        return cached(json.dumps({k: row.get(k) for k in _CASE_FIELDS}, sort_keys=True), *args)

    return envelope


def _within_tolerances(row: Row, error: float) -> float:
    """An absolute error the cause explains, on top of the record's own tolerance, as a multiple of it."""
    tol = _number(row.get("tolerance"))
    return 1 + error / tol if tol > 0 else math.inf


PROMOTED = "promoted"  # a cause computing in the tested dtype promoted to at least float32 (half inputs upcast)


def _compute_eps(compute: str | None, dtype: str) -> float:
    """Machine epsilon of what a cause computes in: ``compute``, the tested dtype (None), or that
    dtype promoted to at least float32 (PROMOTED)."""
    if compute == PROMOTED:
        return min(machine_eps(dtype), machine_eps("float32"))
    return machine_eps(compute or dtype)


def _one_pass_error(m, eps: float):
    """δ = λ·ε·√n·E[x²]: how far E[x²] − E[x]² computed at ``eps`` may be from each group's variance."""
    from ..numerics.tolerance import LAMBDA

    return LAMBDA * eps * np.sqrt(m.count) * (m.var + m.mean**2)


@_from_arrays
def _one_pass_factor(row: Row, case, x, p, compute: str | None) -> float:
    from ..numerics import reference
    from . import metamorphic

    eps = _compute_eps(compute, case.dtype)
    inputs = [x]
    if row.get("check") == "scale_shift_invariance":  # the layer also saw a·x + b
        inputs.append(metamorphic.scaled_shifted(case, x))
    worst = 0.0
    for xi in inputs:
        m = reference.moments(case.spec, xi, p.mask)
        s = np.sqrt(m.var + case.spec.eps)
        kappa = np.abs(m.mean) / s
        delta = _one_pass_error(m, eps)
        q = s / np.sqrt(np.maximum(m.var - delta, 0) + case.spec.eps)
        worst = max(worst, float(np.nanmax(2 * (1 + kappa) * q**3)))
    return worst * eps / machine_eps(case.dtype)


@_from_arrays
def _one_pass_running_var(row: Row, case, x, p, compute: str | None, steps: int) -> float:
    """The stored variance errs by δ itself, not through 1/s: each step's batch variance by up to
    δ = λ·ε·√n·E[x²] (σ² once it cancels to 0 and is clamped), times n/(n − 1) where unbiased, and
    K steps of momentum k carry Σ k(1 − k)^j = 1 − (1 − k)^K of it. An absolute error."""
    from ..numerics import reference

    m = reference.moments(case.spec, x, p.mask)
    delta = _one_pass_error(m, _compute_eps(compute, case.dtype)) * m.count / np.maximum(m.count - 1, 1)
    return (1 - (1 - case.spec.momentum) ** steps) * float(np.nanmax(delta))


def one_pass_variance(row: Row) -> float:
    """var = E[x²] − E[x]² errs by up to δ = λ·ε·√n·E[x²] = λ·ε·√n·(1 + κ²)·σ² where two passes
    err by λ·ε·√n·(1 + κ)·σ²: about (1 + κ) policy tolerances (×2 for slack) while δ < σ². Past
    that the variance can cancel to 0 (frameworks clamp it), the normalizer s falls to
    s_low = √(max(σ² − δ, 0) + eps), and dx, which holds 1/s three times, grows by q³, q = s/s_low."""
    return one_pass_variance_in(None)(row)


def one_pass_variance_in(compute: str | None) -> Envelope:
    """``one_pass_variance`` for a cause that also computes in ``compute`` (None: the tested dtype)."""
    def envelope(row: Row) -> float:
        if row.get("check") == "running_var":
            steps = int((row.get("facts") or {}).get("steps", 1))
            return _within_tolerances(row, _one_pass_running_var(row, compute, steps))
        return _one_pass_factor(row, compute)

    return envelope


@_from_arrays
def _saturation(row: Row, case, x, p) -> float:
    from ..numerics import reference

    y = reference.forward(case.spec, x, p.gamma, p.beta, p.mask)
    beta = reference.forward(case.spec, np.zeros_like(x, np.float64) + 1.0, p.gamma, p.beta)
    return float(np.nanmax(np.abs(y - beta)))


def variance_overflows(row: Row) -> float:
    """A variance that overflows the compute dtype to inf makes the output β: off by |γ·x̂|."""
    return _within_tolerances(row, _saturation(row))


@_from_arrays
def _mask_effect(row: Row, case, x, p) -> float:
    from ..numerics import reference

    check, spec = row["check"], case.spec
    g, b, rm, rv = p.gamma, p.beta, p.running_mean, p.running_var
    if check.startswith("grad_"):
        i = ("grad_dx", "grad_dgamma", "grad_dbeta").index(check)
        pair = [reference.vjp(spec, x, g, p.dy, m)[i] for m in (p.mask, None)]
    elif check in ("running_mean", "running_var"):
        i = ("running_mean", "running_var").index(check)
        pair = [reference.update_running(spec, rm, rv, x, m, unbiased=u)[i] for m in (p.mask, None)
                for u in (False, True)]
        pair = [pair[0], max(pair[2:], key=lambda a: float(np.max(np.abs(a - pair[0]))))]
    else:
        pair = [reference.forward(spec, x, g, b, m) for m in (p.mask, None)]
    return float(np.max(np.abs(pair[1] - pair[0])))


def ignores_mask(row: Row) -> float:
    """Statistics over every position instead of the unmasked ones: the record may be off by
    the difference between the two float64 references, plus its own tolerance."""
    return _within_tolerances(row, 2 * _mask_effect(row))


@_from_arrays
def _replica_gap(row: Row, case, x, p, kind: str, steps: int) -> float:
    """How far the record's quantity moves between the global batch's statistics and ``kind``
    (``numerics.replicas``): for running statistics, from any replica's copy, either variance."""
    from ..numerics import replicas

    spec, check, xs = case.spec, row["check"], case.split(x)
    masks = case.split(p.mask) if case.masked else None
    if check.startswith("grad_"):
        i = ("grad_dx", "grad_dgamma", "grad_dbeta").index(check)
        pair = [replicas.vjp(spec, xs, p.gamma, case.split(p.dy), masks, k)[i] for k in ("global", kind)]
    elif check in ("running_mean", "running_var"):
        i = ("running_mean", "running_var").index(check)
        pair, groups = [], [(xs, masks)] if kind != "local" else [([a], None if masks is None else [masks[r]])
                                                                  for r, a in enumerate(xs)]
        for unbiased in (False, True):
            base = replicas.update_running(spec, p.running_mean, p.running_var, xs, masks,
                                           unbiased=unbiased, steps=steps)[i]
            for shards, shard_masks in groups:
                k = "global" if kind == "local" else kind
                other = replicas.update_running(spec, p.running_mean, p.running_var, shards, shard_masks,
                                                unbiased=unbiased, steps=steps, kind=k)[i]
                pair.append(float(np.nanmax(np.abs(other - base))))
        return max(pair)
    else:
        pair = [replicas.forward(spec, xs, p.gamma, p.beta, masks, k) for k in ("global", kind)]
    a, b = (replicas.concatenated(v) if isinstance(v, list) else v for v in pair)
    return float(np.nanmax(np.abs(a - b)))


def replica_statistics(kind: str) -> Envelope:
    """The layer normalizes with ``kind`` statistics instead of the global batch's: the record
    may be off by twice the gap between the two float64 references, plus its own tolerance."""
    return lambda row: _within_tolerances(row, 2 * _replica_gap(row, kind, int((row.get("facts") or {})
                                                                              .get("steps", 1))))


@_from_arrays
def _gradient_scale(row: Row, case, x, p) -> float:
    """The largest a gradient of this layer can be for the record's upstream values in any order:
    |dx| ≤ |γ|·max|dy|·(2 + max|x̂|²)/s, |dγ|, |dβ| ≤ n·max|dy|·max(1, |x̂|) over n summed terms."""
    from ..numerics import reference

    m = reference.moments(case.spec, x)
    s = np.sqrt(m.var + case.spec.eps)
    xhat = np.abs((np.asarray(x, np.float64) - m.mean) / s)
    dy = float(np.max(np.abs(np.asarray(p.dy, np.float64))))
    gamma = 1.0 if p.gamma is None else float(np.max(np.abs(np.asarray(p.gamma, np.float64))))
    if row["check"] == "grad_dx":
        return float(gamma * dy * (2 + xhat.max() ** 2) / s.min())
    terms = x.size // int(np.prod(case.spec.param_shape(x.shape)))
    return float(terms * dy * max(1.0, xhat.max()))


def wrong_gradient(row: Row) -> float:
    """A gradient computed from the right values in the wrong arrangement: off by up to twice the
    largest such a gradient can be."""
    return _within_tolerances(row, 2 * _gradient_scale(row))


@_from_arrays
def _stopped_mean_term(row: Row, case, x, p) -> float:
    """The term a variance taken about stop_gradient(mean) drops from ∂⟨dx, v⟩/∂x: its second
    derivative is (2/n)·I instead of (2/n)(I − 11ᵀ/n), which leaves −(Σγ·dy·x̂)(Σv)/(n²·s²) on
    every position of a group."""
    from ..numerics import reference

    spec = case.spec
    m = reference.moments(spec, x)
    s = np.sqrt(m.var + spec.eps)
    xhat = (np.asarray(x, np.float64) - m.mean) / s
    gamma = np.ones(spec.broadcast_shape(x.shape)) if p.gamma is None else \
        np.asarray(p.gamma, np.float64).reshape(spec.broadcast_shape(x.shape))
    g = gamma * np.asarray(p.dy, np.float64)
    term = reference.group_sum(spec, g * xhat) * reference.group_sum(spec, np.asarray(p.v, np.float64))
    return float(np.nanmax(np.abs(term / (m.count**2 * s**2))))


def stopped_mean_gradient(row: Row) -> float:
    """A second derivative missing the stopped mean's term: off by that term, twice for slack."""
    return _within_tolerances(row, 2 * _stopped_mean_term(row))


def computes_in(dtype: str) -> Envelope:
    """The cause computes (or rounds a parameter to) ``dtype``: the policy tolerance of that
    dtype, which is the record's tolerance scaled by the ratio of machine epsilons."""
    return lambda row: machine_eps(dtype) / machine_eps(row["dtype"])


def _in(row: Row, **allowed) -> bool:
    return all(row.get(field) in values for field, values in allowed.items())


def _params(row: Row) -> dict:
    return row.get("params") or {}


def _channels(row: Row) -> int | None:
    """A channel op's channel count, from the record's shape and layout."""
    shape = row.get("shape") or []
    if len(shape) < 2:
        return None
    return shape[-1] if row.get("layout") == "channels_last" else shape[1]


def _synchronized(row: Row) -> bool:
    return row.get("suite") == "synchronized"


def _counts_differ(row: Row) -> bool:
    """Replicas hold different numbers of values: uneven shards, or a mask (whose counts differ per shard)."""
    split = _params(row).get("replicas") or []
    return len(split) > 1 and (len(set(split)) > 1 or bool(_params(row).get("masked")))


_FLAX = ("flax.linen", "flax.nnx")
_WIDE = ("float32", "float64")
_FLOAT32_MOMENTS = (*_WIDE, "float16")  # Keras's torch moments: float16 cast to float32, bfloat16 kept
_KERAS = ("keras[tensorflow]", "keras[jax]", "keras[torch]")  # Keras 3: one layer code, three backends
_KERAS_32 = ("keras[jax]", "keras[torch]")  # where Keras's dtype promotion turns float64 into float32
class _Conditioned(tuple):
    """Input names whose groups sit far from zero relative to their spread (κ ≥ 10): the named
    stress inputs, and the search's shifted inputs with |offset| ≥ 10·scale."""

    def __contains__(self, name) -> bool:
        from ..numerics import inputs

        shifted = inputs.parse_shifted(name) if isinstance(name, str) else None
        return tuple.__contains__(self, name) or (shifted is not None and abs(shifted[0]) >= 10 * shifted[1])


_STRESS = _Conditioned(("offset1e2", "offset1e4", "tiny_variance", "constant"))


@_from_arrays
def _worst_kappa(row: Row, case, x, p) -> float:
    from ..numerics import reference

    m = reference.moments(case.spec, x, p.mask)
    kappa = np.abs(m.mean) / np.sqrt(m.var + case.spec.eps)
    return float(np.nanmax(np.where(m.count >= 2, kappa, 0.0), initial=0.0))  # x² − x² of one value is exact


def _conditioned(row: Row) -> bool:
    """Some normalized group of two or more values has κ = |mean|/√(var + eps) ≥ 10, where a
    one-pass variance starts to cancel: the stress inputs by name, any other input (a search's
    draw, two close values of a normal pair) measured on its regenerated arrays. Call it last in
    a matcher: it builds the case's arrays. Matching is all it does (the envelope bounds what is
    excused), but a matching record that passes puts the entry to the test: a run where none fails
    reports the entry stale."""
    return row.get("input") in _STRESS or _measured(_worst_kappa, row) >= 10


def _measured(measure: Callable[[Row], float], row: Row) -> float:
    """``measure`` of a record's regenerated arrays; NaN for a record its case cannot be rebuilt from."""
    try:
        return measure(row)
    except (KeyError, TypeError, ValueError):
        return math.nan


@_from_arrays
def _largest_rstd(row: Row, case, x, p) -> float:
    from ..numerics import reference

    m = reference.moments(case.spec, x, p.mask)
    return float(np.nanmax(1 / np.sqrt(m.var + case.spec.eps)))


@_from_arrays
def _group_sums(row: Row, case, x, p) -> float:
    """The largest of each group's Σx and Σ(x − mean)², which a layer computing in the tested
    dtype accumulates."""
    from ..numerics import reference

    m = reference.moments(case.spec, x, p.mask)
    return float(np.nanmax(m.count * np.maximum(np.abs(m.mean), m.var)))


_CENTRED = ("layer_norm", "batch_norm", "group_norm", "instance_norm")  # ops with a variance to cancel


KNOWN: tuple[Known, ...] = (
    Known(
        "flax-sync-unweighted-mean",
        "flax's BatchNorm(axis_name=...) synchronizes statistics with lax.pmean of each device's mean and "
        "mean square (_compute_stats, maybe_distributed_mean), unweighted by how many values each device "
        "holds: with uneven shards (which shard_map and pmap must pad and mask) or a mask, the statistics "
        "are the replicas' plain average, not the global batch's. Reproducer (2 host devices): x = "
        "[[0],[0],[0],[10],[10],[10]], mask = [[1],[0],[0],[1],[1],[1]]; BatchNorm(axis_name='r') under "
        "jax.shard_map over 'r' gives batch mean 5.0 = (0 + 10)/2, where the 4 real samples' mean is 7.5 "
        "(flax 0.12.8)",
        "https://github.com/google/flax/issues/2417",
        lambda r: _synchronized(r) and _in(r, adapter=_FLAX, check=(
            "forward_train", "grad_dx", "grad_dgamma", "running_mean", "running_var")) and _counts_differ(r),
        envelope=replica_statistics("unweighted"),
    ),
    Known(
        "keras-sync-one-pass-moments",
        "synchronized BatchNorm in Keras 3 (TensorFlow backend: _compute_moments_sync) and in tf_keras "
        "(_sync_calculate_mean_and_var) all-reduces Σx and Σx² and takes var = max(E[x²] − E[x]², 0), "
        "which cancels when |mean| ≫ std. Reproducer (2 logical CPUs, MirroredStrategy, float32): x = 1e4 + "
        "normal(8, 6), 4 rows per replica, BatchNormalization(synchronized=True)(x, training=True) has "
        "per-channel std up to 37.7 instead of 1 (keras 3.15.1, tf_keras 2.21)",
        "https://github.com/keras-team/keras/blob/master/keras/src/backend/tensorflow/nn.py",
        lambda r: _synchronized(r) and _in(r, adapter=("keras[tensorflow]", "tf_keras"), op=("batch_norm",),
                                           check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta",
                                                  "running_var")) and _conditioned(r),
        envelope=one_pass_variance,
    ),
    Known(
        "keras-sync-mask-local",
        "Keras 3's BatchNormalization passes synchronized only to its unmasked moments (_moments): with a "
        "mask each replica normalizes with its own statistics and, its moving statistics being mirrored "
        "variables with aggregation NONE, keeps its own moving statistics, which drift apart. Reproducer "
        "(2 logical CPUs): x = normal(4, 3, 2) + arange(4)[:, None, None], mask all True, 2 rows per "
        "replica: each replica's output has mean 0 per channel, and the replicas' moving means differ "
        "(keras 3.15.1; tf_keras honours the mask under synchronization)",
        "https://github.com/keras-team/keras/blob/master/keras/src/layers/normalization/batch_normalization.py",
        lambda r: _synchronized(r) and _in(r, adapter=("keras[tensorflow]",), op=("batch_norm",))
        and bool(_params(r).get("masked")),
        envelope=replica_statistics("local"),
    ),
    Known(
        "flax-fast-variance",
        "flax's LayerNorm, BatchNorm, GroupNorm and InstanceNorm default to use_fast_variance=True, "
        "var = E[x²] − E[x]², which "
        "cancels when |mean| ≫ std: the error grows as κ², beyond the two-pass bound (κ = |mean|/std)",
        "https://github.com/google/flax/blob/main/flax/linen/normalization.py",
        lambda r: _in(r, adapter=_FLAX, op=_CENTRED,
                      check=("forward_train", "grad_dx", "grad_dgamma", "running_var", "jvp", "second_order_dx",
                             "second_order_dgamma")) and _conditioned(r)
        or _in(r, adapter=_FLAX, op=("group_norm", "instance_norm"), check=("scale_shift_invariance",)),
        envelope=one_pass_variance_in(PROMOTED),  # _compute_stats upcasts half inputs to float32
    ),
    Known(
        "flax-linen-mixed-dx-double-upcast",
        "flax.linen norms with dtype=bfloat16/float16 and param_dtype=float32 upcast x to float32 twice (x.astype "
        "in _compute_stats, and promotion in _normalize's x − mean); JAX rounds each path's float32 gradient to the "
        "half input dtype and adds the two in half precision, so dx carries ε_half·|γ·dy|/σ of cancellation error "
        "instead of one rounding of the float32 result. Reproducer: LayerNorm(dtype=jnp.bfloat16, "
        "param_dtype=jnp.float32) on randn(8, 16) in bfloat16: dx relative error 4.8e-2, against 3.7e-3 when the "
        "caller upcasts x once (flax 0.12.8, jax 0.10.2)",
        "https://github.com/google/flax/blob/main/flax/linen/normalization.py",
        lambda r: _in(r, adapter=("flax.linen",), check=("grad_dx",)) and _params(r).get("precision") == "mixed",
        envelope=lambda r: machine_eps(r["dtype"]) / machine_eps("float32"),  # dx as if computed in half
    ),
    Known(
        "flax-nnx-float32-batch-stats",
        "flax.nnx.BatchNorm creates its running mean and variance as float32 whatever param_dtype is, "
        "so float64 running statistics are rounded to float32",
        "https://github.com/google/flax/blob/main/flax/nnx/nn/normalization.py",
        lambda r: _in(r, adapter=("flax.nnx",), dtype=("float64",), check=("running_mean", "running_var")),
        envelope=computes_in("float32"),
    ),
    Known(
        "onnxruntime-group-norm-function",
        "onnxruntime 1.31 has no GroupNormalization-21 kernel: it inlines the ONNX function body, which "
        "casts X to stash_type (float32 by default, float64 inputs included) and takes the variance in "
        "one pass as E[x²] − E[x]², which cancels when |mean| ≫ std (NaN once it turns negative)",
        "https://github.com/onnx/onnx/blob/main/onnx/defs/nn/defs.cc",
        lambda r: _in(r, adapter=("onnxruntime",), op=("group_norm",), dtype=("float32", "float64"),
                      check=("forward_train", "scale_shift_invariance")),
        envelope=one_pass_variance_in("float32"), nonfinite=True,
    ),
    Known(
        "onnx-float32-attributes",
        "ONNX float attributes are 32-bit: epsilon and momentum reach a float64 kernel rounded to "
        "float32 (momentum 0.9 becomes 0.89999998)",
        "https://github.com/onnx/onnx/issues/3261",
        lambda r: _in(r, adapter=("onnxruntime",), dtype=("float64",),
                      check=("forward_train", "forward_eval", "running_mean", "running_var")),
        envelope=computes_in("float32"),
    ),
    Known(
        "keras-mask-last-axis",
        "Keras's masked BatchNorm expands the mask on the last axis whatever `axis` is, so "
        "channels-first inputs with a mask raise or are weighted wrongly (the same code on every backend)",
        "https://github.com/keras-team/keras/issues/19848",
        lambda r: _in(r, adapter=_KERAS, layout=("channels_first",)) and _params(r).get("masked"),
        raises=("ValueError", "InvalidArgumentError", "RuntimeError"),
    ),
    Known(
        "keras-masked-single-channel",
        "Keras 3's masked BatchNormalization moments squeeze the mask's broadcast axis with ops.squeeze and no "
        "axis, so with a single channel the statistics collapse to scalars and the layer raises IndexError on "
        "every backend. Found by normbench search. Reproducer: keras.layers.BatchNormalization(axis=1)("
        "np.zeros((2, 1), 'float32'), training=True, mask=np.array([True, True])) raises IndexError (keras 3.15.1)",
        "https://github.com/keras-team/keras/blob/master/keras/src/layers/normalization/batch_normalization.py",
        lambda r: _in(r, adapter=_KERAS, op=("batch_norm",)) and bool(_params(r).get("masked"))
        and _channels(r) == 1,
        raises=("IndexError",),
    ),
    Known(
        "keras-masked-moments-epsilon",
        "Keras's masked BatchNorm moments divide by sum(mask) + keras.config.epsilon() (1e-7): a "
        "relative error of ~1e-7/count, visible at float64 (only on TensorFlow: the other backends "
        "compute float64 in float32, see keras-float64-as-float32)",
        "https://github.com/keras-team/keras/blob/master/keras/src/layers/normalization/batch_normalization.py",
        lambda r: _in(r, adapter=("keras[tensorflow]",), dtype=("float64",)) and _params(r).get("masked")
        and r.get("layout") != "channels_first",
        envelope=computes_in("float32"),  # 1e-7 relative, below float32 rounding
    ),
    Known(
        "keras-torch-fast-variance",
        "Keras's torch backend computes ops.moments as E[x²] − E[x]² (\"faster but less numerically "
        "stable\", in its source; keras PR 18795 fixed the TF and JAX moments, not torch's), which cancels "
        "when |mean| ≫ std (NaN once it turns negative): BatchNormalization's, GroupNormalization's "
        "and InstanceNorm's (GroupNormalization(groups=-1)) error grows as κ², beyond the two-pass bound, "
        "in float32 and in float64 (computed in float32, see keras-float64-as-float32). Its "
        "LayerNormalization calls torch's F.layer_norm and is not affected",
        "https://github.com/keras-team/keras/blob/master/keras/src/backend/torch/nn.py",
        lambda r: _in(r, adapter=("keras[torch]",), op=("batch_norm", "group_norm", "instance_norm"),
                      dtype=_FLOAT32_MOMENTS,
                      check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta", "running_var", "jvp",
                             "second_order_dx", "second_order_dgamma")) and _conditioned(r)
        or _in(r, adapter=("keras[torch]",), op=("batch_norm", "group_norm", "instance_norm"),
               dtype=_FLOAT32_MOMENTS, check=("scale_shift_invariance",)),
        envelope=one_pass_variance_in("float32"), nonfinite=True,
    ),
    Known(
        "keras-float64-as-float32",
        "Keras's dtype promotion (backend.result_type) maps float64 to float32 on every backend but "
        "TensorFlow, and LayerNormalization / BatchNormalization compute in result_type(x.dtype, "
        "'float32'): a float64 layer on JAX or torch normalizes, differentiates and updates its "
        "running statistics in float32, then casts back to float64",
        "https://github.com/keras-team/keras/issues/23704",
        lambda r: _in(r, adapter=_KERAS_32, dtype=("float64",)),
        envelope=computes_in("float32"),
    ),
    Known(
        "tf-moments-stop-gradient-second-order",
        "tf.nn.moments takes the variance about stop_gradient(mean) (its comment: it 'does not change the "
        "gradient', true only of first derivatives), so differentiating a gradient through it — Keras 3's TF "
        "backend moments, tf_keras's non-fused BatchNorm and LayerNorm — gets the variance's second derivative "
        "as (2/n)·I instead of (2/n)(I − 11ᵀ/n): ∂⟨dx, v⟩/∂x is off by −(Σγ·dy·x̂)(Σv)/(n²·s²) on every "
        "position of a group. Reproducer (TF 2.21, float64): x = [1, 2, 4, 8]; nested GradientTapes over "
        "tf.nn.moments(x, [0])[1] give Hessian row sums [0.5, 0.5, 0.5, 0.5], tf.math.reduce_variance gives "
        "[0, 0, 0, 0]",
        "https://github.com/tensorflow/tensorflow/blob/master/tensorflow/python/ops/nn_impl.py",
        lambda r: _in(r, adapter=("keras[tensorflow]", "tf_keras"), op=_CENTRED, check=("second_order_dx",))
        and not _params(r).get("masked"),
        envelope=stopped_mean_gradient,
    ),
    Known(
        "tf-keras-fused-ignores-mask",
        "tf_keras BatchNormalization takes its fused kernel by default for 4-D/5-D float32 and half "
        "inputs, and the fused kernel ignores `mask` (a warning says so; fused=False would honour it)",
        "https://github.com/tensorflow/tensorflow/issues/30161",
        lambda r: _in(r, adapter=("tf_keras",), dtype=("float32", "float16", "bfloat16"))
        and _params(r).get("masked") and len(r.get("shape") or ()) in (4, 5),
        envelope=ignores_mask,
    ),
    Known(
        "tf-keras-mask-last-axis",
        "tf_keras's masked BatchNorm moments expand the mask on the last axis whatever `axis` is "
        "(tf.nn.weighted_moments with the mask at axis -1), so channels-first inputs with a mask raise",
        "https://github.com/keras-team/tf-keras/blob/master/tf_keras/layers/normalization/batch_normalization.py",
        lambda r: _in(r, adapter=("tf_keras",), layout=("channels_first",)) and _params(r).get("masked"),
        raises=("ValueError", "InvalidArgumentError"),
    ),
    Known(
        "tf-keras-float32-decay",
        "tf_keras's non-fused BatchNorm updates running statistics with decay = "
        "tf.convert_to_tensor(1.0 - momentum), a float32 tensor cast to the variable's dtype, so at "
        "float64 the momentum is rounded to float32 (0.1 becomes 0.100000001)",
        "https://github.com/keras-team/tf-keras/blob/master/tf_keras/layers/normalization/batch_normalization.py",
        lambda r: _in(r, adapter=("tf_keras",), op=("batch_norm",), dtype=("float64",),
                      check=("running_mean", "running_var", "running_mean_steps", "running_var_steps",
                             "train_after_eval")),
        envelope=computes_in("float32"),
    ),
    Known(
        "tf-keras-half-precision",
        "tf_keras LayerNormalization and GroupNormalization (InstanceNorm as groups=-1) under a float16 "
        "dtype compute in float16 (LayerNormalization upcasts only under a mixed policy; GroupNormalization "
        "casts tf.nn.weighted_moments' float32 statistics back to float16): the variance overflows to inf "
        "for std > 256, making the output β, and x·rsqrt(var + eps) overflows for |x|/σ > 65504, where "
        "Keras 3 normalizes in float32 (keras-core PR 412: LN and BN do not work in float16)",
        "https://github.com/keras-team/keras-core/pull/412",
        lambda r: _in(r, adapter=("tf_keras",), op=("layer_norm", "group_norm", "instance_norm"),
                      dtype=("float16",), check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta"))
        and (r.get("input") in ("offset1e4", "large", "tiny_variance", "constant")
             or _measured(_group_sums, r) >= overflow_threshold("float16")),  # a float16 sum of the moments overflows
        envelope=variance_overflows, nonfinite=True,
    ),
    Known(
        "torch-group-norm-channels-last-one-pass",
        "torch's CPU GroupNorm on a channels_last input takes its statistics in one pass (sums of x and x², "
        "var = E[x²] − E[x]²), where the contiguous kernel uses Welford (pytorch/pytorch#54921), so it "
        "cancels when |mean| ≫ std. Found by normbench search (group_norm-1x1x2x1-float32-offset1e2-"
        "channels_last-groups1). Reproducer: x = 1e4 + torch.randn(2, 8, 6, 5, dtype=torch.float64); "
        "F.group_norm(x.float().contiguous(memory_format=torch.channels_last), 2) is off the float64 result "
        "by 992, the contiguous float32 input by 1.5e-3; in float64, 6.3e-8 against 0 (torch 2.13 CPU)",
        "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/cpu/group_norm_kernel.cpp",
        lambda r: _in(r, adapter=("torch",), op=("group_norm",), layout=("channels_last",),
                      check=("forward_train", "grad_dx", "grad_dgamma", "jvp", "second_order_dx",
                             "second_order_dgamma")) and _conditioned(r),
        envelope=one_pass_variance_in(PROMOTED),  # half inputs: float32 opmath
    ),
    Known(
        "torch-half-rstd-overflow",
        "torch's CPU LayerNorm, BatchNorm, GroupNorm and InstanceNorm keep the saved reciprocal standard "
        "deviation in the input dtype: in float16, 1/√(var + eps) past 65504 (a near-constant group and eps "
        "below 2.3e-10) is stored as inf, and the backward (BatchNorm and InstanceNorm also the forward) "
        "returns NaN where the exact values are finite and representable. Reproducer: x = torch.ones(1, 2, "
        "dtype=torch.float16, requires_grad=True); F.layer_norm(x, [2], eps=1e-10).backward(torch.tensor([["
        "0.25, -0.25]], dtype=torch.float16)); x.grad is [nan, nan], float64 gives [25000, -25000]; "
        "torch.ops.aten.native_layer_norm returns rstd = inf in float16 (torch 2.13 CPU; the CUDA form of "
        "this was pytorch/pytorch#41527)",
        "https://github.com/pytorch/pytorch/issues/41527",
        lambda r: _in(r, adapter=("torch",), dtype=("float16",), op=_CENTRED,
                      check=("forward_train", "grad_dx", "grad_dgamma", "grad_dbeta", "jvp", "second_order_dx",
                             "second_order_dgamma"))
        and _measured(_largest_rstd, r) >= overflow_threshold("float16"),
        nonfinite=True,  # NaN only: a finite error is not this cause
    ),
    Known(
        "torch-instance-norm-channels-last-batch-one",
        "torch's InstanceNorm2d backward with a channels_last-strided upstream gradient and a batch of one "
        "returns a wrong dx (the same gradient made contiguous, or a batch of two, gives the right one): "
        "instance_norm runs batch_norm on the input viewed as (1, N·C, H, W), where N = 1 leaves the "
        "memory format ambiguous. Reproducer: x = torch.randn(1, 5, 7, 3, dtype=torch.float64).movedim(3, "
        "1).requires_grad_(); dy = torch.randn(1, 5, 7, 3, dtype=torch.float64).movedim(3, 1); m = "
        "torch.nn.InstanceNorm2d(3); torch.autograd.grad(m(x), x, dy) differs from torch.autograd.grad(m(x), "
        "x, dy.contiguous()) by 2.9 (torch 2.13 CPU)",
        "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/Normalization.cpp",
        lambda r: _in(r, adapter=("torch",), op=("instance_norm",), layout=("channels_last",),
                      check=("grad_dx", "grad_dgamma", "grad_dbeta")) and (r.get("shape") or [0])[0] == 1,
        envelope=wrong_gradient,
    ),
    Known(
        "torch-group-norm-jvp-channels-last",
        "torch's forward-mode derivative of group_norm raises on a channels_last input on CPU: aten::group_norm "
        "keeps a CPU input in its suggested memory format, and native_group_norm's forward-AD formula "
        "(group_norm_jvp in FunctionsManual.cpp) flattens it with .view({1, N·G, -1}), which channels-last strides "
        "cannot take (reverse mode uses reshape and works). Reproducer: x = torch.randn(2, 8, 5, 7).contiguous("
        "memory_format=torch.channels_last); torch.func.jvp(lambda a: torch.nn.functional.group_norm(a, 4), (x,), "
        "(torch.randn_like(x),)) raises RuntimeError: view size is not compatible with input tensor's size and "
        "stride (torch 2.13 CPU)",
        "https://github.com/pytorch/pytorch/blob/main/torch/csrc/autograd/FunctionsManual.cpp",
        lambda r: _in(r, adapter=("torch",), op=("group_norm",), layout=("channels_last",), check=("jvp",))
        and len(r.get("shape") or ()) >= 4,
        raises=("RuntimeError",),
    ),
    Known(
        "torch-half-batchnorm-overflow",
        "torch's CPU BatchNorm in float16 overflows to inf on channels-last (strided) inputs near the "
        "float16 limit (~6e4), where a contiguous copy of the same input does not: that kernel keeps an "
        "intermediate in half precision (PR 126525 widened var_sum on another path)",
        "https://github.com/pytorch/pytorch/pull/126525",
        lambda r: _in(r, adapter=("torch",), dtype=("float16",), input=("large",), op=("batch_norm",),
                      layout=("channels_last",)),
        nonfinite=True,
    ),
)


def matching(row: Row) -> list[Known]:
    """Every known divergence whose conditions this record meets."""
    return [k for k in KNOWN if k.matches(row)]


def lookup(row: Row) -> Known | None:
    """The first known divergence whose conditions this record meets, if any."""
    return next(iter(matching(row)), None)


def explain(row: Row) -> tuple[Known | None, bool, str]:
    """(entry, within its envelope, how far) for a failing record: the first matching entry that
    explains it, else the first matching one (the record stays a failure), else (None, False, "").
    Causes can overlap (a float64 layer computed in float32 that also uses one-pass variance)."""
    entries = matching(row)
    verdicts = [(k, *k.explains(row)) for k in entries]
    return next((v for v in verdicts if v[1]), verdicts[0] if verdicts else (None, False, ""))
