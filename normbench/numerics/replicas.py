"""The float64 oracle for BatchNorm synchronized across data-parallel replicas.

Each replica holds a shard of the global batch (shards may differ in size, and a mask may
leave some positions out). Cross-replica BatchNorm must normalize every shard with the
statistics of the whole batch, so the reference merges each replica's (count, mean, M2) with
Chan, Golub and LeVeque's pairwise update — what an exact all-reduce of the statistics gives,
without ever forming E[x²] − E[x]² — and the project's tests check the merge against the
statistics of the concatenated batch.

Two wrong kinds of statistics are modelled too, because they are what implementations get
wrong and the suite measures which one a layer uses: ``unweighted`` averages the replicas'
means and mean squares with equal weight whatever each replica holds (``lax.pmean`` of
per-device moments), and ``local`` normalizes each replica with its own shard alone (a
BatchNorm that does not synchronize). Every statistic of the three kinds is an average of x
and x² with weights a_i per element (global: 1/N; unweighted: 1/(R·n_r); local: 1/n_r within
replica r), so one VJP formula serves all three:

    dx_i = (g_i − a_i·Σ_j g_j − a_i·x̂_i·Σ_j g_j·x̂_j) / s,   g = γ·dy,

with the sums taken over whatever the statistic pools (the whole batch, or the replica).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from ..ops.spec import NormSpec

KINDS = ("global", "unweighted", "local")


class Stats(NamedTuple):
    """One replica's (or a merged group's) per-channel statistics, shape ``param_shape``."""

    count: np.ndarray
    mean: np.ndarray
    m2: np.ndarray  # Σ (x − mean)² over the counted positions

    @property
    def var(self) -> np.ndarray:
        """Biased (population) variance."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.m2 / self.count


def _axes(spec: NormSpec, ndim: int) -> tuple[int, ...]:
    keep = spec.param_axes(ndim)
    return tuple(a for a in range(ndim) if a not in keep)


def _weights(spec: NormSpec, x: np.ndarray, mask) -> np.ndarray:
    if mask is None:
        return np.ones_like(x)
    w = np.expand_dims(np.asarray(mask, np.float64), spec.param_axes(x.ndim))
    return np.broadcast_to(w, x.shape)


