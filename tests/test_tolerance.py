"""The tolerance policy: it accepts correct conditioning-limited error and rejects fast variance."""

from __future__ import annotations

import numpy as np
import pytest

from normbench.adapters import registry
from normbench.numerics import reference, tolerance
from normbench.ops.dtypes import machine_eps, resolve
from normbench.ops.spec import NormSpec
from normbench.results import records

from .conftest import require_installed
from .helpers import run_cli

SPEC = NormSpec("layer_norm")


def _offset_input(mean: float, shape=(4, 768)) -> np.ndarray:
    return (mean + np.random.default_rng(0).standard_normal(shape)).astype(np.float32)


def two_pass_f32(x: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True, dtype=np.float32)
    var = ((x - mean) ** 2).mean(-1, keepdims=True, dtype=np.float32)
    return (x - mean) / np.sqrt(var + np.float32(eps))


def fast_variance_f32(x: np.ndarray, eps: float) -> np.ndarray:
    """E[x²] − E[x]², as flax.linen does by default."""
    mean = x.mean(-1, keepdims=True, dtype=np.float32)
    var = (x * x).mean(-1, keepdims=True, dtype=np.float32) - mean * mean
    return (x - mean) / np.sqrt(np.maximum(var, 0) + np.float32(eps))


def _judge(impl, mean: float) -> tolerance.Verdict:
    x = _offset_input(mean)
    bound = tolerance.forward_bound(SPEC, "float32", x)
    return tolerance.judge("y", impl(x, SPEC.eps), reference.forward(SPEC, x), bound)


@pytest.mark.parametrize("mean", [0.0, 1e2, 1e4])
def test_float32_two_pass_passes_at_any_offset(mean):
    verdict = _judge(two_pass_f32, mean)
    assert verdict.passed, verdict.message


def test_two_pass_error_at_1e4_is_the_conditioning_not_zero():
    """About 1e4·2⁻²³ ≈ 1.2e-3, as a numerics person predicts: the check is not vacuous."""
    verdict = _judge(two_pass_f32, 1e4)
    assert 1e-4 < verdict.max_abs_err < 1e-2


@pytest.mark.parametrize("mean", [1e3, 1e4])
def test_float32_fast_variance_fails_at_large_offset(mean):
    """Its error grows as κ², the bound as κ: from κ ≈ 1e3 on (n = 768) it is out."""
    verdict = _judge(fast_variance_f32, mean)
    assert not verdict.passed
    assert verdict.ratio > 1


def test_fast_variance_is_fine_when_well_conditioned():
    assert _judge(fast_variance_f32, 0.0).passed


def test_policy_grows_with_reduction_size_conditioning_and_epsilon():
    base = tolerance.tolerance("float32", 16, 0.0, 1.0)
    assert tolerance.tolerance("float32", 1024, 0.0, 1.0) > base
    assert tolerance.tolerance("float32", 16, 100.0, 1.0) > base
    assert tolerance.tolerance("float32", 16, 0.0, 10.0) == pytest.approx(10 * base)
    ratio = tolerance.tolerance("float16", 16, 0.0, 1.0) / base
    assert ratio == pytest.approx(machine_eps("float16") / machine_eps("float32"))


@pytest.mark.parametrize(("dtype", "eps"), [("float64", 2.0**-52), ("float32", 2.0**-23),
                                            ("float16", 2.0**-10), ("bfloat16", 2.0**-7)])
def test_machine_eps(dtype, eps):
    assert machine_eps(dtype) == eps


def test_judge_treats_nan_as_infinitely_wrong():
    bound = tolerance.Bound(np.ones(3), np.ones(3))
    v = tolerance.judge("y", np.array([0.0, np.nan, 0.0]), np.zeros(3), bound)
    assert not v.passed and v.max_abs_err == np.inf


def test_judge_reports_error_in_epsilons():
    unit = machine_eps("float32")
    bound = tolerance.Bound(np.full(2, 10 * unit), np.full(2, unit))
    v = tolerance.judge("y", np.array([1.0 + 3 * unit, 1.0]), np.ones(2), bound)
    assert v.passed and v.err_eps == pytest.approx(3)


def test_judge_rejects_wrong_shape():
    bound = tolerance.Bound(np.ones(3), np.ones(3))
    assert not tolerance.judge("y", np.zeros(2), np.zeros(3), bound).passed


