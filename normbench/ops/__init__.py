"""The op registry: one module per norm, each owning its spec fields, geometry, cases and flags.

Adding an op is one module here (an ``Op`` subclass and its ``OP``) plus one builder in each
adapter that wraps it; an adapter without a builder for an op skips it with the reason.
"""

from __future__ import annotations

from .base import Op
from .batch_norm import OP as _batch_norm
from .group_norm import OP as _group_norm
from .instance_norm import OP as _instance_norm
from .layer_norm import OP as _layer_norm
from .registry import REGISTRY, all, get, names, register
from .rms_norm import OP as _rms_norm

register(_layer_norm, _batch_norm, _rms_norm, _group_norm, _instance_norm)

__all__ = ["REGISTRY", "Op", "all", "get", "names"]
