"""`compare`: the Mann-Whitney test by hand, and real runs with planted changes: of the code, of the
machine (the probes each results file records) and of the allocator."""

from __future__ import annotations

import json
import math
from collections import Counter

import pytest

from normbench.reports import load
from normbench.reports.compare import ADAPTER_SHIFT_FACTOR, DEFAULT_FACTOR, SHIFT_FACTOR, compare, mann_whitney

# --- Mann-Whitney U, checked against arithmetic done by hand ---------------------------------


def test_separated_triples():
    # x ranks 1,2,3: R1 = 6, U1 = 6 - 3*4/2 = 0. mean n1*n2/2 = 4.5, var = 9/12 * 7 = 5.25,
    # z = (|0 - 4.5| - 0.5) / sqrt(5.25) = 1.7457, p = erfc(z / sqrt 2) = 0.080856
    u, p = mann_whitney([1, 2, 3], [4, 5, 6])
    assert u == 0 and p == pytest.approx(0.080856, abs=1e-6)
    assert mann_whitney([4, 5, 6], [1, 2, 3]) == (9, pytest.approx(p))  # U1 + U2 = n1*n2, same p


def test_ties_share_their_average_rank():
    # sorted 1 2 2 2 3 4: ranks 1 (3 3 3) 5 6, so x = [1, 2, 2] has R1 = 7 and U1 = 7 - 6 = 1.
    # one tie group of t = 3: sum(t^3 - t) = 24; var = 9/12 * (7 - 24/(6*5)) = 4.65
    # z = (3.5 - 0.5) / sqrt(4.65) = 1.3912, p = 0.16416
    u, p = mann_whitney([1, 2, 2], [2, 3, 4])
    assert u == 1 and p == pytest.approx(0.164160, abs=1e-6)


def test_unequal_sizes():
    # males [19, 22, 16, 29, 24] vs females [20, 11, 17, 12]: ranks of x 5, 7, 3, 9, 8 -> R1 = 32,
    # U1 = 32 - 15 = 17; mean 10, var = 20/12 * 10, z = 6.5 / 4.0825 = 1.5922, p = 0.11134
    u, p = mann_whitney([19, 22, 16, 29, 24], [20, 11, 17, 12])
    assert u == 17 and p == pytest.approx(0.111340, abs=1e-5)


def test_identical_and_separated_samples():
    assert mann_whitney([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])[1] == pytest.approx(1.0)
    assert mann_whitney([3.0] * 7, [3.0] * 4)[1] == 1.0  # all tied: no variance, no evidence
    u, p = mann_whitney([1.0 + 0.01 * i for i in range(20)], [2.0 + 0.01 * i for i in range(20)])
    assert u == 0 and p < 1e-6
    with pytest.raises(ValueError):
        mann_whitney([], [1.0])


# --- real runs ------------------------------------------------------------------------------


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def timed(records):
    return [r for r in records if r.get("suite") == "speed" and r.get("outcome") == "pass" and "median_s" in r]


def slow_down(records, key, times=2.0, samples=True):
    out = []
    for r in records:
        r = dict(r)
        if not samples:
            r.pop("samples_s", None)
        if (r.get("adapter"), r.get("case")) == key:
            r.update({k: r[k] * times for k in ("median_s", "min_s", "iqr_s")})
            if "samples_s" in r:
                r["samples_s"] = [s * times for s in r["samples_s"]]
        out.append(r)
    return out


def steadiest(records, where=lambda r: True):
    """The timed case with the tightest spread, within each repeat and across them, so doubling it is
    unmistakable (on a busy machine one repeat of a case can take 100 times another)."""
    medians = {}
    for r in timed(records):
        medians.setdefault((r["adapter"], r["case"]), []).append(r["median_s"])
    spread = {key: max(m) / min(m) for key, m in medians.items()}
    best = min((r for r in timed(records) if where(r)),
               key=lambda r: max(spread[(r["adapter"], r["case"])], 1 + r["iqr_s"] / r["median_s"]))
    return best["adapter"], best["case"]