def test_running_variance_bound_rejects_fast_variance():
    spec = NormSpec("batch_norm")
    x = _offset_input(1e4, (256, 4))
    mean_b, var_b = tolerance.running_bound(spec, "float32", np.zeros(4), np.ones(4), x)
    fast = (x * x).mean(0, dtype=np.float32) - x.mean(0, dtype=np.float32) ** 2
    two_pass = ((x - x.mean(0, dtype=np.float32)) ** 2).mean(0, dtype=np.float32)
    _, want = reference.update_running(spec, np.zeros(4), np.ones(4), x, unbiased=False)
    k = spec.momentum
    assert tolerance.judge("v", (1 - k) + k * two_pass, want, var_b).passed
    assert not tolerance.judge("v", (1 - k) + k * fast, want, var_b).passed


@pytest.mark.parametrize("errors", [[5.0, 0.5], [5.0, 1.5], [0.5, 0.05], [0.0, 0.0]])
def test_summary_tolerance_is_consistent_with_the_verdict(errors):
    """Per-element tolerances (10, 1) differ; the summary must still read err <= tol iff pass."""
    bound = tolerance.Bound(np.array([10.0, 1.0]), np.ones(2))
    v = tolerance.judge("y", np.array(errors), np.zeros(2), bound)
    assert v.passed == (v.max_abs_err <= v.tolerance) == all(e <= t for e, t in zip(errors, (10, 1), strict=True))


def test_values_that_round_to_inf_expect_inf_and_others_do_not():
    """float16 rounds up to 65519.99 down to 65504 and from 65520 on to inf."""
    bound = tolerance.Bound(np.full(1, 16.0), np.ones(1))  # half an ulp at 65504
    f16 = np.float16
    assert tolerance.judge("y", np.array([65504], f16), np.array([65510.0]), bound).passed
    assert tolerance.judge("y", np.array([np.inf], f16), np.array([65520.0]), bound).passed
    assert not tolerance.judge("y", np.array([np.inf], f16), np.array([65510.0]), bound).passed
    assert not tolerance.judge("y", np.array([65504], f16), np.array([7e4]), bound).passed
    assert not tolerance.judge("y", np.array([-np.inf], f16), np.array([7e4]), bound).passed


def test_a_finite_answer_within_tolerance_of_an_exact_value_past_the_format_is_right():
    """Found by `normbench search`: torch's float16 BatchNorm dx of 65504 where the exact value
    (~65530) rounds to inf; computed a hair low, within tolerance of the exact value, it is right."""
    bound = tolerance.Bound(np.full(1, 64.0), np.ones(1))
    f16 = np.float16
    assert tolerance.judge("dx", np.array([65504], f16), np.array([65530.0]), bound).passed
    assert tolerance.judge("dx", np.array([np.inf], f16), np.array([65530.0]), bound).passed
    far = tolerance.judge("dx", np.array([65504], f16), np.array([1e6]), bound)
    assert not far.passed and far.max_abs_err == 1e6 - 65504  # measured against the exact value, not inf


def _ln_jvp_f32(x, tx):
    """A float32 two-pass LayerNorm JVP (γ = 1), as a framework's forward mode computes it."""
    mean = x.mean(-1, keepdims=True, dtype=np.float32)
    c = x - mean
    s = np.sqrt((c * c).mean(-1, keepdims=True, dtype=np.float32) + np.float32(SPEC.eps))
    xhat = c / s
    return (tx - tx.mean(-1, keepdims=True) - xhat * (xhat * tx).mean(-1, keepdims=True)) / s


@pytest.mark.parametrize("mean", [0.0, 1e2, 1e4])
def test_float32_forward_mode_passes_at_any_offset_and_a_wrong_term_fails(mean):
    x = _offset_input(mean)
    tx = np.random.default_rng(1).standard_normal(x.shape).astype(np.float32)
    bound = tolerance.jvp_bound(SPEC, "float32", x, None, tx)
    want = reference.jvp(SPEC, x, None, tx)
    assert tolerance.judge("jvp", _ln_jvp_f32(x, tx), want, bound).passed
    centred_only = (tx - tx.mean(-1, keepdims=True)) / x.std(-1, keepdims=True)  # drops −x̂·m(x̂·t)
    # at 1e4 the conditioning allows ~(1 + κ)·ε·√n of the tangent's scale, more than that term
    assert tolerance.judge("jvp", centred_only, want, bound).passed == (mean == 1e4)


