"""Known upstream divergences: failures we expect, each with its reason, upstream link and bound.

Each framework package declares its own (``adapters/<fw>/known.py``); this module collects them and
judges failing records with them. The envelope mathematics lives in ``numerics.envelopes``.

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

from ..adapters import framework
from ..numerics.divergence import Known
from ..numerics.envelopes import Row

__all__ = ["KNOWN", "Known", "explain", "lookup", "matching"]


def _collect() -> tuple[Known, ...]:
    """Every framework package's entries (its ``known`` module), in the frameworks' order."""
    entries = tuple(k for m in framework.modules("known") for k in m.KNOWN)
    keys = [k.key for k in entries]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"known divergences declared twice: {', '.join(twice)}")
    return entries


KNOWN: tuple[Known, ...] = _collect()


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
