"""Inductor's caches (its FX graph and autotuning caches): in ``/tmp/torchinductor_$USER`` unless
TORCHINDUCTOR_CACHE_DIR says where."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

FOLDER = "inductor"
VARIABLES = ("TORCHINDUCTOR_CACHE_DIR",)


def environ(given: Mapping[str, str], folder: Path, keep: bool = True) -> dict[str, str]:
    if keep and VARIABLES[0] in given:
        return {}
    return {VARIABLES[0]: str(folder / FOLDER)}