def test_second_order_bounds_come_from_the_one_policy():
    """Same derivation in every dtype: the bound scales with the machine epsilon and grows with κ."""
    rng = np.random.default_rng(2)
    x, dy, v = (rng.standard_normal((4, 64)) for _ in range(3))
    b32, b64 = (tolerance.second_order_bounds(SPEC, d, x, None, dy, v) for d in ("float32", "float64"))
    ratio = machine_eps("float32") / machine_eps("float64")
    assert np.allclose(b32[0].tol, ratio * b64[0].tol) and np.allclose(b32[1].tol, ratio * b64[1].tol)
    shifted = tolerance.second_order_bounds(SPEC, "float32", x + 1e3, None, dy, v)
    assert np.all(shifted[0].tol > b32[0].tol)


def test_a_constant_channel_running_variance_allows_the_square_of_its_means_error():
    """Found by `normbench search`: keras[jax] stores 3.2e-14 for a 1866-value constant channel in
    float32, where the exact variance is 0 and the bound was 0. (1/n)·Σ(x − μ̂)² = (μ̂ − μ)²."""

    spec = NormSpec(op="batch_norm", momentum=1.0)
    x = np.full((1866, 1), 0.7, np.float32)
    mean = np.float32(0)
    for v in x[:, 0]:  # sequential float32 sum: the worst order, errors of one sign
        mean = np.float32(mean + v)
    mean = np.float32(mean / np.float32(len(x)))
    var32 = np.mean((x[:, 0] - mean) ** 2, dtype=np.float32)
    assert var32 > 0
    rm, rv = np.zeros(1), np.zeros(1)  # no old value: r − k·(r − v) rounds nothing of it (the last test below)
    _, var_b = tolerance.running_bound(spec, "float32", rm, rv, x.astype(np.float64))
    assert 0 < var_b.tol[0] < 4e-9  # ((λ·(1 + √n) + n/4)·ε·|μ|)², ε = 2⁻²³: equal terms round alike (lockstep)
    assert tolerance.judge("running_var", np.array([var32]), np.zeros(1), var_b).passed
    assert tolerance.judge("running_var", np.array([3.2e-14]), np.zeros(1), var_b).passed
    assert not tolerance.judge("running_var", np.array([1e-8]), np.zeros(1), var_b).passed


@pytest.mark.parametrize("dtype", ["float64", "float32", "float16", "bfloat16"])
def test_smallest_subnormal_is_the_formats_own(dtype):
    import ml_dtypes

    tau = tolerance.smallest_subnormal(dtype)
    assert tau == float(ml_dtypes.finfo(resolve(dtype)).smallest_subnormal) > 0
    assert np.asarray(tau / 2, np.float64).astype(resolve(dtype)) in (0, tau)  # no format value below τ


def test_the_floor_is_lambda_half_spacings_of_the_subnormal_range():
    """Rounding to float16 alone costs up to 2⁻²⁵ below its smallest normal: the floor is λ of those."""
    assert tolerance.subnormal_floor("float16") == tolerance.LAMBDA * 2.0**-25 == 2.0**-23
    assert tolerance.tolerance("float16", 2, 0.0, 0.0) == 2.0**-23
    assert tolerance.tolerance("float32", 2, 0.0, 0.0) == tolerance.LAMBDA * 2.0**-150


def test_above_the_floor_the_tolerance_is_what_it_was():
    for dtype, magnitude in (("float16", 1e-4), ("float32", 1e-30), ("bfloat16", 1e-30), ("float64", 1e-300)):
        assert tolerance.tolerance(dtype, 4, 0.5, magnitude) == tolerance.LAMBDA * machine_eps(dtype) * 4 * magnitude


def test_a_float16_subnormal_rounded_correctly_passes_and_one_steps_off_fails():
    """Found by `normbench search` (rms_norm-1x2-float16-shifted:0:5000-eps5, grad_dx): the exact dx
    −1.9375206e-07 is 3.25 float16 subnormal steps; every correct implementation returns the nearest
    float16, 3 steps (−1.7881393e-07), 2.2e-8 off where the relative terms allowed 7.89e-09."""
    exact = np.array([-1.9375206e-07])
    got = exact.astype(np.float16)
    assert float(got[0]) == -3 * 2.0**-24
    magnitude = 7.89e-09 / (tolerance.LAMBDA * machine_eps("float16") * (1 + np.sqrt(2)))  # that tolerance
    bound = tolerance._bound("float16", 2, 0.0, magnitude)
    assert tolerance.judge("dx", got, exact, bound).passed
    relative_only = tolerance.Bound(np.full(1, 7.89e-09), bound.unit, "float16")
    assert not tolerance.judge("dx", got, exact, relative_only).passed  # the false alarm it was
    assert not tolerance.judge("dx", got - np.float16(3 * 2.0**-24), exact, bound).passed  # 3 steps more: wrong


