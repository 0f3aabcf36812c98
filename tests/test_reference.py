"""The oracle itself: against 60-digit mpmath, and its VJPs against finite differences."""

from __future__ import annotations

import itertools

import mpmath
import numpy as np
import pytest

from normbench.numerics import reference, tolerance
from normbench.ops.spec import NormSpec

mpmath.mp.dps = 60

SPECS = [
    (NormSpec("layer_norm"), (3, 5)),
    (NormSpec("layer_norm", normalized_ndim=2), (2, 3, 4)),
    (NormSpec("batch_norm"), (4, 3)),
    (NormSpec("batch_norm"), (2, 3, 4)),
    (NormSpec("batch_norm", layout="channels_last"), (2, 2, 3, 3)),
    (NormSpec("rms_norm"), (3, 5)),
    (NormSpec("rms_norm", normalized_ndim=2), (2, 3, 4)),
    (NormSpec("group_norm", groups=2), (2, 4, 3)),
    (NormSpec("group_norm", groups=3, layout="channels_last"), (2, 2, 3, 6)),
    (NormSpec("instance_norm"), (2, 3, 4)),
    (NormSpec("instance_norm", layout="channels_last"), (2, 2, 3, 3)),
]


def _groups(spec: NormSpec, shape):
    """Index lists of each normalized group, for a slow elementwise computation. Written from
    the definitions, not from stats_view: token ops group the trailing axes; BatchNorm all but
    the channel; GroupNorm per sample the channels c with c // (C/groups) alike; InstanceNorm
    per sample and channel."""
    ndim = len(shape)
    every = list(itertools.product(*(range(d) for d in shape)))
    if spec.op in ("layer_norm", "rms_norm"):
        key = lambda i: i[: ndim - spec.normalized_ndim]  # noqa: E731
    else:
        c = ndim - 1 if spec.layout == "channels_last" and ndim > 2 else 1
        per = {"batch_norm": None, "instance_norm": 1,
               "group_norm": shape[c] // spec.groups if spec.groups else None}[spec.op]
        key = (lambda i: i[c]) if per is None else (lambda i: (i[0], i[c] // per))
    groups: dict = {}
    for i in every:
        groups.setdefault(key(i), []).append(i)
    yield from groups.values()


def mp_forward(spec: NormSpec, x, gamma, beta) -> np.ndarray:
    """The definition, evaluated with 60 significant digits."""
    g = np.broadcast_to(gamma.reshape(spec.broadcast_shape(x.shape)), x.shape)
    b = np.broadcast_to(beta.reshape(spec.broadcast_shape(x.shape)), x.shape) if beta is not None else 0 * g
    out = np.empty(x.shape)
    for idx in _groups(spec, x.shape):
        vals = [mpmath.mpf(float(x[i])) for i in idx]
        mean = mpmath.fsum(vals) / len(vals) if spec.op != "rms_norm" else mpmath.mpf(0)
        var = mpmath.fsum((v - mean) ** 2 for v in vals) / len(vals)
        s = mpmath.sqrt(var + mpmath.mpf(spec.eps))
        for i, v in zip(idx, vals, strict=True):
            out[i] = float((v - mean) / s * mpmath.mpf(float(g[i])) + mpmath.mpf(float(b[i])))
    return out


def _inputs(kind: str, shape, rng):
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "offset1e4":
        return 1e4 + rng.standard_normal(shape)
    if kind == "constant":
        return np.full(shape, 0.1)
    if kind == "constant_offset":
        return np.full(shape, 1e4 + 0.3)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["normal", "offset1e4", "constant", "constant_offset"])
@pytest.mark.parametrize(("spec", "shape"), SPECS, ids=lambda v: str(v) if isinstance(v, tuple) else v.op)
def test_forward_matches_mpmath(spec, shape, kind):
    rng = np.random.default_rng(0)
    x = _inputs(kind, shape, rng)
    pshape = spec.param_shape(shape)
    gamma, beta = 1 + 0.5 * rng.standard_normal(pshape), rng.standard_normal(pshape)
    beta = beta if spec.kind.has_bias else None
    got = reference.forward(spec, x, gamma, beta)
    want = mp_forward(spec, x, gamma, beta)
    verdict = tolerance.judge("y", got, want, tolerance.forward_bound(spec, "float64", x, gamma, beta))
    assert verdict.passed, verdict.message
    assert np.all(np.isfinite(got))
    if kind.startswith("constant") and spec.kind.centred:  # zero variance: the output is β where the mean is exact
        assert verdict.max_abs_err < 1e-9 * np.abs(x).max()


def test_constant_rows_give_beta():
    spec = NormSpec("layer_norm")
    x = np.full((2, 8), 3.0)
    beta = np.arange(8.0)
    assert np.array_equal(reference.forward(spec, x, np.full(8, 2.0), beta), np.broadcast_to(beta, x.shape))


def test_masked_batch_norm_uses_unmasked_positions_only():
    spec = NormSpec("batch_norm", layout="channels_last")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 5, 3))
    mask = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], bool)
    x_junk = np.where(mask[..., None], x, 1e6)
    m = reference.channel_moments(spec, x_junk, mask)
    valid = x[mask]  # (8, 3)
    np.testing.assert_allclose(m.mean.reshape(-1), valid.mean(0), rtol=1e-12)
    np.testing.assert_allclose(m.var.reshape(-1), valid.var(0), rtol=1e-12)
    assert m.count.reshape(-1).tolist() == [8, 8, 8]


