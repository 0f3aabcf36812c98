"""Who races in a head-to-head pass: an adapter as named and the interpreter its processes run under."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..ops.case import BenchCase


@dataclass(frozen=True)
class Entrant:
    """An adapter as named (``torch``, ``module:Class``) and the interpreter its processes run under;
    ``label`` is its name in records and reports (``torch@venv-a`` where interpreters differ)."""

    ref: str
    python: str = sys.executable
    label: str = ""
    sweeps: bool = True  # False: timed at the default shapes alone (a mode normbench run adds by default)

    @property
    def name(self) -> str:
        return self.label or self.ref

    def takes(self, case: BenchCase) -> bool:
        return self.sweeps or case.group != "sweep"


def parse_entrants(names: list[str], adapter_name: Callable[[str], str]) -> list[Entrant]:
    """``adapter`` or ``adapter@/path/to/python`` for each name. Two entrants of one adapter from
    different interpreters are labelled by the folder of each interpreter's environment (the
    venv's name), or by the whole path where those folders are alike."""
    parsed = []
    for name in names:
        ref, _, python = name.partition("@")
        if python and not (os.path.isfile(python) and os.access(python, os.X_OK)):
            raise ValueError(f"{name}: {python} is not an executable Python interpreter")
        parsed.append((ref, python or sys.executable, adapter_name(ref)))
    out = []
    for ref, python, base in parsed:
        others = [p for r, p, b in parsed if b == base]
        if len(others) > 1:
            if len(set(others)) < len(others):
                raise ValueError(f"{base} is named twice with the same interpreter ({python})")
            envs = [_environment_name(p) for p in others]
            suffix = _environment_name(python) if len(set(envs)) == len(envs) else python
            out.append(Entrant(ref, python, f"{base}@{suffix}"))
        else:
            label = base if python == sys.executable else f"{base}@{_environment_name(python)}"
            out.append(Entrant(ref, python, label))
    return out


def _environment_name(python: str) -> str:
    path = Path(python).absolute()
    return path.parent.parent.name if path.parent.name == "bin" else str(path)


def slug(entrant: Entrant) -> str:
    """The entrant's name as a file name."""
    return entrant.name.replace("/", "_").replace("[", "-").replace("]", "").replace("@", "-at-")