def test_run_against_itself_flags_nothing(quick_bench):
    cmp = compare(load(quick_bench), load(quick_bench))
    assert not cmp.regressed
    cases = {(r["adapter"], r["case"]) for r in timed(rows(quick_bench))}  # repeats pool into one row
    assert set(cmp.speed["change"]) == {"same"} and len(cmp.speed) == len(cases)
    assert cmp.outcomes.empty
    md = cmp.markdown()
    assert "BENCHMARKS NOT SIGNIFICANTLY CHANGED." in md and "| + |" not in md
    # two files timed apart: it says how much less that can tell, and how to time both sides together
    assert "These runs were timed apart" in md and "normbench bench --head-to-head --adapters NAME@" in md


def test_one_case_twice_as_slow_is_the_only_regression(quick_bench, tmp_path):
    records = rows(quick_bench)
    assert all(r.get("samples_s") for r in timed(records))
    key = steadiest(records)
    slow = write(tmp_path / "slow.jsonl", slow_down(records, key))
    cmp = compare(load(quick_bench), load(slow))
    assert cmp.regressed  # `normbench compare` exits 1
    flagged = cmp.speed[cmp.speed["change"] != "same"]
    assert list(zip(flagged["adapter"], flagged["case"], strict=True)) == [key]
    row = flagged.iloc[0]
    assert row["change"] == "slower" and row["mark"] == "+" and row["method"] == "repeats"  # 3 against 3
    assert row["ratio"] == pytest.approx(2.0)
    md = cmp.markdown()
    assert "| + |" in md and key[1] in md and "PERFORMANCE DECREASED." in md

    back = compare(load(slow), load(quick_bench))  # the other way round it is an improvement
    assert not back.regressed and list(back.speed.loc[back.speed["change"] != "same", "change"]) == ["faster"]


def first_repeat(records):
    return [r for r in records if r.get("repeat", 0) == 0]


def test_one_repeat_falls_back_to_mann_whitney_on_rounds(quick_bench, tmp_path):
    records = first_repeat(rows(quick_bench))
    key = steadiest(records)
    one = write(tmp_path / "one.jsonl", records)
    cmp = compare(load(one), load(write(tmp_path / "slow.jsonl", slow_down(records, key))))
    flagged = cmp.speed[cmp.speed["change"] != "same"]
    assert cmp.regressed and list(flagged["case"]) == [key[1]]
    assert flagged.iloc[0]["method"] == "mann-whitney" and flagged.iloc[0]["p"] < 0.05


def test_without_samples_non_overlapping_iqr_decides(quick_bench, tmp_path):
    records = first_repeat(rows(quick_bench))
    key = steadiest(records)
    plain = write(tmp_path / "plain.jsonl", slow_down(records, None, samples=False))
    slow = write(tmp_path / "slow.jsonl", slow_down(records, key, samples=False))
    cmp = compare(load(plain), load(slow))
    flagged = cmp.speed[cmp.speed["change"] != "same"]
    assert cmp.regressed and list(flagged["case"]) == [key[1]] and set(cmp.speed["method"]) == {"iqr"}
    assert any("IQR intervals" in note for note in cmp.notes)
    assert not compare(load(plain), load(plain)).regressed


def test_a_check_that_breaks_is_a_regression_and_its_fix_is_reported(numpy_results, tmp_path):
    records = rows(numpy_results)
    target = next(r for r in records if r.get("outcome") == "pass")
    broken = write(tmp_path / "broken.jsonl", [
        {**r, "outcome": "fail", "message": "planted", "rerun": "pytest 'x.py::t[a|b]'"} if r is target else r
        for r in records])
    cmp = compare(load(numpy_results), load(broken))
    assert cmp.regressed
    assert list(cmp.outcomes["change"]) == ["regressed"] and cmp.outcomes.iloc[0]["case"] == target["case"]
    md = cmp.markdown()
    assert "| x | pass | fail |" in md and "`pytest 'x.py::t[a\\|b]'`" in md and "SOME CHECKS BROKE." in md

    fixed = compare(load(broken), load(numpy_results))
    assert not fixed.regressed and list(fixed.outcomes["change"]) == ["fixed"]


