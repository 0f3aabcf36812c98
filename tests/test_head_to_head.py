"""Head-to-head timing (`normbench bench --head-to-head`): the statistics on data with known
answers, then the benchmark meta-tests on adapters whose speed is known exactly
(tests/meta_speed.py): an adapter against itself under two interpreters ties on every case, one
10 % or 5 % slower is found slower, and a contender that crashes costs only its own rows.
Nothing here asserts how fast anything is."""

from __future__ import annotations

import json
import os
import re
import sys
from collections import Counter

import numpy as np
import pytest

from normbench.bench import entrants, head_to_head, heat_plan
from normbench.cli import head_to_head as head_to_head_cli
from normbench.results import records

from . import meta_speed
from .helpers import ROOT, browser_dom, run_cli, run_python

ROUNDS = 30
BUDGET_MB = 700  # the spin processes hold ~40 MB each idle: two holding meta_speed.HOLD_MB fit, three do not


def _machine(rounds: int, seed: int) -> np.ndarray:
    """Per-round speed factors of a machine that drifts by up to 4x over a run."""
    rng = np.random.default_rng(seed)
    return np.exp(np.cumsum(rng.normal(0, 0.15, rounds)).clip(-0.7, 0.7))


def _blocks(base: float, drift: np.ndarray, seed: int, processes: int = 1, bias=(1.0,)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([base * drift * b * rng.lognormal(0, 0.02, drift.size) for b in bias[:processes]])


def test_interleaved_rounds_see_through_the_machines_drift():
    drift = _machine(ROUNDS, 1)
    assert drift.max() / drift.min() > 2  # medians taken minutes apart would differ by more than 2x
    a = _blocks(1e-3, drift, 2)
    same = head_to_head.ratio(_blocks(1e-3, drift, 3), a)
    slower = head_to_head.ratio(_blocks(1.1e-3, drift, 4), a)
    assert same.verdict == "tied" and same.interval[0] > 0.98 and same.interval[1] < 1.02
    assert slower.verdict == "slower" and 1.08 < slower.value < 1.12
    assert slower.interval[0] > 1.07 and slower.interval[1] < 1.13


def test_a_process_bias_widens_the_interval_instead_of_reading_as_a_difference():
    """Two processes of one adapter 6 % apart: pooled as if one pass, their rounds give a narrow
    interval; resampled by pass, the interval covers the processes' own difference."""
    drift = _machine(ROUNDS, 5)
    biased = _blocks(1e-3, drift, 6, processes=2, bias=(0.97, 1.03))
    other = np.vstack([_blocks(1e-3, drift, 7)[0], _blocks(1e-3, drift, 8)[0]])
    pooled = head_to_head.ratio(biased.reshape(1, -1), other.reshape(1, -1))
    by_process = head_to_head.ratio(biased, other)
    width = lambda r: r.interval[1] - r.interval[0]  # noqa: E731
    assert width(by_process) > width(pooled)
    assert by_process.verdict == "tied"


def test_standings_name_the_fastest_and_say_who_is_tied_with_it():
    drift = _machine(ROUNDS, 9)
    got = head_to_head.standings({"a": _blocks(1e-3, drift, 10), "b": _blocks(1e-3, drift, 11),
                                  "c": _blocks(1.2e-3, drift, 12)})
    fastest = got["a"]["fastest"]
    assert fastest in ("a", "b") and got[fastest]["verdict"] == "fastest" and got[fastest]["ratio"] == 1.0
    assert got["b" if fastest == "a" else "a"]["verdict"] == "tied"
    assert got["c"]["verdict"] == "slower" and got["c"]["ratio_ci"][0] > 1.1
    # the machine's drift moves every contender: an adapter's own spread is measured against the field
    assert head_to_head.spread(_blocks(1e-3, drift, 10)) > 0.3
    assert all(row["block_spread"] < 0.06 for row in got.values()), got
    # the middle one of three is the median of all three in every round: its spread read 0
    spread = head_to_head.standings({"a": _blocks(1e-3, drift, 13), "b": _blocks(1.5e-3, drift, 14),
                                     "c": _blocks(2e-3, drift, 15)})["b"]["block_spread"]
    assert 0.01 < spread < 0.06, spread


def test_the_fastest_is_the_one_the_paired_rounds_do_not_beat():
    """a's median block is the lower (it won the one round that decides the medians) but b beat it in six
    rounds of seven: the ratios shown are paired, so b is the fastest and no ratio to it reads below 1."""
    machine = np.array([[1, 1, 1, 2, 3, 3, 3]], dtype=float)
    a = machine * np.array([1.05, 1.05, 1.05, 0.9, 1.05, 1.05, 1.05])
    assert head_to_head.figure(a) < head_to_head.figure(machine)
    got = head_to_head.standings({"a": a, "b": machine})
    assert got["b"]["verdict"] == "fastest" and got["a"]["fastest"] == "b"
    assert got["a"]["ratio"] == pytest.approx(1.05)


def test_heats_chain_their_ratios_through_the_anchor_and_say_less_than_one_field():
    """A case too large for the field at once: heat 1 is the anchor with a and b, heat 2 the anchor
    with c and d, minutes apart (the machine 2x slower in heat 2). Ratios across heats go through the
    anchor; the interval is wider than a direct pairing's, and the verdicts still hold."""
    one, two = _machine(ROUNDS, 20), 2 * _machine(ROUNDS, 21)
    heat1 = {"anchor": _blocks(1e-3, one, 22), "a": _blocks(0.9e-3, one, 23), "b": _blocks(1.08e-3, one, 24)}
    heat2 = {"anchor": _blocks(1e-3, two, 25), "c": _blocks(0.9e-3, two, 26), "d": _blocks(0.99e-3, two, 27)}
    blocks = {"anchor": np.hstack([heat1["anchor"], heat2["anchor"]]),
              **{k: v for h in (heat1, heat2) for k, v in h.items() if k != "anchor"}}
    relative = {n: [list((b / h["anchor"])[0])] for h in (heat1, heat2) for n, b in h.items() if n != "anchor"}
    got = head_to_head.chained_standings(blocks, relative, "anchor", {})
    assert len({row["fastest"] for row in got.values()}) == 1 and got["a"]["fastest"] in ("a", "c")
    assert {got["a"]["verdict"], got["c"]["verdict"]} == {"fastest", "tied"}, got
    assert got["anchor"]["verdict"] == got["b"]["verdict"] == got["d"]["verdict"] == "slower"
    assert 1.15 < got["b"]["ratio"] < 1.25 and 1.05 < got["d"]["ratio"] < 1.15
    # b against heat 1's fastest through the anchor, and directly (they shared heat 1): the chain is wider
    chained = head_to_head.chained_standings({k: blocks[k] for k in ("anchor", "a", "b")},
                                             {k: relative[k] for k in ("a", "b")}, "anchor", {})["b"]
    direct = head_to_head.ratio(heat1["b"], heat1[chained["fastest"]])
    assert chained["ratio_ci"][1] - chained["ratio_ci"][0] > direct.interval[1] - direct.interval[0]
    # a median taken in heat 2 is twice its heat-1 self: medians across heats would rank by the machine
    assert got["c"]["median_s"] > 1.5 * got["a"]["median_s"]


def test_a_heat_plan_anchors_on_a_steady_modest_entrant_and_counts_what_members_will_grow_to():
    plan = heat_plan.HeatPlan(budget_mb=1100)
    for name, need in {"tf": 400, "torch": 100, "jax": 150, "ort": 50}.items():
        plan.need["big", name] = need
    plan.spreads = {"tf": [0.01], "torch": [0.05], "jax": [0.3], "ort": [0.2]}
    # the steadiest of those that take on no more than the middle of the field (not tf, however steady),
    # then the hungriest first
    assert plan.order("big", ["tf", "torch", "jax", "ort"]) == ["torch", "tf", "jax", "ort"]
    assert plan.order("big", ["tf", "torch", "jax", "ort"], anchor="ort") == ["ort", "tf", "jax", "torch"]
    # what each holds before the case counts too: torch idling at 500 MB is no modest anchor
    idle = {"torch": 500, "tf": 0, "jax": 0, "ort": 0}
    assert plan.order("big", ["tf", "torch", "jax", "ort"], held=idle)[0] == "ort"
    held = {"tf": 300, "torch": 150, "jax": 100, "ort": 80}  # torch has prepared (+50 so far), the rest idle
    before = {"tf": 300, "torch": 100, "jax": 100, "ort": 80}
    assert plan.projected("big", held, before, ["torch"]) == 300 + 200 + 100 + 80  # torch will grow to 200
    assert plan.projected("big", held, before, ["torch", "tf"]) == 700 + 200 + 100 + 80
    assert not plan.fits("big", held, before, ["torch", "tf", "jax"])  # 1,230 MB
    assert plan.fits("big", held, before, ["torch", "tf"])
    assert not plan.fits("other", held, before, ["torch"])  # nothing learned about that case yet
    # torch's processes take on more in bfloat16: its hunger for a case is read on cases of that dtype and mode
    plan.need["small-bf16", "torch"], plan.need["small-bf16", "jax"] = 300, 100
    plan.kinds.update({"small-bf16": "bfloat16 forward", "big": "float32 forward"})
    assert plan.hunger("torch", "bfloat16 forward") == 1.0 and plan.hunger("torch", "float32 forward") == 0.25
    assert plan.predict("big2", "tf") == 0 and plan.predict("big", "nope") == pytest.approx(heat_plan.MARGIN * 400)


def test_what_a_pass_holds_together_counts_a_shared_page_once(tmp_path):
    """Two processes mapping the same 64 MB file: summed resident sizes count it twice (as they counted
    each TensorFlow process's libtensorflow), proportional set sizes once."""
    import subprocess

    from normbench.bench.contender import status_mb

    shared = tmp_path / "shared.bin"
    shared.write_bytes(os.urandom(64 * 2**20))
    code = ("import mmap, sys; f = open(sys.argv[1], 'rb'); m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ); "
            "s = sum(m[i] for i in range(0, len(m), 4096)); print(s, flush=True); sys.stdin.read()")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(shared)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for p in procs:
            p.stdout.readline()  # every page touched
        pids = [p.pid for p in procs]
        resident = sum(status_mb(pid, "VmRSS") for pid in pids)
        together = heat_plan.together_mb(pids)
        assert resident - together > 0.8 * 64, (resident, together)  # one of the two copies
    finally:
        for p in procs:
            p.stdin.close()
            p.wait(10)


def test_entrants_from_two_interpreters_are_named_by_their_environment(tmp_path):
    pythons = []
    for venv in ("venv-a", "venv-b"):
        exe = tmp_path / venv / "bin" / "python"
        exe.parent.mkdir(parents=True)
        exe.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
        exe.chmod(0o755)
        pythons.append(str(exe))
    got = entrants.parse_entrants([f"torch@{p}" for p in pythons] + ["onnxruntime"], lambda ref: ref)
    assert [e.name for e in got] == ["torch@venv-a", "torch@venv-b", "onnxruntime"]
    assert [e.python for e in got] == [*pythons, sys.executable]
    with pytest.raises(ValueError, match="named twice with the same interpreter"):
        entrants.parse_entrants([f"torch@{pythons[0]}", f"torch@{pythons[0]}"], lambda ref: ref)
    with pytest.raises(ValueError, match="is not an executable Python interpreter"):
        entrants.parse_entrants([f"torch@{tmp_path / 'nope'}"], lambda ref: ref)


@pytest.fixture(scope="module")
def meta_pass(tmp_path_factory):
    """One head-to-head pass: Steady under this interpreter and under a second one (a venv-b that
    runs this same Python), 10 % and 5 % slower copies (the 5 % one timed at the default shapes alone, as
    normbench run times the compiled modes it adds), and an adapter that segfaults. Its memory
    budget holds two of them on a BatchNorm case (``meta_speed.HOLD_MB`` each), not four: those
    cases run in heats."""
    root = tmp_path_factory.mktemp("h2h")
    other = root / "venv-b" / "bin" / "python"
    other.parent.mkdir(parents=True)
    other.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    other.chmod(0o755)
    names = ["tests.meta_speed:Steady", f"tests.meta_speed:Steady@{other}", "tests.meta_speed:Slower10",
             "tests.meta_speed:Slower5", "tests.crashing_adapters:Segfaulting"]
    out = root / "r"
    # two passes: a spin on the clock carries no process bias of its own (real frameworks do: see the defaults)
    proc = run_cli("bench", "--quick", "--processes", "2", "--rounds", "6", "--adapters",
                   ",".join(names), "--memory-budget", str(BUDGET_MB),
                   "--default-shapes-for", "tests.meta_speed:Slower5", "-o", str(out), cwd=ROOT, timeout=900)
    env, rows = records.read(out / "results.jsonl")
    return proc, out, env, rows


def _verdicts(rows, adapter):
    return Counter(r["head_to_head"]["verdict"] for r in rows if r["adapter"] == adapter and "head_to_head" in r)


@pytest.mark.serial
def test_an_adapter_against_itself_ties_on_every_case(meta_pass):
    _, _, env, rows = meta_pass
    mine = f"meta-steady@{os.path.basename(os.path.dirname(os.path.dirname(sys.executable)))}"
    a, b = _verdicts(rows, mine), _verdicts(rows, "meta-steady@venv-b")
    cases = {r["case"] for r in rows if r["adapter"] == mine and "head_to_head" in r}
    assert len(cases) == 19  # every op's quick cases: the spin runs any op and mode
    assert not a["slower"] and not b["slower"] and a["tied"] + b["tied"] == len(cases), (a, b)
    assert {e["name"] for e in env["head_to_head"]["entrants"]} >= {mine, "meta-steady@venv-b"}


@pytest.mark.serial
def test_an_entrant_for_the_default_shapes_alone_sits_out_the_sweeps(meta_pass):
    _, _, _, rows = meta_pass
    cases = {a: {r["case"] for r in rows if r["adapter"] == a and "head_to_head" in r}
             for a in ("meta-slower-10", "meta-slower-5")}
    sweeps = {r["case"] for r in rows if r.get("params", {}).get("group") == "sweep"}
    missing = cases["meta-slower-10"] - cases["meta-slower-5"]
    # a sweep step that is also a default shape is one call, timed once and recorded in both tables
    assert missing and missing <= sweeps and cases["meta-slower-10"] - sweeps <= cases["meta-slower-5"]
    with pytest.raises(ValueError, match="--default-shapes-for names 'torch'.*not among the adapters timed"):
        head_to_head_cli.entrants("onnxruntime", "torch")


@pytest.mark.serial
def test_ten_and_five_percent_slower_are_found_slower(meta_pass):
    _, _, _, rows = meta_pass
    ten, five = _verdicts(rows, "meta-slower-10"), _verdicts(rows, "meta-slower-5")
    assert ten["slower"] >= 0.9 * sum(ten.values()), ten
    assert five["slower"] > 0.5 * sum(five.values()), five
    ratios = [r["head_to_head"]["ratio"] for r in rows if r["adapter"] == "meta-slower-10" and "head_to_head" in r]
    assert 1.05 < float(np.median(ratios)) < 1.15


@pytest.mark.serial
def test_plain_bench_is_head_to_head_and_counts_recompiles_in_the_contenders(meta_pass):
    _, _, env, rows = meta_pass
    assert env["head_to_head"]["processes"] == 2  # no --head-to-head was given: it is the default
    assert "once no thread of the process that ran before it" in env["head_to_head"]["quiet"]
    timed = [r for r in rows if "head_to_head" in r and r["outcome"] == "pass"]
    assert timed and all(r["head_to_head"]["busy_after_block_s"] >= 0 for r in timed)
    counted = {r["adapter"]: r for r in rows if r["check"] == "recompiles"}
    assert set(counted) == {e["name"] for e in env["head_to_head"]["entrants"]}
    assert counted["segfaulting"]["outcome"] == "error"
    fine = [r for name, r in counted.items() if name != "segfaulting"]
    assert all(r["outcome"] == "pass" and "no tracing" in r["message"] for r in fine)


@pytest.mark.serial
def test_each_case_is_judged_against_a_copy_of_its_own_working_set_timed_beside_it(meta_pass):
    """A roofline over main memory's bandwidth alone put in-cache cases at 107-151 %; one over the rate of the
    cache level sysfs names, measured once at the start of the run, put cases of 8-32 MB at 100-152 % on a VM
    whose sysfs claims a 480 MiB L3 (its "L3" rate was main memory's). Each case up to
    ``bandwidth.OWN_COPY_MAX_BYTES`` is judged against a copy of its own bytes, timed before each pass's (or
    heat's) rounds; the level sysfs names stays in the record."""
    from normbench.bench import bandwidth

    _, out, env, rows = meta_pass
    levels = env["cache_bandwidth"]["levels"]
    memory = env["memory_bandwidth"]["gbps"]
    assert levels[-1]["name"] == "memory" and memory == levels[-1]["gbps"]
    timed = [r for r in rows if "head_to_head" in r]
    assert timed and all(r["bytes"] <= bandwidth.OWN_COPY_MAX_BYTES for r in timed)  # the quick cases
    for r in timed:
        level = next(lv for lv in levels if lv["name"] == r["roofline_level"])
        smaller = [lv for lv in levels if lv["bytes"] and lv["bytes"] < (level["bytes"] or float("inf"))]
        assert (level["bytes"] is None or r["bytes"] <= level["bytes"]) and all(r["bytes"] > lv["bytes"]
                                                                              for lv in smaller)
        copies = r["roofline_copies_gbps"]
        assert len(copies) >= r["head_to_head"]["processes"] and all(c > 0 for c in copies), r["case"]
        assert r["roofline_gbps"] == pytest.approx(max(*copies, memory))
        assert r["roofline_frac"] == pytest.approx(r["gbps"] / r["roofline_gbps"])
    html = (out / "report.html").read_text()
    assert "% of copy</span>" in html and "a plain copy of the same working set" in html


@pytest.mark.serial
def test_a_contender_that_crashes_costs_only_its_own_rows(meta_pass):
    proc, out, _, rows = meta_pass
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    crashed = [r for r in rows if r["adapter"] == "segfaulting" and r["check"] not in ("peak_memory", "recompiles")]
    assert len(crashed) == 19 and all(r["outcome"] == "error" for r in crashed)
    assert "Fatal Python error: Segmentation fault" in crashed[0]["message"]
    others = [r for r in rows if r["adapter"] != "segfaulting" and r["check"] != "peak_memory"]
    assert others and all(r["outcome"] == "pass" for r in others)
    assert (out / "report.html").exists()


@pytest.mark.serial
def test_every_process_records_its_peak_memory(meta_pass):
    _, _, _, rows = meta_pass
    peaks = [r for r in rows if r["check"] == "peak_memory"]
    assert Counter(r["adapter"] for r in peaks).most_common()[0][1] == 2  # two processes each
    fine = [r for r in peaks if r["outcome"] == "pass"]
    assert len(fine) >= 8 and all(r["facts"]["peak_rss_mb"] > 10 for r in fine)
    # what a pass's processes held at once, read while they all held a case: more than any one of them
    together = {r["facts"]["process"]: r["facts"]["pass_together_mb"] for r in fine}
    assert all(together[r["facts"]["process"]] > r["facts"]["peak_rss_mb"] for r in fine)
    timed = [r for r in rows if "head_to_head" in r]
    assert all(0 < r["field_resident_mb"] <= max(together.values()) for r in timed)  # and on each case
    assert any(r["outcome"] == "error" and r["adapter"] == "segfaulting" for r in peaks)


def test_a_process_that_keeps_what_it_freed_is_restarted_to_keep_the_pass_within_its_budget(tmp_path):
    """TensorFlow's CPU allocator keeps the largest working set it has had: dropping a case gives nothing back
    (keras[tensorflow] idled at 1.5 GB after the default matrix's largest RMSNorm case). A heat holds at least
    two contenders, so two of them on a large case beside such a process went over the budget (7,215 MB for a
    5,600 MB budget in one `make run`). An idle process holding more than it did on starting is restarted
    instead, and the pass stays within its budget. Nothing here is timed."""
    from normbench.adapters import registry
    from normbench.bench import conductor, harness

    refs = ["tests.meta_speed:Steady", "tests.meta_speed:Slower10", "tests.meta_speed:Ratcheting"]
    field = entrants.parse_entrants(refs, lambda ref: registry.get(ref).name)
    cases = [c for c in harness.cases(quick=True) if c.op == "batch_norm"]
    # ~45 MB each idle; a heat of two on a BatchNorm case, 450 MB more; the ratchet keeps HOLD_MB per case
    budget = 800
    conduct = conductor.Conductor(field, tmp_path / "logs", processes=2, rounds=2, budget_mb=budget,
                                  recompiles=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    done = dict(conduct.run(cases))
    assert conduct.peak_together_mb <= budget, (conduct.peak_together_mb, conduct.case_mb)
    retired = [p for p in conduct.processes_seen if p.get("retired_on")]
    assert retired and {p["adapter"] for p in retired} == {"meta-ratcheting"}, conduct.processes_seen
    assert all(p["peak_rss_mb"] > meta_speed.HOLD_MB for p in retired)
    assert set(done) == set(cases)
    for case, timings in done.items():  # every contender timed every case in both passes
        assert {n: len(t.blocks) for n, t in timings.items()} == dict.fromkeys(timings, 2), case.id
        assert all(not t.error for t in timings.values()), case.id
    # the records and the report say so
    from normbench.bench import contest
    from normbench.reports import head_to_head as h2h_report
    from normbench.reports import model

    levels = [{"name": "memory", "bytes": None, "working_set_bytes": 2**30, "gbps": 20.0}]
    file = records.ResultsFile(tmp_path / "results.jsonl", env={},
                               extra_env={"head_to_head": {"memory_budget_mb": budget}})
    for case, timings in done.items():
        for rec in contest.case_records(case, timings, levels, conduct.hellos, conduct.case_mb.get(case.id)):
            file.add(rec)
    memory = contest.memory_records(conduct.processes_seen, field)
    for rec in memory:
        file.add(rec)
    file.close()
    assert len({r.case for r in memory}) == len(memory)  # a restarted process and its successor: two records
    assert sum("restarted before batch_norm-" in r.message for r in memory) == len(retired)
    res = model.load([tmp_path / "results.jsonl"])
    line = h2h_report.budget_line(res)
    assert f"{len(retired)} idle processes of meta-ratcheting were restarted" in line, line
    assert h2h_report.together(res)[1] == 3  # processes of a pass at once: a restart's successor is not a fourth


def test_a_heat_is_planned_from_what_its_members_hold_once_they_have_settled(tmp_path, monkeypatch):
    """Stop 37's `make run`: a heat of flax.linen, keras[jax] and keras[torch] on the largest RMSNorm case
    started its rounds with the pass at 5,352 MB and ended them at 6,242 (budget 5,600): under the warm
    allocator setting a process's heap fragments over its first blocks of a case, past what its first calls
    left. A first pass now prepares each contender to its steady footprint before it joins a heat, and the
    pass stays within its budget. Nothing here is timed."""
    from normbench.adapters import registry
    from normbench.bench import conductor, harness

    refs = ["tests.meta_speed:Steady", "tests.meta_speed:Slower10", "tests.meta_speed:Growing"]
    field = entrants.parse_entrants(refs, lambda ref: registry.get(ref).name)
    cases = [c for c in harness.cases(quick=True) if c.op == "batch_norm"][:2]
    # ~45 MB each idle and HOLD_MB each on a BatchNorm case: three fit after their first calls (~735 MB),
    # not once meta-growing has taken on GROWN_MB more in its blocks (~935 MB)
    budget = 800
    conduct = conductor.Conductor(field, tmp_path / "logs", processes=2, rounds=2, budget_mb=budget,
                                  recompiles=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    drawn = []  # the conductor draws a case's inputs once per pass, not once per heat
    monkeypatch.setattr(conductor.Drawn, "write", _counting(conductor.Drawn.write, drawn))
    done = dict(conduct.run(cases))
    assert conduct.peak_together_mb <= budget, (conduct.peak_together_mb, conduct.case_mb)
    assert set(done) == set(cases)
    assert sorted(drawn) == sorted(c.id for c in cases for _ in range(2)), drawn
    for case, timings in done.items():  # every contender timed every case in both passes, in heats
        assert {n: len(t.blocks) for n, t in timings.items()} == dict.fromkeys(timings, 2), case.id
        assert all(not t.error for t in timings.values()), case.id
        assert all(t.heats > 1 for t in timings.values()), case.id
        grower = timings["meta-growing"].ready[0]
        assert grower["settled"] >= 2, grower  # it grew in its first untimed block, and held in the next


def _counting(write, drawn: list[str]):
    """``Drawn.write`` that notes each case it draws (not each time it hands back what is there)."""
    def counted(self, case):
        if not (self.written and self.written[0] == case.id):
            drawn.append(case.id)
        return write(self, case)
    return counted


@pytest.mark.serial
def test_a_case_the_field_cannot_hold_at_once_runs_in_heats_within_the_budget(meta_pass):
    """Issue 21: every adapter alive and holding a large case at once took a pass to 13.5 GB."""
    _, _, env, rows = meta_pass
    assert env["head_to_head"]["memory_budget_mb"] == BUDGET_MB
    timed = [r for r in rows if "head_to_head" in r]
    heated = {r["case"] for r in timed if r["head_to_head"].get("heats", 1) > 1}
    assert heated == {r["case"] for r in timed if r["op"] == "batch_norm"}  # the cases that hold HOLD_MB
    assert all(r["field_resident_mb"] <= BUDGET_MB for r in timed), [r["field_resident_mb"] for r in timed]
    for case in heated:
        mine = [r for r in timed if r["case"] == case]
        (anchor,) = {r["head_to_head"]["anchor"] for r in mine}  # one anchor, in every heat
        assert "heats" in mine[0]["message"] and f"read through {anchor}" in mine[0]["message"]
        assert next(r for r in mine if r["adapter"] == anchor)["head_to_head"]["rounds"] > mine[0]["head_to_head"][
            "rounds"] or mine[0]["adapter"] == anchor


@pytest.mark.serial
def test_the_report_gives_standings_intervals_ties_a_chart_and_memory(meta_pass):
    _, out, _, rows = meta_pass
    md = (out / "report.md").read_text()
    section = md.split("## Head to head")[1].split("\n## ")[0]
    five = len({r["case"] for r in rows if r["adapter"] == "meta-slower-5" and "head_to_head" in r})
    assert five < 19  # at the default shapes alone (--default-shapes-for)
    assert "| meta-slower-10 | 0 | 0 | 19 |" in section and f"| meta-slower-5 | 0 | 0 | {five} |" in section
    assert "Tied with the fastest on 19 of 19 cases" in section and "Peak resident memory per process" in section
    assert "processes of a pass together, on " in section
    speed = md.split("## Speed")[1].split("\n## ")[0]  # the speed table reads the same standings
    steady = next(line for line in speed.splitlines() if line.startswith("| LayerNorm | forward |"))
    assert "× the fastest with its 95 % interval" in speed and " tied)**" in steady and "×, [" not in steady
    html = (out / "report.html").read_text()
    h2h = html.split('id="head-to-head"')[1].split("</section>")[0]
    assert "tied with the fastest" in h2h and "1.10" in h2h and "slower" in h2h
    assert h2h.count("<svg") == 5  # one chart of ratios per op
    assert "peak resident MB" in h2h


@pytest.mark.serial
def test_the_section_renders_in_chromium(meta_pass, tmp_path):
    _, out, _, _ = meta_pass
    dom = browser_dom((out / "report.html").read_text(), tmp_path)
    assert 'id="head-to-head"' in dom and "tied with the fastest" in dom


def test_a_call_in_two_tables_is_timed_once_and_recorded_in_both():
    from normbench.bench import harness
    from normbench.cli.head_to_head import same_call

    cases = harness.cases(None)
    alike = same_call(cases)
    assert sum(len(v) for v in alike.values()) == len(cases)
    twice = [v for v in alike.values() if len(v) > 1]
    assert twice and all({c.group for c in v} == {"default", "sweep"} and len({c.id for c in v}) == 2 for v in twice)


@pytest.mark.serial  # its benchmark has the machine alone
def test_the_main_job_times_head_to_head_under_the_lock_it_holds_for_its_benchmark(tmp_path):
    """`normbench run` holds the machine lock for its benchmark process; that process must not wait
    for it again (it did: for ever)."""
    out = tmp_path / "r"
    proc = run_cli("run", "--adapters", "tests.meta_speed:Steady,tests.meta_speed:Slower10", "--suites", "speed",
                   "--quick", "-o", str(out), cwd=ROOT, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    (bench,) = [j for j in json.loads((out / "run.json").read_text())["jobs"] if j["phase"] == "bench"]
    assert bench["status"] == "done" and bench["folder"] == "bench"
    env, rows = records.read(out / "bench" / "results.jsonl")
    assert env["machine_lock"]["held_by"] == "normbench run" and env["head_to_head"]["processes"] == 1
    slower = [r for r in rows if r["adapter"] == "meta-slower-10" and "head_to_head" in r]  # the default shapes
    assert len(slower) == 21 and sum(r["head_to_head"]["verdict"] == "slower" for r in slower) >= 0.9 * 21
    md = (out / "report" / "report.md").read_text()
    assert "## Head to head" in md and "## Speed" in md


def test_a_warning_marks_blocks_that_disagree_more_than_the_rest_of_the_case():
    """On a noisy machine every adapter's blocks spread 15-40 %: a mark on every row said nothing."""
    from normbench.reports.head_to_head import unsteady

    assert not unsteady(0.30, 0.25) and not unsteady(0.08, 0.02) and not unsteady(float("nan"), 0.2)
    assert unsteady(0.60, 0.25) and unsteady(0.15, None)


@pytest.mark.serial  # its benchmark has the machine alone
def test_a_side_field_of_modes_feeds_the_execution_modes_section_alone(tmp_path):
    """`normbench run` times the compiled modes it adds in a side field, beside their default modes
    (which its main field times too): those records give the Execution modes section its ratios and stay
    out of the speed tables, the head-to-head standings and a second count of the default's timings."""
    from normbench.reports import head_to_head as h2h_model
    from normbench.reports import loading, modes, timing

    out = tmp_path / "r"
    proc = run_cli("bench", "--quick", "--processes", "1", "--rounds", "6", "--field", "modes", "--adapters",
                   "tests.meta_speed:Compiles,tests.meta_speed:Compiles+compiled", "-o", str(out), cwd=ROOT)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    env, rows = records.read(out / "results.jsonl")
    assert env["head_to_head"]["field"] == "modes"
    timed = [r for r in rows if "head_to_head" in r]
    assert timed and all(r["head_to_head"]["field"] == "modes" for r in timed)
    res = loading.load([out / "results.jsonl"])
    assert not len(timing.speed(res)) and not len(h2h_model.rows(res))
    speed = modes.speed(res)
    assert len(speed) == len(timed) // 2 and set(speed["verdict"]) == {"faster"}
    assert speed["ratio"].between(0.45, 0.55).all() and speed["default_median_s"].notna().all()
    assert (out / "report.md").read_text().count("Execution modes") >= 1
    mem = [r for r in rows if r["check"] == "peak_memory"]
    assert {r["case"] for r in mem} == {"meta-compiles-modes-p0", "meta-compiles+compiled-modes-p0"}
    assert all(r["facts"]["field"] == "modes" for r in mem)  # a pass of 2 processes, apart from the main field's
    lines = (out / "results.jsonl").read_text().splitlines()
    main = tmp_path / "main.jsonl"  # the same processes as a main field's: no field named
    main.write_text("\n".join([lines[0], *(json.dumps({**r, "case": r["case"].replace("-modes", ""), "facts": {
        k: v for k, v in r["facts"].items() if k != "field"}}) for r in mem)]) + "\n")
    assert h2h_model.together(loading.load([out / "results.jsonl", main]))[1] == 2  # two fields of 2, not one of 4


def test_the_default_run_times_its_compiled_modes_beside_their_defaults_at_the_default_shapes(tmp_path):
    from normbench.adapters import registry
    from normbench.cli import run as run_command
    from normbench.running import runner
    from normbench.running.job import plan

    chosen = registry.select("torch,onnxruntime,tf_keras,tests.meta_speed:Compiles")
    adapters, short = run_command.with_modes(chosen, None, quick=False)
    jobs = [j for j in runner.jobs(plan(adapters), tmp_path, runner.Options(short=short)) if j.phase == "bench"]
    main, side = (j.command for j in jobs)
    assert main[main.index("--adapters") + 1] == "torch,onnxruntime,tf_keras,tests.meta_speed:Compiles"
    assert "--field" not in main and "--no-sweeps" not in main
    assert side[side.index("--adapters") + 1] == ("torch,torch+inductor,tf_keras,tf_keras+xla,"
                                                  "tests.meta_speed:Compiles,tests.meta_speed:Compiles+compiled")
    assert side[side.index("--field") + 1] == "modes" and "--no-sweeps" in side
    assert side[side.index("-o") + 1] == str(tmp_path / "bench-modes") and jobs[1].exclusive
    quick = runner.jobs(plan(run_command.with_modes(chosen, None, quick=True)[0]), tmp_path,
                        runner.Options(quick=True))
    assert [j.group.name for j in quick if j.phase == "bench"] == ["head-to-head"]


@pytest.mark.serial  # its benchmark has the machine alone
def test_a_contenders_compile_cache_starts_empty_and_serves_its_later_passes(tmp_path):
    """A first call is a compile, not a read of a cache that an earlier run left (Inductor's in /tmp made a
    LayerNorm's "first call" read 0.1 s where compiling takes seconds), whatever caches the user has set:
    JAX's, TensorFlow's XLA and Inductor's all point into the entrant's own folder. Its second process may
    reuse what its first compiled. The caches live in the results folder while it runs, and are gone after."""
    out, probe = tmp_path / "r", tmp_path / "probe.jsonl"
    users = {"TORCHINDUCTOR_CACHE_DIR": str(tmp_path), "JAX_COMPILATION_CACHE_DIR": str(tmp_path),
             "TF_XLA_FLAGS": f"--tf_xla_persistent_cache_directory={tmp_path} --tf_xla_auto_jit=0"}
    proc = run_cli("bench", "--quick", "--no-sweeps", "--processes", "2", "--rounds", "2", "--adapters",
                   "tests.meta_speed:CacheProbe", "-o", str(out), env={"NORMBENCH_TEST_PROBE": str(probe), **users})
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    seen = [json.loads(line) for line in probe.read_text().splitlines()]
    first_pid, own = seen[0]["pid"], out / "compile-caches" / "meta-cache-probe"
    assert seen[0]["found"] == [] and {s["cache"] for s in seen} == {str(own / "inductor")}
    assert {s["JAX_COMPILATION_CACHE_DIR"] for s in seen} == {str(own / "jax")}
    assert {s["TF_XLA_FLAGS"] for s in seen} == {f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory="
                                                  f"{own / 'tensorflow-xla'}"}
    later = [s for s in seen if s["pid"] != first_pid]
    assert later and f"compiled-by-{first_pid}" in later[0]["found"]
    assert not (out / "compile-caches").exists()
    env = json.loads((out / "results.jsonl").read_text().splitlines()[0])
    assert "empty at its first process" in env["head_to_head"]["compile_caches"]  # the record says so
    phases = re.search(r"([\d.]+) s starting processes, ([\d.]+) s preparing cases .*, ([\d.]+) s in timed rounds, "
                       r"([\d.]+) s releasing cases, ([\d.]+) s ending processes", proc.stdout)
    assert phases, proc.stdout[-2000:]  # where the time went, whether or not --verbose


RELEASES = """
import gc, json, weakref
from normbench.bench.contender import Contender

c = Contender("torch")
walked, freed = [], []
for shape in ([256, 64], [128, 32], [256, 64]):
    assert "ready" in c.prepare({"op": "layer_norm", "mode": "forward", "shape": shape, "dtype": "float32"})
    c.block(3, 1)
    cycle = [c.prepared]
    cycle.append(cycle)  # held only by a cycle: a collection must find it
    c.prepared = cycle
    gone = weakref.ref(cycle[0])
    del cycle
    c.drop()
    freed.append(gone() is None)
    walked.append(len(gc.get_objects()))
print(json.dumps({"freed": freed, "walked": walked, "frozen": gc.get_freeze_count()}))
"""


def test_a_contender_frees_every_case_and_stops_walking_the_frameworks_objects():
    """After its first case, a release's collection walks what the cases made, not the framework's
    ~170,000 (torch) to ~410,000 (TensorFlow) objects: 75-190 ms per case and process, ~40 s of a pass."""
    proc = run_python(RELEASES)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = json.loads(proc.stdout.strip().splitlines()[-1])
    assert said["freed"] == [True, True, True]
    assert said["frozen"] > 50_000 and max(said["walked"]) < said["frozen"] / 20, said
