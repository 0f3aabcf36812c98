"""A case's benchmark inputs, drawn once by the conductor for every contender of a pass.

Every contender needs the same values (the seed is the case's), and drawing them costs ~25 ns each:
1.7 s per process for a 4096 × 16384 case, twice that with its dy. A first pass prepares its
contenders one after another, so a pass of eight paid eight draws in a row. The conductor draws them
once into shared memory (``/dev/shm``) and each contender reads its own copy (~0.05 s) and reshapes it
to its layout: C order, so the values in place are those it would have drawn itself
(``normal``). Where there is no shared memory with room, each contender draws its own.
"""

from __future__ import annotations

import math
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ..ops.case import BenchCase
from ..ops.dtypes import cast, resolve
from ..ops.inputs import seed_for

SHARED = Path("/dev/shm")
ROOM = 2.0  # shared memory must have this many times a case's inputs free


def normal(shape: tuple[int, ...], dtype: str, seed) -> np.ndarray:
    """Standard normal values drawn in float32 (float64 for a float64 case) and rounded to the
    dtype: a benchmark input holds up to 7·10⁷ values, and drawing them in float64 first takes
    twice the time (2.5 s for 4096 × 16384) and a 0.5 GB temporary."""
    draw = np.float64 if dtype == "float64" else np.float32
    return cast(np.random.default_rng(seed).standard_normal(shape, dtype=draw), dtype)


def _seeds(case: BenchCase) -> dict[str, object]:
    """Each input the case takes and its seed: ``x``, and ``dy`` where the backward is timed."""
    seed = seed_for(case.id)
    return {"x": seed, **({"dy": [seed, 2]} if case.mode == "forward_backward" else {})}


def values(case: BenchCase, shape: tuple[int, ...], paths: Mapping[str, str] | None = None) -> dict[str, np.ndarray]:
    """The case's inputs in ``shape``, each read from ``paths`` (into this process's own memory) where the
    conductor drew it, else drawn here."""
    paths = paths or {}
    return {name: np.fromfile(paths[name], dtype=resolve(case.dtype)).reshape(shape) if name in paths
            else normal(shape, case.dtype, seed) for name, seed in _seeds(case).items()}


class Drawn:
    """The folder in shared memory where one case's inputs wait for the contenders of a pass."""

    def __init__(self, root: Path = SHARED) -> None:
        self.root = root
        self.folder: Path | None = None  # made at the first write, removed by ``close``
        self.written: tuple[str, dict[str, str]] | None = None  # the case whose inputs are there, and their paths

    def write(self, case: BenchCase) -> dict[str, str]:
        """The case's inputs as files (name -> path), drawn unless they are there already; none where shared
        memory lacks the room."""
        if self.written and self.written[0] == case.id:
            return self.written[1]
        self.drop()
        n = math.prod(case.shape)
        size = n * resolve(case.dtype).itemsize * len(_seeds(case))
        if not self.root.is_dir() or shutil.disk_usage(self.root).free < ROOM * size:
            return {}
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="normbench-inputs-", dir=self.root))
        paths = {}
        for name, row in values(case, (n,)).items():  # one row each, in C order: any layout's values in place
            paths[name] = str(self.folder / name)
            row.tofile(paths[name])  # raw: np.save would write bfloat16 as an opaque void type
        self.written = (case.id, paths)
        return paths

    def drop(self) -> None:
        """Free the shared memory the last case's inputs took: before the case's timed rounds where the whole
        field prepared it at once, after its last heat where it ran in heats (each heat's contenders read them)."""
        self.written = None
        if self.folder is not None:
            for path in self.folder.iterdir():
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None