def test_cases_in_one_file_only_are_added_or_removed_not_regressions(quick_bench, numpy_results, tmp_path):
    records = rows(quick_bench)
    key = (timed(records)[0]["adapter"], timed(records)[0]["case"])
    fewer = write(tmp_path / "fewer.jsonl", [r for r in records if (r.get("adapter"), r.get("case")) != key])
    cmp = compare(load(quick_bench), load(fewer))
    assert not cmp.regressed and list(cmp.speed.loc[cmp.speed["change"] != "same", "change"]) == ["removed"]
    assert list(compare(load(fewer), load(quick_bench)).speed.query("change != 'same'")["change"]) == ["added"]

    with pytest.raises(ValueError, match="no check or benchmark case in common"):  # nothing to compare at all
        compare(load(numpy_results), load(quick_bench))
    some = write(tmp_path / "some.jsonl", rows(numpy_results) + records[1:])  # the benchmark, plus checks
    assert "checks removed" in compare(load(some), load(quick_bench)).markdown()


def test_a_benchmark_that_errors_is_marked_x(quick_bench, tmp_path):
    records = rows(quick_bench)
    target = timed(records)[0]
    errored = write(tmp_path / "err.jsonl", [
        {k: v for k, v in r.items() if k not in ("median_s", "samples_s")} | {"outcome": "error"}
        if r is target else r for r in records])
    cmp = compare(load(quick_bench), load(errored))
    assert cmp.regressed
    row = cmp.speed[cmp.speed["change"] != "same"].iloc[0]
    assert row["mark"] == "x" and row["change"] == "broke" and not math.isnan(row["old_s"])


def test_a_change_with_the_allocators_page_faults_is_listed_not_a_regression(quick_bench, tmp_path):
    records = rows(quick_bench)
    key = steadiest(records)
    pages = next(r["bytes"] for r in timed(records) if (r["adapter"], r["case"]) == key) // 4096 + 1
    faulting = [{**r, "faults_per_call": pages} if (r.get("adapter"), r.get("case")) == key else r
                for r in slow_down(records, key)]
    cmp = compare(load(quick_bench), load(write(tmp_path / "faulting.jsonl", faulting)))
    assert not cmp.regressed
    flagged = cmp.speed[cmp.speed["change"] != "same"]
    assert list(zip(flagged["adapter"], flagged["case"], strict=True)) == [key]
    assert flagged.iloc[0]["change"] == "allocator" and flagged.iloc[0]["mark"] == "?"
    md = cmp.markdown()
    assert "| ? |" in md and "allocator state" in md and "1 changed with page faults" in md
    assert any("glibc" in note for note in cmp.notes)


def test_every_op_is_compared_and_a_slower_op_shows_by_its_case(quick_bench, tmp_path):
    records = rows(quick_bench)
    cmp = compare(load(quick_bench), load(quick_bench))
    ops_timed = {case.split("-", 1)[0] for case in cmp.speed["case"]}
    assert ops_timed == {"layer_norm", "batch_norm", "rms_norm", "group_norm", "instance_norm"}
    keys = [steadiest(records, lambda r, op=op: r["op"] == op and r["params"].get("group") == "default")
            for op in ("rms_norm", "group_norm")]
    slow = records
    for key in keys:
        slow = slow_down(slow, key, times=3.0)
    cmp = compare(load(quick_bench), load(write(tmp_path / "slow.jsonl", slow)))
    flagged = cmp.speed[cmp.speed["change"] != "same"]
    assert sorted(zip(flagged["adapter"], flagged["case"], strict=True)) == sorted(keys)
    assert set(flagged["change"]) == {"slower"} and cmp.regressed


# --- judged against the machine: the probes each results file records --------------------------


def scaled(record, times):
    """A timing record ``times`` slower (every timing field, per-round samples too)."""
    r = {**record, **{k: record[k] * times for k in ("median_s", "min_s", "iqr_s")}}
    if r.get("samples_s"):
        r["samples_s"] = [s * times for s in r["samples_s"]]
    return r


