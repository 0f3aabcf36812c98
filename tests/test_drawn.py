"""A case's inputs, drawn once by the conductor and read by every contender, are the values each
contender would have drawn itself, in its own layout; they leave shared memory before any timing."""

from __future__ import annotations

import numpy as np
import pytest

from normbench.adapters import registry
from normbench.bench import drawn, harness
from normbench.ops.case import BenchCase

CASES = [BenchCase("layer_norm", "forward_backward", (64, 48)), BenchCase("rms_norm", "forward", (32, 40), "bfloat16"),
         BenchCase("group_norm", "train", (2, 8, 5, 3), options=(("groups", 4),)),
         BenchCase("batch_norm", "forward_backward", (4, 6, 5, 3), "float64")]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
@pytest.mark.parametrize("name", ["numpy", "torch"])
def test_read_inputs_are_the_ones_a_contender_draws_in_its_layout(tmp_path, case, name):
    adapter = registry.get(name)
    shared = drawn.Drawn(tmp_path)
    paths = shared.write(case)
    assert set(paths) == ({"x", "dy"} if case.mode == "forward_backward" else {"x"})
    own, read = harness.prepare(adapter, case), harness.prepare(adapter, case, paths)
    assert read.x.shape == own.x.shape == harness.layout_shape(adapter, case)[1]
    assert read.x.dtype == own.x.dtype and np.array_equal(read.x.view(np.uint8), own.x.view(np.uint8))
    assert not np.shares_memory(read.x, np.fromfile(paths["x"], dtype=read.x.dtype))
    shared.close()
    assert not list(tmp_path.iterdir())


def test_shared_memory_holds_one_case_at_a_time_and_none_without_room(tmp_path, monkeypatch):
    shared = drawn.Drawn(tmp_path)
    first = shared.write(CASES[0])
    assert shared.write(CASES[0]) == first  # a later heat reads the same files: not drawn again
    shared.write(CASES[1])
    assert sorted(p.name for p in shared.folder.iterdir()) == ["x"]
    shared.drop()
    assert not list(shared.folder.iterdir())
    monkeypatch.setattr(drawn, "ROOM", 1e12)  # shared memory without the room: each contender draws its own
    assert shared.write(CASES[0]) == {} and not list(shared.folder.iterdir())
    assert drawn.Drawn(tmp_path / "absent").write(CASES[0]) == {}
    shared.close()