def _spread(spec: NormSpec, a: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-channel array broadcast over x's shape."""
    return np.broadcast_to(np.asarray(a).reshape(spec.broadcast_shape(shape)), shape)


def shard_stats(spec: NormSpec, x, mask=None) -> Stats:
    """Two-pass count, mean and M2 per channel over one shard (its unmasked positions)."""
    x = np.asarray(x, np.float64)
    w, axes, shape = _weights(spec, x, mask), _axes(spec, x.ndim), spec.param_shape(x.shape)
    count = w.sum(axis=axes).reshape(shape)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = ((w * x).sum(axis=axes).reshape(shape) / count)
        m2 = (w * (x - _spread(spec, mean, x.shape)) ** 2).sum(axis=axes).reshape(shape)
    return Stats(count, np.where(count > 0, mean, 0.0), np.where(count > 0, m2, 0.0))


def merge(a: Stats, b: Stats) -> Stats:
    """Chan et al.'s parallel update: the statistics of two groups from each one's."""
    n = a.count + b.count
    with np.errstate(invalid="ignore", divide="ignore"):
        delta = b.mean - a.mean
        mean = np.where(n > 0, a.mean + delta * b.count / n, 0.0)
        m2 = np.where(n > 0, a.m2 + b.m2 + delta**2 * a.count * b.count / n, 0.0)
    return Stats(n, mean, m2)


def merged(spec: NormSpec, shards: Sequence, masks: Sequence | None = None) -> Stats:
    """The global batch's statistics, merged from every replica's."""
    masks = masks or [None] * len(shards)
    parts = [shard_stats(spec, x, m) for x, m in zip(shards, masks, strict=True)]
    out = parts[0]
    for part in parts[1:]:
        out = merge(out, part)
    return out


class Normalizer(NamedTuple):
    """What one replica normalizes with: per-channel mean and biased variance, each element's
    weight a_i in them, and which replicas' elements the statistics pool."""

    mean: np.ndarray
    var: np.ndarray
    weight: np.ndarray  # x's shape
    pooled: tuple[int, ...]  # replica indices the statistics span


def normalizers(spec: NormSpec, shards: Sequence, masks: Sequence | None = None,
                kind: str = "global") -> list[Normalizer]:
    """Each replica's statistics under ``kind`` (see the module docstring)."""
    if kind not in KINDS:
        raise ValueError(f"unknown statistics {kind!r}; expected one of {', '.join(KINDS)}")
    masks = list(masks or [None] * len(shards))
    shards = [np.asarray(x, np.float64) for x in shards]
    everyone = tuple(range(len(shards)))
    weights = [_weights(spec, x, m) for x, m in zip(shards, masks, strict=True)]
    if kind == "global":
        g = merged(spec, shards, masks)
        return [Normalizer(g.mean, g.var, w / _spread(spec, g.count, x.shape), everyone)
                for x, w in zip(shards, weights, strict=True)]
    parts = [shard_stats(spec, x, m) for x, m in zip(shards, masks, strict=True)]
    if kind == "local":
        return [Normalizer(p.mean, p.var, w / _spread(spec, p.count, x.shape), (r,))
                for r, (x, w, p) in enumerate(zip(shards, weights, parts, strict=True))]
    r = len(shards)
    mean = sum(p.mean for p in parts) / r
    square = sum(p.var + p.mean**2 for p in parts) / r  # the average of each replica's E[x²]
    var = np.maximum(square - mean**2, 0.0)
    return [Normalizer(mean, var, w / (r * _spread(spec, p.count, x.shape)), everyone)
            for x, w, p in zip(shards, weights, parts, strict=True)]


def _affine(spec: NormSpec, shape, gamma, beta):
    g = np.ones(spec.broadcast_shape(shape)) if gamma is None else np.asarray(gamma, np.float64)
    o = np.zeros(spec.broadcast_shape(shape)) if beta is None else np.asarray(beta, np.float64)
    return _spread(spec, g, shape), _spread(spec, o, shape)


def forward(spec: NormSpec, shards: Sequence, gamma=None, beta=None, masks: Sequence | None = None,
            kind: str = "global") -> list[np.ndarray]:
    """Training-mode output of every replica."""
    out = []
    for x, n in zip(shards, normalizers(spec, shards, masks, kind), strict=True):
        x = np.asarray(x, np.float64)
        g, o = _affine(spec, x.shape, gamma, beta)
        s = np.sqrt(_spread(spec, n.var, x.shape) + spec.eps)
        out.append(g * (x - _spread(spec, n.mean, x.shape)) / s + o)
    return out


def forward_eval(spec: NormSpec, shards: Sequence, gamma, beta, running_mean, running_var) -> list[np.ndarray]:
    """Inference on every replica: each normalizes with the (shared) running statistics."""
    out = []
    for x in shards:
        x = np.asarray(x, np.float64)
        g, o = _affine(spec, x.shape, gamma, beta)
        rm, rv = (_spread(spec, np.asarray(a, np.float64), x.shape) for a in (running_mean, running_var))
        out.append(g * (x - rm) / np.sqrt(rv + spec.eps) + o)
    return out


def update_running(spec: NormSpec, running_mean, running_var, shards: Sequence, masks: Sequence | None = None,
                   *, unbiased: bool, steps: int = 1, kind: str = "global") -> tuple[np.ndarray, np.ndarray]:
    """Running statistics after ``steps`` training steps on the same shards (replica 0's copy for
    ``local``); unbiased stores var·n/(n−1) with n the count the statistics cover."""
    n = normalizers(spec, shards, masks, kind)[0]
    if kind == "global":
        count = merged(spec, shards, masks).count
    elif kind == "local":
        count = shard_stats(spec, shards[0], (masks or [None])[0]).count
    else:
        count = sum(shard_stats(spec, x, m).count for x, m in zip(shards, masks or [None] * len(shards), strict=True))
    var = n.var
    if unbiased:
        with np.errstate(invalid="ignore", divide="ignore"):
            var = np.where(count > 1, var * count / (count - 1), np.nan)
    keep = (1 - spec.momentum) ** steps
    mean = keep * np.asarray(running_mean, np.float64).reshape(n.mean.shape) + (1 - keep) * n.mean
    var = keep * np.asarray(running_var, np.float64).reshape(var.shape) + (1 - keep) * var
    return mean.reshape(-1), var.reshape(-1)


def vjp(spec: NormSpec, shards: Sequence, gamma, dys: Sequence, masks: Sequence | None = None,
        kind: str = "global") -> tuple[list[np.ndarray], np.ndarray | None, np.ndarray | None]:
    """(dx per replica, dγ, dβ) of Σ_r ⟨y_r, dy_r⟩: dγ and dβ summed over the replicas, as the
    frameworks' gradient all-reduce sums them."""
    norms = normalizers(spec, shards, masks, kind)
    xs = [np.asarray(x, np.float64) for x in shards]
    dys = [np.asarray(d, np.float64) for d in dys]
    s = [np.sqrt(_spread(spec, n.var, x.shape) + spec.eps) for x, n in zip(xs, norms, strict=True)]
    xhat = [(x - _spread(spec, n.mean, x.shape)) / si for x, n, si in zip(xs, norms, s, strict=True)]
    g = [_affine(spec, x.shape, gamma, None)[0] * d for x, d in zip(xs, dys, strict=True)]
    axes = _axes(spec, xs[0].ndim)
    shape = spec.param_shape(xs[0].shape)
    sum_g = [gi.sum(axis=axes).reshape(shape) for gi in g]
    sum_gx = [(gi * xi).sum(axis=axes).reshape(shape) for gi, xi in zip(g, xhat, strict=True)]
    dx = []
    for x, n, si, xh, gi in zip(xs, norms, s, xhat, g, strict=True):
        pooled_g = _spread(spec, sum(sum_g[k] for k in n.pooled), x.shape)
        pooled_gx = _spread(spec, sum(sum_gx[k] for k in n.pooled), x.shape)
        centred = pooled_g if spec.kind.centred else 0.0
        dx.append((gi - n.weight * centred - n.weight * xh * pooled_gx) / si)
    if not spec.affine:
        return dx, None, None
    dgamma = sum((d * xh).sum(axis=axes).reshape(shape) for d, xh in zip(dys, xhat, strict=True))
    dbeta = sum(d.sum(axis=axes).reshape(shape) for d in dys) if spec.kind.has_bias else None
    return dx, dgamma, dbeta


def concatenated(shards: Sequence) -> np.ndarray:
    return np.concatenate([np.asarray(a) for a in shards], axis=0)


__all__ = ["KINDS", "Normalizer", "Stats", "concatenated", "forward", "forward_eval", "merge", "merged",
           "normalizers", "shard_stats", "update_running", "vjp"]
