"""A known upstream divergence, as data its framework package declares (``adapters/<fw>/known.py``),
and the predicates its entries match records with.

An entry names the records it covers (``applies``; an entry of a specification, every adapter that
declares it implements that spec: ``semantics``), why, where upstream says so, and its bound:
an envelope (``numerics.envelopes``), the exceptions its cause raises, or overflow. ``verify.known``
collects every framework's entries and judges failing records with them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from .. import ops
from ..ops import inputs
from ..ops.dtypes import DTYPES, overflow_threshold
from ..results.kinds import Outcome, Suite
from .envelopes import Envelope, Row, measured, number, worst_kappa


@dataclass(frozen=True)
class Known:
    key: str
    reason: str
    link: str
    applies: Callable[[Row], bool]  # does this record fall under the divergence?
    envelope: Envelope | None = None  # None: the cause only raises
    raises: tuple[str, ...] = ()  # exception types the cause raises
    nonfinite: bool = False  # the cause overflows: inf/NaN results are what it explains
    # A cause in a specification rather than one implementation (``"onnx"``): the entry covers every
    # adapter whose records declare it (``Adapter.semantics``), and only those.
    semantics: str | None = None

    def matches(self, row: Row) -> bool:
        if self.semantics is not None and self.semantics not in (row.get("semantics") or ()):
            return False
        return bool(self.applies(row))

    def explains(self, row: Row) -> tuple[bool, str]:
        """Whether this cause accounts for a failing or erroring record, and how far within it."""
        if row.get("outcome") == Outcome.ERROR:
            exc = (row.get("facts") or {}).get("exception") or str(row.get("message", "")).split(":", 1)[0]
            ok = exc in self.raises
            return ok, (f"raises {exc}, as this cause does" if ok else
                        f"raises {exc}; this cause raises {', '.join(self.raises) or 'nothing'}")
        err, tol = number(row.get("max_abs_err")), number(row.get("tolerance"))
        if not math.isfinite(err):
            if self.nonfinite:
                return True, "non-finite, as this cause overflows"
            return self._saturates(row, tol)
        if self.envelope is None:
            return False, "a numeric error, where this cause only raises"
        ratio = err / tol if tol > 0 else math.inf
        bound = self.envelope(row)
        return ratio <= bound, f"{ratio:.3g}x its tolerance, envelope {bound:.3g}x"

    def _saturates(self, row: Row, tol: float) -> tuple[bool, str]:
        """An inf or NaN this cause explains because its envelope lets the error pass the output dtype's largest
        value: an exact result off by that much cannot be stored (torch's one-pass GroupNorm took rstd 316 for
        0.997 on a float16 group at 500, and its float32 dx of −1.4e5 became −inf)."""
        facts = row.get("facts") or {}
        dtype = facts.get("grad_dtype" if str(row.get("check", "")).startswith("grad_") else "output_dtype")
        dtype = dtype or row.get("dtype")
        if self.envelope is None or not math.isfinite(tol) or tol <= 0 or dtype not in DTYPES:
            return False, "non-finite, which this cause does not explain"
        reach, largest = self.envelope(row) * tol, overflow_threshold(dtype)
        if reach >= largest:
            return True, f"non-finite: this cause's error reaches {reach:.3g}, past {dtype}'s range ({largest:.6g})"
        return False, f"non-finite, where this cause's error reaches {reach:.3g}, within {dtype}'s range"

    def bound(self, row: Row) -> float | None:
        """The envelope for a record, in multiples of its tolerance (for the report); none for a record that
        raised, which an envelope does not measure (the report said ∞ for keras-mask-last-axis's raises)."""
        return None if self.envelope is None or row.get("outcome") == Outcome.ERROR else self.envelope(row)


def within(row: Row, **allowed) -> bool:
    return all(row.get(field) in values for field, values in allowed.items())


def params(row: Row) -> dict:
    return row.get("params") or {}


def channels(row: Row) -> int | None:
    """A channel op's channel count, from the record's shape and layout."""
    shape = row.get("shape") or []
    if len(shape) < 2:
        return None
    return shape[-1] if row.get("layout") == "channels_last" else shape[1]


def synchronized(row: Row) -> bool:
    return row.get("suite") == Suite.SYNCHRONIZED


def counts_differ(row: Row) -> bool:
    """Replicas hold different numbers of values: uneven shards, or a mask (whose counts differ per shard)."""
    split = params(row).get("replicas") or []
    return len(split) > 1 and (len(set(split)) > 1 or bool(params(row).get("masked")))


class Conditioned(tuple):
    """Input names whose groups sit far from zero relative to their spread (κ ≥ 10): the named
    stress inputs, and the search's shifted inputs with |offset| ≥ 10·scale."""

    def __contains__(self, name) -> bool:
        shifted = inputs.parse_shifted(name) if isinstance(name, str) else None
        return tuple.__contains__(self, name) or (shifted is not None and abs(shifted[0]) >= 10 * shifted[1])


STRESS = Conditioned(("offset1e2", "offset1e4", "tiny_variance", "constant"))


def conditioned(row: Row) -> bool:
    """Some normalized group of two or more values has κ = |mean|/√(var + eps) ≥ 10, where a
    one-pass variance starts to cancel: the stress inputs by name, any other input (a search's
    draw, two close values of a normal pair) measured on its regenerated arrays. Call it last in
    a matcher: it builds the case's arrays. Matching is all it does (the envelope bounds what is
    excused), but a matching record that passes puts the entry to the test: a run where none fails
    reports the entry stale."""
    return row.get("input") in STRESS or measured(worst_kappa, row) >= 10


CENTRED = tuple(op.name for op in ops.all() if op.centred)  # ops with a variance to cancel
