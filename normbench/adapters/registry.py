"""Find adapters by name without importing any framework.

Built-in adapters, third-party ones registered under the ``normbench.adapters`` entry-point
group, and ``module:Class`` references all resolve to an Adapter instance. Resolving a name
imports only the adapter's own module, never its framework.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
from functools import cache

from .base import Adapter

ENTRY_POINT_GROUP = "normbench.adapters"

BUILTIN = {
    "numpy": "normbench.adapters.numpy_reference:NumpyAdapter",
    "torch": "normbench.adapters.torch_nn:TorchAdapter",
    "flax.linen": "normbench.adapters.flax_linen:FlaxLinenAdapter",
    "flax.nnx": "normbench.adapters.flax_nnx:FlaxNnxAdapter",
    "keras[tensorflow]": "normbench.adapters.keras_layers:KerasTensorflowAdapter",
    "keras[jax]": "normbench.adapters.keras_layers:KerasJaxAdapter",
    "keras[torch]": "normbench.adapters.keras_layers:KerasTorchAdapter",
    "tf_keras": "normbench.adapters.tf_keras_layers:TfKerasAdapter",
    "onnxruntime": "normbench.adapters.onnxruntime_ops:OnnxRuntimeAdapter",
}


class UnknownAdapter(LookupError):
    pass


@cache
def _entry_points() -> dict[str, str]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.value for ep in eps}


def known() -> dict[str, str]:
    """Every adapter name and the ``module:Class`` it resolves to, built-ins first."""
    return {**BUILTIN, **{k: v for k, v in _entry_points().items() if k not in BUILTIN}}


def _load(ref: str) -> Adapter:
    module_name, _, attr = ref.partition(":")
    if os.getcwd() not in sys.path:  # like `python -m`, so ./my_adapter.py:Class just works
        sys.path.append(os.getcwd())
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise UnknownAdapter(f"cannot load adapter {ref!r}: {exc}") from exc
    if isinstance(obj, type) and issubclass(obj, Adapter):
        return obj()
    if isinstance(obj, Adapter):
        return obj
    raise UnknownAdapter(f"{ref!r} is not a normbench.Adapter subclass")


def get(name: str) -> Adapter:
    """The adapter called ``name`` (or given as ``module:Class``)."""
    table = known()
    if name in table or ":" in name:
        adapter = _load(table.get(name, name))
        adapter.ref = name  # how the user named it, so a rerun command can name it again
        return adapter
    close = difflib.get_close_matches(name, table, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownAdapter(
        f"unknown adapter {name!r}{hint}; known adapters: {', '.join(sorted(table))}; "
        "or give a third-party adapter as module:Class"
    )


def select(names: str | list[str] | None) -> list[Adapter]:
    """Adapters for a comma-separated list (or list) of names; None means every known one."""
    if names is None:
        return [get(n) for n in known()]
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    return [get(n) for n in names]
