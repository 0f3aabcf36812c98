"""Adapters: one module per framework API path, all shaped alike, found lazily by name."""

from .base import FEATURES, Adapter, Layer, NotInstalled, Unsupported
from .registry import UnknownAdapter, get, known, select

__all__ = ["FEATURES", "Adapter", "Layer", "NotInstalled", "Unsupported", "UnknownAdapter",
           "get", "known", "select"]