def test_every_float16_subnormal_rounding_is_within_the_floor():
    exact = np.linspace(-2.0**-14, 2.0**-14, 4001)
    bound = tolerance._bound("float16", 1, 0.0, np.zeros_like(exact))
    assert tolerance.judge("y", exact.astype(np.float16), exact, bound).passed


def test_a_coarser_returned_format_allows_one_spacing_at_the_value_subnormals_included():
    """A float32 computation returned in float16 rounds once more: by ε·|value| for a normal value,
    by τ = 2⁻²⁴ below float16's smallest normal, where ε·|value| would be far less."""
    exact = np.array([1.0, -1.9375206e-07, 0.0])
    inner = tolerance._bound("float32", 1, 0.0, np.zeros(3))
    bound = tolerance.returned_in(inner, exact.astype(np.float16), exact)
    np.testing.assert_allclose(bound.tol - inner.tol, [machine_eps("float16"), 2.0**-24, 2.0**-24], rtol=1e-12)
    assert tolerance.judge("y", exact.astype(np.float16), exact, bound).passed


def test_the_search_replay_that_met_the_subnormal_false_alarm_passes(tmp_path):
    """`normbench search --replay 'rms_norm-1x2-float16-shifted:0:5000-eps5' --adapters numpy,torch`
    failed grad_dx on both (and on an independent float64 implementation): each returns the float16
    nearest the exact dx, 3 subnormal steps. With the floor every check of the case passes."""
    require_installed(registry.get("torch"))
    out = tmp_path / "r"
    proc = run_cli("search", "--replay", "rms_norm-1x2-float16-shifted:0:5000-eps5", "--adapters", "numpy,torch",
                   "-o", str(out), "--no-report")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [r for f in sorted(out.rglob("results.jsonl")) for r in records.read(f)[1]]
    dx = {r["adapter"]: r for r in rows if r["check"] == "grad_dx"}
    assert set(dx) == {"numpy", "torch"} and all(r["outcome"] == "pass" for r in rows), rows
    # the floor decided: its error, 2.2e-8, is past the relative terms' 7.89e-9
    assert all(r["max_abs_err"] > 2e-8 and r["tolerance"] == pytest.approx(2.0**-23) for r in dx.values())


def test_an_instance_norm_running_mean_is_bounded_by_the_instance_means_it_averages():
    """InstanceNorm's running mean averages each instance's mean: two instances at +5.3e4 and −5.4e4
    average to −125, but the float64 sum rounds terms of k·5.4e4. The bound counts those terms."""
    spec = NormSpec("instance_norm", layout="channels_first", running_stats=True, momentum=0.01)
    x = np.array([53454.9160825, 53467.56574792, -54085.79326736, -53337.02539578]).reshape(2, 1, 2)
    rm, rv = np.array([0.15629650156638694]), np.array([0.8798853333525394])
    mean_bound, _ = tolerance.running_bound(spec, "float64", rm, rv, x)
    assert float(np.max(mean_bound.tol)) >= machine_eps("float64") * 0.01 * 53700


def test_the_search_replay_of_an_instance_norm_running_mean_passes(tmp_path):
    """`normbench search --replay instance_norm-2x3923x1x2-float64-large-channels_first-momentum0.01-noaffine-running
    --adapters torch` failed running_mean at 8.9x a tolerance of 8.7e-15: torch updates each instance's running
    mean, then averages them, rounding terms of k·|instance mean| ≈ 535 where the batch's mean is −125."""
    require_installed(registry.get("torch"))
    case = "instance_norm-2x3923x1x2-float64-large-channels_first-momentum0.01-noaffine-running"
    proc = run_cli("search", "--replay", case, "--adapters", "numpy,torch", "-o", str(tmp_path / "r"), "--no-report")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [r for f in sorted((tmp_path / "r").rglob("results.jsonl")) for r in records.read(f)[1]]
    assert {r["adapter"] for r in rows if r["check"] == "running_mean"} == {"numpy", "torch"}
    assert all(r["outcome"] == "pass" for r in rows), [r["message"] for r in rows if r["outcome"] != "pass"]


