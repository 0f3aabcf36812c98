"""A case id read back into its case: what ``normbench search --replay CASE_ID`` runs.

``Case.id`` names the op, shape, dtype, input and every non-default field in a fixed order; this
reads that order back and checks the result spells the same id, so a replayed case has exactly the
arrays (its seed comes from the id) and the layer of the case that was recorded.
"""

from __future__ import annotations

import re

from ..ops import inputs
from ..ops.case import PADDING, Case
from ..ops.spec import LAYOUTS, NormSpec

_NUMBER = r"(?:[0-9.]+(?:e[-+]?\d+)?|inf)"
_ID = re.compile(
    r"^(?P<op>[a-z0-9_]+)-(?P<shape>\d+(?:x\d+)*)-(?P<dtype>[a-z0-9]+)-(?P<input>.+?)"
    rf"(?:-(?P<layout>{'|'.join(LAYOUTS)}))?"
    r"(?:-last(?P<normalized_ndim>\d+))?"
    r"(?:-groups(?P<groups>\d+))?"
    rf"(?:-eps(?P<eps>{_NUMBER}))?"
    rf"(?:-momentum(?P<momentum>{_NUMBER}))?"
    r"(?P<noaffine>-noaffine)?"
    r"(?P<running>-running)?"
    r"(?P<masked>-masked)?"
    rf"(?:-pad_(?P<pad>{'|'.join(PADDING)}))?"
    r"(?:-replicas(?P<replicas>\d+(?:\+\d+)*))?$"
)


def parse(case_id: str) -> Case:
    """The case ``case_id`` names; ValueError (one line) if it names none."""
    found = _ID.match(case_id.strip())
    if not found:
        raise ValueError(f"{case_id!r} is not a case id (op-shape-dtype-input[-options], e.g. "
                         "layer_norm-8x16-float32-normal)")
    g = found.groupdict()
    spec_fields = {"layout": g["layout"], "normalized_ndim": g["normalized_ndim"] and int(g["normalized_ndim"]),
                   "groups": g["groups"] and int(g["groups"]), "eps": g["eps"] and float(g["eps"]),
                   "momentum": g["momentum"] and float(g["momentum"]),
                   "affine": False if g["noaffine"] else None, "running_stats": True if g["running"] else None}
    try:
        spec = NormSpec(g["op"], **{k: v for k, v in spec_fields.items() if v is not None})
        case = Case(spec, tuple(int(d) for d in g["shape"].split("x")), g["dtype"], g["input"],
                    masked=bool(g["masked"]), pad=g["pad"],
                    replicas=tuple(int(r) for r in g["replicas"].split("+")) if g["replicas"] else None)
        inputs.make(case.input, (1,), "float64", 0)  # an unknown input name fails here, not mid-check
    except ValueError as exc:
        raise ValueError(f"case id {case_id!r}: {exc}") from None
    if case.id != case_id.strip():
        raise ValueError(f"case id {case_id!r} reads back as {case.id!r}; not a case id normbench writes")
    return case
