"""What a standalone reproducer (``normbench.repro``) asks of each framework package, and what it gets back.

A finding travels upstream as a script that imports numpy and the framework, never normbench. Every
framework package that can write one has a ``repro`` module (found like its ``known`` and ``threads``
modules): ``ADAPTERS`` names the adapters it writes for, and ``layer(target) -> Source`` writes the source of
a class ``Layer`` that builds the case's layer with the constructor arguments its adapter uses and calls it
as the adapter does. Like ``normbench.Layer`` its methods take numpy arrays (float64 arrays holding the
tested dtype's exact values, and a bool mask) and return numpy arrays:

- ``Layer()`` builds the layer and loads the module-level arrays ``gamma``, ``beta``, ``running_mean``,
  ``running_var`` (None where the layer has none) as the adapter's ``set_params``/``set_running`` do;
- ``forward(x, training, mask)``, ``running()``, ``vjp(x, dy, mask)``, ``jvp(x, tx, tgamma, tbeta, mask)``,
  ``second_order(x, dy, v, mask)``: only those in ``target.needs``.

What cannot be written (a mode the module does not know) raises ``Cannot`` with the reason. Writing
source imports no framework.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass, field
from types import ModuleType

from ..ops.case import Case
from ..ops.spec import NormSpec
from .framework import modules

METHODS = ("forward", "running", "vjp", "jvp", "second_order")


class Cannot(Exception):
    """This framework's reproducer writer cannot write this layer; the message says why (one line)."""


@dataclass(frozen=True)
class Target:
    """The layer to write: which adapter in which mode, on which case, with which methods."""

    adapter: str  # the adapter's own name, without its mode
    mode: str | None  # None: the adapter's default mode
    case: Case
    needs: frozenset[str] = field(default_factory=frozenset)  # of METHODS

    @property
    def spec(self) -> NormSpec:
        return self.case.spec

    @property
    def shape(self) -> tuple[int, ...]:
        return self.case.shape

    @property
    def dtype(self) -> str:
        return self.case.dtype

    @property
    def mixed(self) -> bool:
        return self.spec.precision == "mixed"

    @property
    def params_dtype(self) -> str:
        """γ's, β's and the running statistics' dtype: float32 on a mixed-precision path."""
        return "float32" if self.mixed else self.dtype

    @property
    def channel(self) -> int | None:
        """The channel axis of a channel op (None for LayerNorm and RMSNorm)."""
        return self.spec.feature_axis(len(self.shape)) if self.spec.kind.channel_axis else None

    @property
    def stateful(self) -> bool:
        return self.spec.has_running_stats


@dataclass(frozen=True)
class Source:
    """A layer's source: ``code`` defines ``Layer`` (and the helpers it uses) at module level."""

    imports: tuple[str, ...]  # import lines, after ``import numpy as np``
    code: str
    preamble: tuple[str, ...] = ()  # lines before any import (Keras reads KERAS_BACKEND once, on import)
    install: str = ""  # what to pip install, for the script's docstring


def writers() -> dict[str, ModuleType]:
    """Adapter name -> the framework ``repro`` module that writes its layers."""
    return {name: module for module in modules("repro") for name in module.ADAPTERS}


def py(value) -> str:
    """``value`` as a Python literal that reads back exactly (a non-finite float as ``float('inf')``)."""
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    if isinstance(value, tuple):
        return "(" + ", ".join(py(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    if isinstance(value, list):
        return "[" + ", ".join(py(v) for v in value) + "]"
    return repr(value)


def fill(template: str, **blocks: str) -> str:
    """``template`` dedented, each line that is only ``@@name@@`` replaced by ``blocks[name]``'s lines at that
    line's indentation (none for an empty block): single-line values go in by f-string, multi-line ones this way."""
    out = []
    for line in textwrap.dedent(template).strip("\n").splitlines():
        key = line.strip()
        if key.startswith("@@") and key.endswith("@@"):
            pad = line[: len(line) - len(line.lstrip())]
            out += [pad + b if b.strip() else "" for b in blocks[key[2:-2]].splitlines()]
        else:
            out.append(line.rstrip())
    return "\n".join(out)


def method(needed: bool, template: str, **blocks: str) -> str:
    """A method (its ``def`` flush left in ``template``, see ``fill``) indented into a class body; nothing if not
    ``needed``."""
    return textwrap.indent(fill(template, **blocks), "    ", lambda s: bool(s.strip())) + "\n\n" if needed else ""


def klass(header: str, *methods: str) -> str:
    """A class from its header (``class Layer:`` and docstring, see ``fill``) and its methods (see ``method``)."""
    return fill(header) + "\n\n" + "".join(methods).rstrip() + "\n"


def lines(*items: str | None) -> str:
    """The given lines, None and empty ones left out: a block for ``fill``."""
    return "\n".join(i for i in items if i)