def _sequential_mean(row: np.ndarray) -> np.float32:
    """A float32 mean summed term by term (np.add.accumulate): the worst order, as a thread of torch's
    channels-last BatchNorm sums its rows."""
    return np.float32(np.add.accumulate(row.astype(np.float32))[-1] / np.float32(len(row)))


def test_equal_terms_round_alike_past_the_random_walk_and_within_lockstep():
    """200 constant rows of 9,207 values: a sequential float32 mean errs by up to ~1,100 ε of |μ|
    (2.9x λ·√n = 384), because every addition of a binade rounds the same way; λ·√n plus
    ``lockstep`` (n/4 = 2,302 here) holds for every row."""
    eps, n, rng = machine_eps("float32"), 9207, np.random.default_rng(0)
    errs = []
    for _ in range(200):
        c = np.float32(rng.uniform(0.1, 10))
        errs.append(abs(float(_sequential_mean(np.full(n, c))) - float(c)) / (eps * float(c)))
    walk, locked = tolerance.LAMBDA * np.sqrt(n), tolerance.lockstep("float32", n, 1.0, 0.0)
    assert locked == pytest.approx(n / 4)
    assert max(errs) > 2 * walk  # the random walk alone is no bound here
    assert max(errs) <= walk + locked


@pytest.mark.parametrize("spread", [1e-9, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2])
def test_near_constant_rows_stay_within_lockstep_as_their_spread_grows(spread):
    """Rows of 9,207 values c·(1 + spread·z): up to spread ≈ 1e-4 the terms still agree below the partial
    sums' spacing (1.2x the random walk there); from ~1e-3 on (k₀ = spread/ε ≈ n) they round at random
    and ``lockstep`` fades to 0."""
    eps, n, rng = machine_eps("float32"), 9207, np.random.default_rng(1)
    for _ in range(40):
        c = rng.uniform(0.1, 10)
        row = (c * (1 + spread * rng.standard_normal(n))).astype(np.float32)
        mu, sd = float(row.astype(np.float64).mean()), float(row.astype(np.float64).std())
        err = abs(float(_sequential_mean(row)) - mu) / (eps * abs(mu))
        assert err <= tolerance.LAMBDA * np.sqrt(n) + tolerance.lockstep("float32", n, mu, sd)
    assert (tolerance.lockstep("float32", n, 1.0, spread) == 0) == (spread / eps >= n)


def test_lockstep_leaves_every_spread_out_group_as_it_was():
    """A normal row and one at offset 1e4 (κ₀ = 1e4: k₀ = 839 ≥ n = 768) get the tolerance the policy
    gave before: nothing but near-constant groups changes."""
    for x in (_offset_input(0.0), _offset_input(1e4)):
        bound = tolerance.forward_bound(SPEC, "float32", x)
        m = reference.moments(SPEC, x)
        kappa = np.abs(m.mean) / np.sqrt(m.var + SPEC.eps)
        xhat = (x - m.mean) / np.sqrt(m.var + SPEC.eps)
        np.testing.assert_array_equal(bound.tol, tolerance.tolerance("float32", 768, kappa, 1 + np.abs(xhat)))


def test_a_sequential_two_pass_layer_norm_of_a_constant_row_passes_and_a_wrong_mean_fails():
    """y = (x − μ̂)/√(σ̂² + eps) of a constant row: every digit of y − β is μ̂'s error over √eps. A
    sequential float32 mean fails the random walk's bound and passes the policy; a mean off by
    ten times its lockstep worst case does not."""
    n, c = 9207, np.float32(0.17581153)
    x = np.full((1, n), c, np.float32)
    mean = _sequential_mean(x[0])
    var = np.mean((x - mean) ** 2, dtype=np.float32)
    y = (x - mean) / np.sqrt(var + np.float32(SPEC.eps))
    bound = tolerance.forward_bound(SPEC, "float32", x)
    verdict = tolerance.judge("y", y, reference.forward(SPEC, x), bound)
    assert verdict.passed, verdict.message
    walk = tolerance.tolerance("float32", n, np.abs(float(c)) / np.sqrt(SPEC.eps), 1.0)
    assert verdict.max_abs_err > walk.max()  # what the random walk alone allowed
    wrong = np.float32(float(c) * (1 + 10 * machine_eps("float32") * n / 4))
    y_wrong = (x - wrong) / np.sqrt(var + np.float32(SPEC.eps))
    assert not tolerance.judge("y", y_wrong, reference.forward(SPEC, x), bound).passed


