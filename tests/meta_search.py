"""Adapters for the search meta-test: a careful correct implementation, and a copy of it with a bug
only a search finds.

The bug: statistics that drop the last value of each normalized group when the group is odd and
longer than 1000 values, as a vectorised kernel that steps two values at a time and forgets the tail
would on the long-row path it takes above a size threshold. No case of the fixed suites normalizes
an odd group of more than 1000 values, so only ``normbench search`` reaches it.

``Careful`` is ``tests.meta_adapters.Independent`` with the statistics kernels compute with: sums
accumulated pairwise in float64 around the first value of each group (a shifted two-pass), and
float32 / float64 only. ``Independent`` itself is correct but not careful enough for an adversarial
search: its strided float32 sums run sequentially, and on some inputs (long offset reductions,
constant groups) the search drives it past the probabilistic tolerance; in float16 even the float64
oracle rounded to float16 fails where results are subnormal (the policy has no floor for them).
The control of a meta-test must be clean, so it is this one.

    normbench search --adapters tests.meta_search:Careful,tests.meta_search:OddTail
"""

from __future__ import annotations

import numpy as np

from .meta_adapters import Independent, IndependentLayer, _builds

THRESHOLD = 1000  # groups longer than this take the "long-row" path


def buggy(size: int) -> bool:
    """Whether a normalized group of ``size`` values meets the planted bug."""
    return size > THRESHOLD and size % 2 == 1


def _pairwise(a: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Σ over ``axes`` (kept), pairwise in float64 (complex128 for the complex-step derivatives): the
    reduced axes made one contiguous last axis."""
    moved = np.moveaxis(a, axes, tuple(range(a.ndim - len(axes), a.ndim)))
    wide = np.result_type(a.dtype, np.float64)
    flat = np.ascontiguousarray(moved, wide).reshape(*moved.shape[: a.ndim - len(axes)], -1)
    return np.expand_dims(flat.sum(axis=-1), axes)


class CarefulLayer(IndependentLayer):
    def _sum(self, a, axes):
        return _pairwise(a, tuple(axes)).astype(a.dtype)

    def _batch_stats(self, x, w, axes):
        n = self._sum(w, axes)
        if not self.spec.kind.centred:
            return 0 * n, self._sum(w * x * x, axes) / n, n
        shift = x[tuple(slice(0, 1) if a in axes else slice(None) for a in range(x.ndim))]
        mean = shift + self._sum(w * (x - shift), axes) / n  # exact for a constant group
        return mean, self._sum(w * (x - mean) ** 2, axes) / n, n

    def _average(self, a, axes):
        """Per channel, the mean over ``axes``, accumulated and divided in float64, rounded once."""
        return (_pairwise(a, axes) / np.prod([a.shape[i] for i in axes])).astype(a.dtype).reshape(-1)


class Careful(Independent):
    """Correct, and accurate enough that no search finds it past its tolerance."""

    name = "meta-careful"
    builders = _builds(CarefulLayer)
    dtypes = frozenset({"float32"})


class _OddTailLayer(CarefulLayer):
    def _batch_stats(self, x, w, axes):
        size = int(np.prod([x.shape[a] for a in axes]))
        if not buggy(size):
            return super()._batch_stats(x, w, axes)
        tail = np.ones([d if a in axes else 1 for a, d in enumerate(x.shape)], w.dtype)
        tail[tuple(-1 if a in axes else 0 for a in range(x.ndim))] = 0  # the last value of each group
        return super()._batch_stats(x, w * tail, axes)


class OddTail(Careful):
    """Bug: mean and variance skip the last value of each normalized group whose size is odd and
    above 1000."""

    name = "meta-odd-tail"
    builders = _builds(_OddTailLayer)