def test_instance_norm_running_statistics_average_each_instance():
    """torch's InstanceNorm update: the batch mean of per-instance means and (unbiased) variances."""
    spec = NormSpec("instance_norm", running_stats=True, momentum=1.0)
    x = np.array([[[0.0, 2.0, 4.0]], [[10.0, 10.0, 13.0]]])  # (N=2, C=1, L=3)
    mean, var = reference.update_running(spec, [0.0], [1.0], x, unbiased=False)
    assert mean[0] == pytest.approx((2 + 11) / 2) and var[0] == pytest.approx((8 / 3 + 2) / 2)
    _, var_u = reference.update_running(spec, [0.0], [1.0], x, unbiased=True)
    assert var_u[0] == pytest.approx((4 + 3) / 2)


def test_group_norm_groups_are_contiguous_channels():
    spec = NormSpec("group_norm", groups=2)
    x = np.array([[[1.0], [3.0], [100.0], [104.0]]])  # (N=1, C=4, L=1): groups {0, 1} and {2, 3}
    m = reference.moments(spec, x)
    assert m.mean.reshape(-1).tolist() == [2.0, 2.0, 102.0, 102.0]
    assert m.var.reshape(-1).tolist() == [1.0, 1.0, 4.0, 4.0]


def test_rms_norm_divides_by_the_root_mean_square():
    spec = NormSpec("rms_norm", eps=0.0)
    x = np.array([[3.0, 4.0]])
    np.testing.assert_allclose(reference.forward(spec, x, [1.0, 2.0]), [[3 / 12.5**0.5, 8 / 12.5**0.5]])


def test_running_update_conventions():
    """The FACTS.md example: one step, momentum 0.1, running stats (0, 1)."""
    spec = NormSpec("batch_norm", momentum=0.1)
    x = np.arange(12.0).reshape(2, 1, 2, 3)
    mean, var = reference.update_running(spec, [0.0], [1.0], x, unbiased=False)
    assert mean[0] == pytest.approx(0.55) and var[0] == pytest.approx(2.0916666666666667)
    _, var_u = reference.update_running(spec, [0.0], [1.0], x, unbiased=True)
    assert var_u[0] == pytest.approx(2.2)


def test_eval_uses_running_statistics():
    spec = NormSpec("batch_norm")
    x = np.arange(6.0).reshape(3, 2)
    y = reference.forward_eval(spec, x, [2.0, 1.0], [0.5, 0.0], [1.0, -1.0], [4.0, 1.0])
    want = np.array([2, 1]) * (x - [1, -1]) / np.sqrt(np.array([4, 1]) + 1e-5) + [0.5, 0]
    np.testing.assert_allclose(y, want, rtol=1e-15)


def _loss(spec, x, gamma, beta, dy, mask):
    return float(np.sum(dy * reference.forward(spec, x, gamma, beta, mask)))


def _finite_difference(f, a: np.ndarray) -> np.ndarray:
    """Central differences; step ε^(1/3) makes truncation and rounding errors both ~ε^(2/3)."""
    h = np.finfo(np.float64).eps ** (1 / 3) * max(1.0, float(np.abs(a).max()))
    out = np.empty_like(a)
    for i in np.ndindex(a.shape):
        up, down = a.copy(), a.copy()
        up[i] += h
        down[i] -= h
        out[i] = (f(up) - f(down)) / (2 * h)
    return out