def test_an_rms_norm_of_a_constant_row_summing_squares_in_order_passes():
    """RMSNorm's sum of squares is the second sum that rounds alike: x² is constant. At n = 65,536 a
    sequential float32 mean square errs by more than λ·√n·(1 + |x̂|) allows; the lockstep term covers it."""
    spec, n = NormSpec("rms_norm"), 65536
    rng, worst = np.random.default_rng(2), 0.0
    for _ in range(20):
        x = np.full((1, n), np.float32(rng.uniform(0.5, 2)), np.float32)
        ms = _sequential_mean((x[0] * x[0]).astype(np.float32))
        y = x / np.sqrt(ms + np.float32(spec.eps))
        verdict = tolerance.judge("y", y, reference.forward(spec, x), tolerance.forward_bound(spec, "float32", x))
        assert verdict.passed, verdict.message
        walk = tolerance.tolerance("float32", n, 0.0, 1 + np.abs(reference.forward(spec, x)))
        worst = max(worst, float(np.max(np.abs(y - reference.forward(spec, x)) / walk)))
    assert worst > 1  # what the random walk alone allowed


def test_a_one_pass_running_variance_of_a_constant_channel_still_fails():
    """Lockstep adds L'·ε·σ² to a running variance: nothing where σ² = 0, so E[x²] − E[x]² of a
    constant channel at 1e3 (float32: ~1e-1 where the truth is 0) is still caught."""
    spec = NormSpec("batch_norm", momentum=1.0)
    x = np.full((9207, 1), 1e3 + 0.1, np.float32)
    fast = np.abs((x * x).mean(0, dtype=np.float32) - x.mean(0, dtype=np.float32) ** 2)
    assert fast[0] > 1e-3
    _, var_b = tolerance.running_bound(spec, "float32", np.zeros(1), np.ones(1), x)
    assert not tolerance.judge("running_var", fast, np.zeros(1), var_b).passed


@pytest.mark.parametrize("case", ["batch_norm-1023x3x3x3-float32-constant-channels_last",
                                  "instance_norm-1x1x771x3-float64-constant-channels_first-noaffine-running"])
def test_the_search_replays_of_constant_inputs_pass(tmp_path, case):
    """`normbench search` failed torch's forward on these at 1.24x and 1.04x: a mean of 9,207 (2,313)
    equal values, summed in order by each of two threads, off by 524 ε (≈20 ulp), over √eps."""
    require_installed(registry.get("torch"))
    proc = run_cli("search", "--replay", case, "--adapters", "torch", "-o", str(tmp_path / "r"), "--no-report")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [r for f in sorted((tmp_path / "r").rglob("results.jsonl")) for r in records.read(f)[1]]
    forward = [r for r in rows if r["check"] == "forward_train"]
    assert forward and all(r["outcome"] == "pass" for r in rows), [r["message"] for r in rows]


def test_a_running_variance_updated_as_r_minus_k_times_r_minus_v_passes():
    """tf_keras updates moving statistics as r − k·(r − v) (assign_moving_average), which rounds r − v: at
    momentum 1 a batch variance of 2.05e-7 replacing 1.0 came back 1.788e-7 in float32, 290x a tolerance
    that counted only (1 − k)·|r| = 0 of the old value. All of |r| counts now; a wrong convention still fails."""
    spec = NormSpec("batch_norm", momentum=1.0)
    x = np.array([[1.0], [1.0 + 9.05e-4]], np.float32)
    rm, rv = np.zeros(1), np.ones(1)
    _, want = reference.update_running(spec, rm, rv, x, unbiased=False)
    r, k = np.float32(1.0), np.float32(1.0)
    v = np.float32(np.var(x.astype(np.float64)))
    tf_form = np.array([r - k * np.float32(r - v)], np.float32)
    assert abs(float(tf_form[0]) - float(want[0])) > 1e-8  # the rounding of r − v, ~ε·|r|
    _, var_b = tolerance.running_bound(spec, "float32", rm, rv, x)
    assert tolerance.judge("running_var", tf_form, want, var_b).passed
    _, unbiased = reference.update_running(spec, rm, rv, x, unbiased=True)
    kept = np.array([1.0], np.float32)  # the old value kept: momentum read the other way round
    assert not tolerance.judge("running_var", kept, want, var_b).passed
    assert not tolerance.judge("running_var", np.float32(unbiased) + 1e-6, want, var_b).passed