def slower(records, times, where=lambda r: True):
    return [scaled(r, times) if r in timed([r]) and where(r) else r for r in records]


def steady(records):
    """The cases timed in every repeat, each repeat rescaled to the first repeat's median: a change
    planted in them separates the repeats whatever this machine's noise did to the real ones."""
    counts = Counter((r["adapter"], r["case"]) for r in timed(records))
    first = {(r["adapter"], r["case"]): r["median_s"] for r in timed(records) if r.get("repeat", 0) == 0}
    full = max(counts.values())
    out = []
    for r in records:
        key = (r.get("adapter"), r.get("case"))
        if r.get("suite") == "speed" and counts.get(key, full) < full:
            continue  # timed in one pass only (with the self-check's record of it)
        out.append(scaled(r, first[key] / r["median_s"]) if r in timed([r]) else r)
    return out


def probed(records, gbps=30.0, cpu_s=0.0025):
    """The records with their environment record's probes set (None: not recorded)."""
    def env(r):
        r = {k: v for k, v in r.items() if k not in ("memory_bandwidth", "cpu_probe")}
        return r | ({"memory_bandwidth": {"gbps": gbps}} if gbps is not None else {}) | (
            {"cpu_probe": {"seconds": cpu_s}} if cpu_s is not None else {})
    return [env(r) if r.get("type") == "environment" else r for r in records]


def as_run(folder, records, probes):
    """A `normbench run` folder with one results file per repeat, each with its own probes:
    ``probes`` holds one (GB/s, CPU probe seconds) per file."""
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps({"format": "normbench-run/1"}))
    for k, (gbps, cpu_s) in enumerate(probes):
        mine = [r for r in records if r.get("type") == "environment" or (r.get("repeat") or 0) == k]
        (folder / "bench" / f"r{k}").mkdir(parents=True)
        write(folder / "bench" / f"r{k}" / "results.jsonl", probed(mine, gbps, cpu_s))
    return folder


def memory_bound(records, adapter):
    """``adapter``'s timings made memory-bound: measured against a bandwidth they exceed."""
    return [{**r, "bandwidth_gbps": 1e-6} if r in timed([r]) and r["adapter"] == adapter else r for r in records]


def keys(speed):
    return sorted(zip(speed["adapter"], speed["case"], strict=True))


def test_every_case_twice_as_slow_on_the_same_machine_is_a_regression(quick_bench, tmp_path):
    records = probed(steady(rows(quick_bench)))
    old = write(tmp_path / "old.jsonl", records)
    cmp = compare(load(old), load(write(tmp_path / "new.jsonl", slower(records, 2.0))))
    assert cmp.regressed and set(cmp.speed["change"]) == {"slower"} and set(cmp.speed["mark"]) == {"+"}
    assert {d.applied for d in cmp.machine.values()} == {1.0}
    assert any("every case moved together while the machine measured the same" in n for n in cmp.notes)
    assert not any("busier or different machine" in n for n in cmp.notes)
    assert "PERFORMANCE DECREASED." in cmp.markdown()


def test_a_quarter_slower_is_flagged_by_the_cases_moving_together(quick_bench, tmp_path):
    """Below the per-case factor (this VM's single cases move up to 1.52x between same-code runs),
    a 1.25x slowdown of one adapter's cases, or of all, is found by their median moving."""
    assert DEFAULT_FACTOR > 1.25 and ADAPTER_SHIFT_FACTOR < 1.25 and SHIFT_FACTOR < 1.25
    records = probed(steady(rows(quick_bench)))
    old = load(write(tmp_path / "old.jsonl", records))
    one_adapter = slower(records, 1.25, lambda r: r["adapter"] == "torch")
    torch = compare(old, load(write(tmp_path / "torch.jsonl", one_adapter)))
    assert torch.regressed and torch.adapter_shifts() == {"torch": pytest.approx(1.25)}
    assert set(torch.speed["change"]) == {"same"}  # no single case beyond the per-case factor
    assert "One adapter's cases moved together (median ratio, adapter factor 1.2): torch 1.25." in torch.summary()

    everything = compare(old, load(write(tmp_path / "all.jsonl", slower(records, 1.25))))
    assert everything.regressed and everything.shifted == "slower" and everything.shift == pytest.approx(1.25)
    assert "Every case moved together: median ratio 1.25" in everything.summary()
    assert "PERFORMANCE DECREASED." in everything.markdown()

    same = compare(old, load(write(tmp_path / "same.jsonl", slower(records, 1.1, lambda r: r["adapter"] == "torch"))))
    assert not same.regressed and not same.adapter_shifts()  # within the adapter factor


