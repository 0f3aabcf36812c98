"""Adapters: one module per framework API path, all shaped alike, found lazily by name."""

from .base import FEATURES, MODES, Adapter, Layer, NotInstalled, Timed, Unsupported
from .registry import UnknownAdapter, get, known, select

__all__ = ["FEATURES", "MODES", "Adapter", "Timed", "Layer", "NotInstalled", "Unsupported", "UnknownAdapter",
           "get", "known", "select"]