MASKED = (NormSpec("batch_norm", layout="channels_last"), (2, 4, 3))


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize(("spec", "shape"), [*SPECS, MASKED], ids=lambda v: str(v) if isinstance(v, tuple) else v.op)
def test_vjp_matches_finite_differences(spec, shape, masked):
    if masked and spec.op != "batch_norm":
        pytest.skip("masks apply to batch_norm")
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape) + 3
    pshape = spec.param_shape(shape)
    gamma, beta = 1 + 0.5 * rng.standard_normal(pshape), rng.standard_normal(pshape)
    dy = rng.standard_normal(shape)
    mask = rng.random(spec.mask_shape(shape)) > 0.3 if masked else None
    if not spec.kind.has_bias:
        beta = None
    got = reference.vjp(spec, x, gamma, dy, mask)
    want = (
        _finite_difference(lambda a: _loss(spec, a, gamma, beta, dy, mask), x),
        _finite_difference(lambda a: _loss(spec, x, a, beta, dy, mask), gamma),
        None if beta is None else _finite_difference(lambda a: _loss(spec, x, gamma, a, dy, mask), beta),
    )
    # Central differences with that step are accurate to ~ε^(2/3) ≈ 4e-11 relative to
    # the loss scale; 1e-7 leaves room for the loss's size while catching any wrong term.
    scale = np.abs(dy).sum()
    for name, g, w in zip(("dx", "dgamma", "dbeta"), got, want, strict=True):
        if w is None:
            assert g is None, name
            continue
        assert np.abs(g - w).max() <= 1e-7 * scale, name


def _ad_inputs(spec, shape, masked):
    rng = np.random.default_rng(3)
    x = rng.standard_normal(shape) + 3
    pshape = spec.param_shape(shape)
    gamma, beta = 1 + 0.5 * rng.standard_normal(pshape), rng.standard_normal(pshape)
    tangents = [rng.standard_normal(a.shape) for a in (x, gamma, beta)]
    dy, v = rng.standard_normal(shape), rng.standard_normal(shape)
    mask = rng.random(spec.mask_shape(shape)) > 0.3 if masked else None
    if not spec.kind.has_bias:
        beta, tangents[2] = None, None
    return x, gamma, beta, tangents, dy, v, mask


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize(("spec", "shape"), [*SPECS, MASKED], ids=lambda v: str(v) if isinstance(v, tuple) else v.op)
def test_jvp_matches_finite_differences(spec, shape, masked):
    if masked and spec.op != "batch_norm":
        pytest.skip("masks apply to batch_norm")
    x, gamma, beta, (tx, tg, tb), _, _, mask = _ad_inputs(spec, shape, masked)
    got = reference.jvp(spec, x, gamma, tx, tg, tb, mask)

    def along(t):
        return reference.forward(spec, x + t * tx, gamma + t * tg, None if beta is None else beta + t * tb, mask)

    h = np.finfo(np.float64).eps ** (1 / 3)
    want = (along(h) - along(-h)) / (2 * h)
    assert np.abs(got - want).max() <= 1e-7 * (np.abs(tx).max() + np.abs(tg).max() + 1)


@pytest.mark.parametrize("masked", [False, True], ids=["plain", "masked"])
@pytest.mark.parametrize(("spec", "shape"), [*SPECS, MASKED], ids=lambda v: str(v) if isinstance(v, tuple) else v.op)
def test_second_order_matches_finite_differences_of_the_vjp(spec, shape, masked):
    """∂⟨dx, v⟩/∂x and ∂⟨dx, v⟩/∂γ, differencing the (itself finite-difference-checked) VJP."""
    if masked and spec.op != "batch_norm":
        pytest.skip("masks apply to batch_norm")
    x, gamma, _, _, dy, v, mask = _ad_inputs(spec, shape, masked)
    ddx, ddgamma = reference.second_order(spec, x, gamma, dy, v, mask)

    def penalty(a, g):
        return float(np.sum(reference.vjp(spec, a, g, dy, mask).dx * v))

    scale = np.abs(dy).sum() * np.abs(v).max()
    assert np.abs(ddx - _finite_difference(lambda a: penalty(a, gamma), x)).max() <= 1e-6 * scale
    assert np.abs(ddgamma - _finite_difference(lambda g: penalty(x, g), gamma)).max() <= 1e-6 * scale