def test_a_machine_measured_twice_as_slow_explains_twice_the_time(quick_bench, tmp_path):
    records = steady(rows(quick_bench))
    old = load(as_run(tmp_path / "old", records, [(30.0, 0.0025), (32.0, 0.0026), (31.0, 0.0024)]))
    slow_machine = [(15.0, 0.005), (16.0, 0.0052), (15.5, 0.0049)]
    cmp = compare(old, load(as_run(tmp_path / "new", slower(records, 2.0), slow_machine)))
    assert not cmp.regressed and set(cmp.speed["change"]) == {"same"}
    assert cmp.machine["memory"].applied == pytest.approx(2.0) and cmp.machine["cpu"].applied == pytest.approx(2.0)
    assert cmp.speed["ratio"].min() == pytest.approx(2.0)  # the table keeps raw ratios
    note = next(n for n in cmp.notes if n.startswith("The CPU probe"))
    assert "median of 3 files" in note and "ranges do not overlap" in note and "divided by 2.00" in note
    assert any("the machine measured a change too" in n for n in cmp.notes)

    key = steadiest(records)  # a case twice as slow beyond the machine is still found
    beyond = compare(old, load(as_run(tmp_path / "beyond", slow_down(slower(records, 2.0), key), slow_machine)))
    assert keys(beyond.speed.query("change != 'same'")) == [key] and beyond.regressed


def test_memory_bound_cases_follow_the_bandwidth_and_the_rest_the_cpu_probe(quick_bench, tmp_path):
    records = memory_bound(steady(rows(quick_bench)), "numpy")
    old = load(as_run(tmp_path / "old", records, [(30.0, 0.0025), (32.0, 0.0026), (31.0, 0.0024)]))
    less_bandwidth = [(15.0, 0.0025), (16.0, 0.0024), (15.5, 0.0026)]  # the CPU probe did not move
    cmp = compare(old, load(as_run(tmp_path / "new", slower(records, 2.0), less_bandwidth)))
    by_adapter = cmp.speed.groupby("adapter")["change"].agg(set).to_dict()
    assert by_adapter == {"numpy": {"same"}, "torch": {"slower"}} and cmp.regressed
    assert set(cmp.speed.loc[cmp.speed["adapter"] == "numpy", "bound"]) == {"memory"}
    assert cmp.machine["cpu"].applied == 1.0
    assert any(n.startswith("Measured memory bandwidth differs") and "judged relative to it" in n for n in cmp.notes)


def test_noisy_overlapping_probes_apply_no_drift(quick_bench, tmp_path):
    records = memory_bound(steady(rows(quick_bench)), "numpy")
    old = load(as_run(tmp_path / "old", records, [(21.0, 0.0024), (36.0, 0.0031), (37.0, 0.0026)]))
    noisy = [(20.0, 0.0030), (21.0, 0.0025), (37.0, 0.0035)]  # medians 1.71x apart, ranges overlapping
    cmp = compare(old, load(as_run(tmp_path / "new", slower(records, 2.0), noisy)))
    assert cmp.machine["memory"].ratio == pytest.approx(36 / 21) and not cmp.machine["memory"].real
    assert {d.applied for d in cmp.machine.values()} == {1.0}
    assert cmp.regressed and set(cmp.speed["change"]) == {"slower"}
    assert sum("ranges overlap" in n and "no drift applied" in n for n in cmp.notes) == 2
    assert any(n.startswith("Measured memory bandwidth differs") and "not applied" in n for n in cmp.notes)


