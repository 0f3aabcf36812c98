"""The op registry, filled by ``normbench.ops`` as it imports each op module.

It imports no op, so a spec or a case (which every op module imports) can look an op up by name
without a cycle: by the time any spec exists, importing ``normbench.ops`` has registered them all.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Op

REGISTRY: dict[str, Op] = {}


def register(*ops: Op) -> None:
    for op in ops:
        if op.name in REGISTRY:
            raise ValueError(f"op {op.name!r} is registered twice")
        REGISTRY[op.name] = op


def get(name: str) -> Op:
    """The op called ``name``; ValueError listing the known ones otherwise."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(f"unknown op {name!r}; expected one of {', '.join(REGISTRY)}") from None


def all() -> list[Op]:  # noqa: A001 - ops.all() reads as what it is
    return list(REGISTRY.values())


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)
