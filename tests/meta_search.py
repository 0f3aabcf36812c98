"""Adapters for the search meta-test: a careful correct implementation, and copies of it with bugs
only a search finds.

OddTail's bug: statistics that drop the last value of each normalized group when the group is odd and
longer than 1000 values, as a vectorised kernel that steps two values at a time and forgets the tail
would on the long-row path it takes above a size threshold. No case of the fixed suites normalizes
an odd group of more than 1000 values, so only ``normbench search`` reaches it.

TailRows's, a LayerNorm backward kernel's: it works on rows in blocks of ``ROW_BLOCK`` and, on
its wide path (rows of more than ``WIDE`` values), the rows of a last partial block read their row
sums (Σg, Σg·x̂) one row up. Only dx is wrong, only for a row count above a block that is not a
multiple of it, and only for wide rows: about one example in a hundred of a LayerNorm search, so the
normbench-ci profile's eight examples miss it and a search with a time budget finds it.

``Careful`` is ``tests.meta_adapters.Independent`` with the statistics kernels compute with: sums
accumulated pairwise in float64 around the first value of each group (a shifted two-pass), and
float32 / float64 only. ``Independent`` itself is correct but not careful enough for an adversarial
search: its strided float32 sums run sequentially, and on some inputs (long offset reductions,
constant groups) the search drives it past the probabilistic tolerance; in float16 even the float64
oracle rounded to float16 fails where results are subnormal (the policy has no floor for them).
The control of a meta-test must be clean, so it is this one.

    normbench search --adapters tests.meta_search:Careful,tests.meta_search:OddTail
    normbench search --adapters tests.meta_search:TailRows --ops layer_norm --budget 30
"""

from __future__ import annotations

import numpy as np

from .meta_adapters import Independent, IndependentLayer, _builds

THRESHOLD = 1000  # groups longer than this take the "long-row" path
ROW_BLOCK, WIDE = 8, 2048  # TailRows: rows per block of its backward kernel, and where its wide path starts


def buggy(size: int) -> bool:
    """Whether a normalized group of ``size`` values meets the planted bug."""
    return size > THRESHOLD and size % 2 == 1


def tail_rows(rows: int, width: int) -> bool:
    """Whether a LayerNorm of ``rows`` rows of ``width`` values meets TailRows's bug."""
    return rows > ROW_BLOCK and rows % ROW_BLOCK != 0 and width > WIDE


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


class _TailRowsLayer(CarefulLayer):
    def _dx(self, g, xhat, w, n, inv_s, axes):
        width = int(np.prod([g.shape[a] for a in axes]))
        rows = g.size // width
        if self.spec.op != "layer_norm" or not tail_rows(rows, width):
            return super()._dx(g, xhat, w, n, inv_s, axes)
        sums = [self._sum(a, axes).reshape(rows) for a in (g, g * xhat)]  # LayerNorm: the rows are the leading axes
        tail = slice(rows - rows % ROW_BLOCK, rows)
        for s in sums:
            s[tail] = s[tail.start - 1: rows - 1].copy()  # each tail row reads the sums of the row before it
        centre, projection = (s.reshape(n.shape) for s in sums)
        return (g - w / n * centre - w / n * xhat * projection) * inv_s


class TailRows(Careful):
    """Bug: LayerNorm's dx, for more than 8 rows not a multiple of 8, each over 2048 wide, takes the
    last partial block's row sums from the row before each."""

    name = "meta-tail-rows"
    builders = _builds(_TailRowsLayer)