def test_single_files_apply_a_drift_only_beyond_the_factor(quick_bench, tmp_path):
    records = steady(rows(quick_bench))
    old = load(write(tmp_path / "old.jsonl", probed(records, 30.0, 0.0025)))
    slower_machine = compare(old, load(write(tmp_path / "a.jsonl", probed(slower(records, 2.0), 15.0, 0.005))))
    assert not slower_machine.regressed and slower_machine.machine["cpu"].applied == pytest.approx(2.0)
    within = compare(old, load(write(tmp_path / "b.jsonl", probed(slower(records, 2.0), 27.0, 0.0028))))
    assert within.regressed and {d.applied for d in within.machine.values()} == {1.0}
    assert any("within the factor" in n for n in within.notes)


def test_missing_probes_apply_no_drift_and_say_so(quick_bench, tmp_path):
    records = steady(rows(quick_bench))
    old = load(write(tmp_path / "old.jsonl", probed(records, None, None)))  # from before the probes
    cmp = compare(old, load(write(tmp_path / "new.jsonl", probed(slower(records, 2.0), 15.0, 0.005))))
    assert cmp.regressed and set(cmp.speed["change"]) == {"slower"}
    assert {d.ratio for d in cmp.machine.values()} == {None}
    assert any("did not record the memory bandwidth (missing from the old run)" in n for n in cmp.notes)
    assert any("did not record the CPU probe (missing from the old run)" in n for n in cmp.notes)
    assert any("recorded no machine probe" in n for n in cmp.notes)


def on_allocator(records, name):
    """The timing records as if timed under allocator ``name``."""
    return [{**r, "allocator": name} if r.get("suite") == "speed" else r for r in records]


def unrecorded_allocator(records):
    """The records as files from before they (and their environment record) named an allocator."""
    return [{k: v for k, v in r.items() if k != "allocator"} for r in records]


def test_runs_under_different_allocators_are_matched_across_with_a_note(quick_bench, tmp_path):
    records = probed(steady(rows(quick_bench)))
    system = load(write(tmp_path / "system.jsonl", on_allocator(records, "system")))
    cmp = compare(system, load(write(tmp_path / "warm.jsonl", on_allocator(records, "warm"))))
    assert set(cmp.speed["change"]) == {"same"} and len(cmp.speed) == len(set(keys(cmp.speed)))
    assert "Allocators differ: system -> warm; ratios include the allocator change." in cmp.notes
    assert set(cmp.speed["allocator"]) == {"system -> warm"} and not cmp.show_allocator
    assert "· system" not in cmp.markdown(only_changed=False)

    unrecorded = unrecorded_allocator(records)
    old = compare(load(write(tmp_path / "old.jsonl", unrecorded)), load(tmp_path / "warm.jsonl"))
    assert any(n.startswith("Allocators differ: unrecorded -> warm") for n in old.notes)
    assert set(old.speed["change"]) == {"same"}


def test_a_run_under_several_allocators_is_matched_within_each(quick_bench, tmp_path):
    records = probed(steady(rows(quick_bench)))
    both = on_allocator(records, "system") + [r for r in on_allocator(records, "warm") if r.get("suite") == "speed"]
    old = load(write(tmp_path / "old.jsonl", both))
    warm_slower = slower(both, 2.0, lambda r: r["allocator"] == "warm")
    cmp = compare(old, load(write(tmp_path / "new.jsonl", warm_slower)))
    changes = cmp.speed.groupby("allocator")["change"].agg(set).to_dict()
    assert changes == {"system": {"same"}, "warm": {"slower"}} and cmp.regressed
    assert not any(n.startswith("Allocators differ") for n in cmp.notes)
    assert cmp.show_allocator and "· warm" in cmp.markdown() and "· system" not in cmp.markdown()

    warm_only = [r for r in both if r.get("allocator") != "system"]
    fewer = compare(old, load(write(tmp_path / "warm.jsonl", warm_only)))
    changes = fewer.speed.groupby("allocator")["change"].agg(set).to_dict()
    assert changes == {"system": {"removed"}, "warm": {"same"}} and not fewer.regressed
