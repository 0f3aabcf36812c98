"""Cache levels from sysfs, the level a working set belongs to, and a real per-level measurement."""

from __future__ import annotations

from pathlib import Path

import pytest

from normbench.bench import bandwidth


def write_index(root: Path, i: int, level: int, kind: str, size: str, cpus: str) -> None:
    index = root / f"index{i}"
    index.mkdir(parents=True)
    for name, text in {"level": level, "type": kind, "size": size, "shared_cpu_list": cpus}.items():
        (index / name).write_text(f"{text}\n")


def test_cache_levels_parse_a_sysfs_tree(tmp_path):
    write_index(tmp_path, 0, 1, "Data", "32K", "0")
    write_index(tmp_path, 1, 1, "Instruction", "32K", "0")
    write_index(tmp_path, 2, 2, "Unified", "1M", "0-1")
    write_index(tmp_path, 3, 3, "Unified", "32768K", "0,2-3")
    assert bandwidth.cache_levels(tmp_path) == [
        {"name": "L1d", "level": 1, "bytes": 32 * 2**10, "shared_by": 1},
        {"name": "L2", "level": 2, "bytes": 2**20, "shared_by": 2},
        {"name": "L3", "level": 3, "bytes": 32 * 2**20, "shared_by": 3},
    ]


def test_cache_levels_empty_or_broken_tree(tmp_path):
    assert bandwidth.cache_levels(tmp_path / "absent") == []
    assert bandwidth.cache_levels(tmp_path) == []
    write_index(tmp_path, 0, 2, "Unified", "512K", "0")
    (tmp_path / "index1").mkdir()  # no files: left out, not an error
    write_index(tmp_path, 2, 3, "Unified", "lots", "0")  # unparseable size: left out
    assert [c["name"] for c in bandwidth.cache_levels(tmp_path)] == ["L2"]


def test_capacity_private_per_thread_shared_once():
    private = {"bytes": 512 * 2**10, "shared_by": 1}
    shared = {"bytes": 32 * 2**20, "shared_by": 8}
    assert bandwidth.capacity(private, 4) == 4 * 512 * 2**10
    assert bandwidth.capacity(shared, 1) == bandwidth.capacity(shared, 8) == 32 * 2**20
    assert bandwidth.capacity(shared, 9) == 2 * 32 * 2**20  # more threads than one cache serves


LEVELS = [
    {"name": "memory", "bytes": None, "working_set_bytes": 2**29, "gbps": 20.0},
    {"name": "L2", "bytes": 2**20, "working_set_bytes": 2**19, "gbps": 80.0},
    {"name": "L1d", "bytes": 2**16, "working_set_bytes": 2**15, "gbps": 100.0},
    {"name": "L3", "bytes": 2**25, "working_set_bytes": 2**24, "gbps": 50.0},
]


@pytest.mark.parametrize(("working_set", "name"), [
    (1, "L1d"), (2**16, "L1d"), (2**16 + 1, "L2"), (2**20, "L2"), (2**20 + 1, "L3"), (2**25, "L3"),
    (2**25 + 1, "memory"), (2**40, "memory"),
])
def test_level_for_smallest_level_that_holds(working_set, name):
    assert bandwidth.level_for(working_set, LEVELS)["name"] == name


def test_level_for_needs_memory_entry():
    with pytest.raises(ValueError):
        bandwidth.level_for(2**30, [lv for lv in LEVELS if lv["bytes"] is not None])


def test_measure_levels_on_this_machine():
    caches = bandwidth.cache_levels()
    result = bandwidth.measure_levels(1)
    levels = result["levels"]
    assert result["threads"] == 1
    assert [lv["name"] for lv in levels] == [c["name"] for c in caches] + ["memory"]
    assert all(lv["measured_gbps"] > 0 and lv["gbps"] >= lv["measured_gbps"] for lv in levels)
    assert all(a["gbps"] >= b["gbps"] for a, b in zip(levels, levels[1:], strict=False))
    for lv, cache in zip(levels, caches, strict=False):
        assert lv["bytes"] == bandwidth.capacity(cache, 1)
        assert 0 < lv["working_set_bytes"] <= lv["bytes"] // 2
    by_name = {lv["name"]: lv for lv in levels}
    assert by_name["memory"]["bytes"] is None
    if "L2" in by_name:  # data in L2 moves faster than data in DRAM on any real machine
        assert by_name["L2"]["measured_gbps"] > by_name["memory"]["measured_gbps"]
