"""The report model's tables, from real results made here (numpy verification, a quick benchmark),
edited where a test needs a known divergence, a failure, a second run or a busy machine.

The helpers build what `normbench run` writes: a folder holding run.json and one results file per
process; the HTML and Markdown tests use them too.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest

from normbench import ops
from normbench.bench import allocator
from normbench.reports import formatting, model
from normbench.results.facts import conventions, says
from normbench.verify.known import KNOWN


def rewrite(src: Path, dst: Path, env: dict | None = None, edit: Callable[[dict], None] | None = None) -> Path:
    """A copy of a results file: its environment record updated with ``env``, each check passed
    through ``edit`` (which changes it in place)."""
    rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    for row in rows:
        if row["type"] == "environment":
            row.update(env or {})
        elif edit is not None:
            edit(row)
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return dst


def make_run(root: Path, name: str, files: dict[str, tuple[Path, dict]],
             edit: Callable[[dict], None] | None = None) -> Path:
    """A `normbench run` folder: run.json and, per ``<phase>/<group>[/r<k>]`` folder, a copy of a
    results file with its environment record updated."""
    run = root / name
    run.mkdir(parents=True)
    (run / "run.json").write_text("{}\n")
    for folder, (src, env) in files.items():
        rewrite(src, run / folder / "results.jsonl", env, edit)
    return run


def bandwidth(gbps: float) -> dict:
    return {"memory_bandwidth": {"gbps": gbps}}


def mark(checks: pd.DataFrame, where: pd.Series, outcome: str, **fields) -> None:
    """Give the first record matching ``where`` another outcome (and fields), as a real run could."""
    row = checks.index[where][0]
    checks.loc[row, "outcome"] = outcome
    for key, value in fields.items():
        checks.at[row, key] = value


def two_runs_of(root: Path, numpy_results: Path, quick_bench: Path) -> model.Results:
    """Two `normbench run` folders: "alpha", three processes whose memory bandwidth moved 23.1–43.0 GB/s
    and whose torch LayerNorm timings overlapped 1.3 cores of other load; "beta", one process."""

    def busy(row):
        if row.get("suite") == "speed" and row.get("check") != "recompiles":
            row["other_load"] = 1.3 if row["adapter"] == "torch" and row["op"] == "layer_norm" else 0.0

    lock = {"machine_lock": {"mode": "exclusive", "waited_s": 0.0}}
    make_run(root, "alpha", {
        "verify/numpy": (numpy_results, {"date": "2024-05-01T10:02:00+00:00", **lock}),
        "bench/numpy/r0": (quick_bench, {"date": "2024-05-01T10:20:00+00:00", **bandwidth(23.1), **lock}),
        "bench/numpy/r1": (quick_bench, {"date": "2024-05-01T10:40:00+00:00", **bandwidth(43.0), **lock}),
    }, edit=busy)
    make_run(root, "beta", {"verify/numpy": (numpy_results, {"date": "2024-05-02T09:00:00+00:00",
                                                             "python": "3.12.1", **lock})})
    return model.load([root / "alpha", root / "beta"])


def planted(path: Path) -> model.Results:
    """A verification with one known divergence (an infinite error) and one failure planted."""
    res = model.load(path)
    c = res.checks
    compared = c["tolerance"].notna() & (c["outcome"] == "pass")
    mark(c, compared & (c["check"] == "forward_train"), "known", max_abs_err=math.inf, err_eps=math.inf,
         facts={"known": KNOWN[0].key, "link": KNOWN[0].link, "reason": KNOWN[0].reason})  # as the plugin writes
    mark(c, compared & (c["check"] == "forward_eval"), "fail")
    return res


@pytest.fixture
def verified(numpy_results):
    return planted(numpy_results)


def test_closest_lists_passing_checks_nearest_their_tolerance_first(verified):
    closest = model.closest(verified)
    assert len(closest) > 10 and set(closest["outcome"]) == {"pass"}
    ratios = list(closest["ratio"])
    assert ratios == sorted(ratios, reverse=True) and 0 <= ratios[-1] <= ratios[0] <= 1
    assert closest.iloc[0]["ratio"] == pytest.approx(closest.iloc[0]["max_abs_err"] / closest.iloc[0]["tolerance"])


def test_agreement_cells_put_failures_first_and_keep_the_worst_check_of_each_cell(verified):
    cells = model.agreement_cells(verified)
    c = verified.checks
    compared = c[c["tolerance"].notna() & (c["outcome"] != "skip")]
    assert len(cells) == compared.groupby(["case", "adapter"]).ngroups
    assert cells.iloc[0]["outcome"] == "fail"  # failures lead, whatever their ratio
    known = cells[cells["outcome"] == "known"].iloc[0]
    assert math.isinf(known["ratio"]) and known["checks"] > 1  # the known check speaks for its cell
    rest = cells[cells["outcome"] == "pass"]["ratio"]
    assert list(rest) == sorted(rest, reverse=True)  # then the highest error / tolerance (one adapter here)
    matrix = model.agreement_matrix(verified)
    assert list(matrix.index) == list(cells["case"]) and list(matrix.columns) == ["numpy"]


def test_headlines_count_with_correct_plurals(numpy_results, quick_bench):
    verify_only = model.headlines(model.load(numpy_results))
    assert len(verify_only) == 1 and " checks on 1 adapter: " in verify_only[0]
    speed_only = model.headlines(model.load(quick_bench))
    assert len(speed_only) == 1 and speed_only[0].endswith(" timings of 2 adapters on 1 machine.")
    assert model.headlines(model.Results(pd.DataFrame(), pd.DataFrame())) == ["No results in these files."]


def test_runs_fold_a_run_folder_into_one_summarised_column(numpy_results, quick_bench, tmp_path):
    res = two_runs_of(tmp_path, numpy_results, quick_bench)
    assert len(res.environments) == 4
    runs = model.runs(res).set_index("run")
    assert list(runs.index) == ["alpha", "beta"]
    assert runs.loc["alpha", "results files"] == "3"
    assert runs.loc["alpha", "date"] == "2024-05-01 10:02–10:40 UTC"
    assert runs.loc["alpha", "memory bandwidth"] == "23.1–43.0 GB/s"
    assert runs.loc["beta", "memory bandwidth"] == formatting.MISSING
    shared, differ = model.split_runs(runs.reset_index())
    assert {"date", "python", "memory bandwidth", "results files"} <= set(differ.index)
    assert list(differ.columns) == ["alpha", "beta"]
    assert "machine" in shared and "versions" in shared and "python" not in shared


def test_warnings_name_unsteady_bandwidth_lock_waits_and_other_load(numpy_results, quick_bench, tmp_path):
    quiet = rewrite(quick_bench, tmp_path / "quiet" / "results.jsonl", {"machine_lock": {"mode": "exclusive"}},
                    edit=lambda row: row.update(other_load=0.0))
    assert model.report_warnings(model.load(quiet)) == []

    def busy(row):
        if row.get("suite") == "speed" and row.get("check") != "recompiles":
            row["other_load"] = 1.3 if row["op"] == "layer_norm" and row["adapter"] == "torch" else 0.1

    make_run(tmp_path, "busy", {
        "verify/numpy": (numpy_results, {"machine_lock": {"mode": "shared", "waited_s": 40.0}}),
        "bench/numpy/r0": (quick_bench, {**bandwidth(23.1), "machine_lock": {"mode": "exclusive", "waited_s": 12.5}}),
        "bench/torch/r0": (quick_bench, {**bandwidth(43.0), "machine_lock": {"mode": "exclusive", "waited_s": 0.2}}),
    }, edit=busy)
    res = model.load(tmp_path / "busy")
    found = model.report_warnings(res)
    assert found[0] == ("busy: memory bandwidth varied 23.1–43.0 GB/s across this run's processes: timings "
                        "from different processes may not be comparable.")
    # Only benchmark processes count: the verification one waited longer, but timed nothing.
    assert found[1].startswith("1 benchmark process waited for the machine lock (up to 12 s)")
    speed = model.speed(res)
    loaded = int((speed["other_load"] >= 0.5).sum())
    assert 0 < loaded < len(speed)
    assert found[2] == (f"{loaded} of {len(speed)} timings overlapped other load (up to 1.3 cores busy with other "
                        "processes): the machine was not quiet.")
    env = res.environments.set_index("run")
    assert env.loc["busy/bench/numpy/r0", "lock_mode"] == "exclusive"
    assert env.loc["busy/bench/numpy/r0", "lock_waited_s"] == 12.5
    assert model.runs(res).iloc[0]["machine lock"] == "exclusive; shared, waited up to 40 s"


def test_speed_ratio_is_within_each_shape_group(quick_bench):
    res = model.load(quick_bench)
    c = res.checks
    # Time one default case again as a sweep point (same shape): each group must keep its own fastest.
    default = c[(c["suite"] == "speed") & c["params"].apply(lambda p: p.get("group") == "default")]
    copy = default[default["adapter"] == "numpy"].head(1).copy()
    copy["params"] = copy["params"].apply(lambda p: {**p, "group": "sweep"})
    copy["case"] = copy["case"] + "-as-sweep"
    res = model.Results(pd.concat([c, copy], ignore_index=True), res.environments)
    speed = model.speed(res)
    row = copy.iloc[0]
    shape = "×".join(map(str, row["params"]["logical_shape"]))
    same = speed[(speed["mode"] == row["check"]) & (speed["shape"] == shape) & (speed["op"] == row["op"])]
    assert set(same["group"]) == {"default", "sweep"}
    for _, group in same.groupby("group"):
        assert (group["vs_fastest"] == 1.0).sum() == 1 and (group["vs_fastest"] >= 1.0).all()


def test_one_number_boolean_and_plural_style():
    assert formatting.sig3(1446.0) == "1.45e3" and formatting.sig3(0.000123) == "0.000123"
    assert formatting.sig3(1.23e-5) == "1.23e-5" and formatting.sig3(math.inf) == "∞"
    assert formatting.fmt_value(True) == "yes" and formatting.fmt_value(False) == "no"
    assert formatting.fmt_value(None) == formatting.MISSING == "—"
    assert formatting.plural(1, "adapter") == "1 adapter" and formatting.plural(2, "adapter") == "2 adapters"
    assert formatting.plural(1, "process", "processes") == "1 process"
    assert formatting.plural(1262, "check") == "1,262 checks"


# ---------------------------------------------------------------- five ops: behaviour and known envelopes

ENVELOPE_LINK = KNOWN[0].link


def other_framework(numpy_results: Path, dst: Path) -> Path:
    """numpy's records as if a second framework had made them, one that reports its defaults (as
    torch does), stores the unbiased running variance while declaring biased, and puts RMSNorm's
    eps elsewhere (its eps0.1 case fails)."""
    defaults = {"layer_norm": {"default_eps": 1e-5, "default_affine": True},
                "batch_norm": {"default_eps": 1e-3, "default_momentum": 0.99, "default_momentum_new_weight": 0.01,
                               "momentum_convention": "old", "default_affine": True},
                "rms_norm": {"default_eps": "machine eps of the input dtype", "default_affine": True},
                "group_norm": {"default_eps": 1e-5, "default_affine": True},
                "instance_norm": {"default_eps": 1e-5, "default_momentum": 0.1, "default_momentum_new_weight": 0.1,
                                  "default_track_running_stats": False, "default_affine": False}}

    def edit(row):
        row["adapter"] = "otherfw"
        if row["check"] == "defaults":
            row.update(outcome="pass", facts=defaults[row["op"]])
        if "running_var" in row["facts"]:
            row["facts"].update(running_var=["unbiased"], declared_running_var="biased")
        if row["op"] == "rms_norm" and "-eps0.1" in row["case"] and row["check"] == "forward_train":
            row["outcome"] = "fail"
        if row["check"] == "forward_train" and row["dtype"] == "float16":
            row["facts"]["output_dtype"] = "float32"

    return rewrite(numpy_results, dst, edit=edit)


def test_behaviour_is_one_row_per_adapter_and_op_in_registry_order(numpy_results, tmp_path):
    res = model.load([numpy_results, other_framework(numpy_results, tmp_path / "other" / "results.jsonl")])
    table = model.behaviour(res)
    assert list(zip(table["adapter"], table["op"], strict=True)) == [
        (a, op) for a in ("numpy", "otherfw") for op in ops.names()]
    assert list(table["title"][:5]) == [op.title for op in ops.all()]
    row = table.set_index(["adapter", "op"]).loc
    other = row["otherfw"]
    assert other.loc["batch_norm", "default eps"] == 1e-3 and other.loc["batch_norm", "default momentum"] == 0.99
    assert other.loc["batch_norm", "momentum as weight of new batch"] == 0.01
    assert other.loc["rms_norm", "default eps"] == "machine eps of the input dtype"
    assert other.loc["instance_norm", "running stats by default"] is False  # optional running stats only
    stateless = [op.name for op in ops.all() if op.running_stats == "never"]
    assert other.loc[stateless, "default momentum"].isna().all()  # not "no": they have no momentum
    assert other.loc[stateless, "running variance"].isna().all()
    assert other.loc["batch_norm", "running stats by default"] is None  # BatchNorm always keeps them
    assert other.loc["rms_norm", "eps"] == "differs" and other.loc["layer_norm", "eps"] == "inside the sqrt"
    assert set(row["numpy"]["eps"]) == {"inside the sqrt"}  # every op's eps0.1 case passed
    assert other.loc["group_norm", "float16 in → out"] == "float32"
    assert row["numpy"].loc["group_norm", "float16 in → out"] == "float16"
    # numpy can tell biased from unbiased over the records together, though single records cannot
    assert row["numpy"].loc["batch_norm", "running variance"] == "biased"
    assert row["numpy"].loc["batch_norm", "declared running variance"] == "biased"
    assert not row["numpy"]["running variance mismatch"].any()
    mismatched = model.running_var_mismatches(res)
    assert list(zip(mismatched["adapter"], mismatched["title"], strict=True)) == [
        ("otherfw", op.title) for op in ops.all() if op.running_stats != "never"]
    titles = [title for title, _ in model.behaviour_matrices(res)]
    assert titles == [op.title for op in ops.all()]
    layer_norm = dict(model.behaviour_matrices(res))["LayerNorm"]
    assert list(layer_norm.columns) == ["numpy", "otherfw"]
    assert "default momentum" not in layer_norm.index and "default eps" in layer_norm.index


@pytest.mark.parametrize("neither", [[], "neither"], ids=["list", "older-text"])
def test_a_known_stress_record_does_not_decide_the_running_variance(numpy_results, tmp_path, neither):
    """A stress input whose running variance a known divergence explains matches neither convention;
    the passing records still say which one the layer keeps (flax's one-pass variance at offset 1e4)."""

    def edit(row):
        if row["check"] == "running_var" and row["input"] == "offset1e4":
            row.update(outcome="known")
            row["facts"].update(running_var=neither, known="flax-fast-variance")

    res = model.load([rewrite(numpy_results, tmp_path / "k" / "results.jsonl", edit=edit)])
    row = model.behaviour(res).set_index(["adapter", "op"]).loc[("numpy", "batch_norm")]
    assert row["running variance"] == "biased" and not row["running variance mismatch"]


def as_older_text(row: dict) -> None:
    """A record as files before the list form wrote it: the running-variance convention as text."""
    if "running_var" in row.get("facts", {}):
        row["facts"]["running_var"] = says(conventions(row["facts"]["running_var"]))


def test_the_running_variance_reads_the_same_from_a_list_and_from_the_older_text(numpy_results, tmp_path):
    """Files written before the convention became a list ("biased or unbiased", "neither") still read:
    the behaviour table says the same of both, mismatches included."""
    other = other_framework(numpy_results, tmp_path / "other" / "results.jsonl")
    new = model.load([numpy_results, other])
    assert any(isinstance(f.get("running_var"), list) for f in new.checks["facts"])
    old = model.load([rewrite(numpy_results, tmp_path / "old" / "results.jsonl", edit=as_older_text),
                      rewrite(other, tmp_path / "old-other" / "results.jsonl", edit=as_older_text)])
    assert any(isinstance(f.get("running_var"), str) for f in old.checks["facts"])
    pd.testing.assert_frame_equal(model.behaviour(old), model.behaviour(new))
    assert model.behaviour(new)["running variance mismatch"].any()
    pd.testing.assert_frame_equal(model.running_var_mismatches(old), model.running_var_mismatches(new))


def with_envelopes(path: Path) -> model.Results:
    """numpy's verification with a known divergence within its envelope (twice, at 40× and 400× a
    tolerance against envelopes of 2000× and 1000×), one past it (3.2e4× against 2500×: a failure)
    and one that raised as its cause does."""
    res = model.load(path)
    c = res.checks
    key = KNOWN[0].key
    compared = (c["tolerance"].notna() & (c["outcome"] == "pass") & (c["check"] == "forward_train")
                & (c["op"] == "rms_norm"))
    for times, envelope in ((40, 2000.0), (400, 1000.0)):
        row = c.index[compared & (c["outcome"] == "pass")][0]
        mark(c, c.index == row, "known", max_abs_err=c.at[row, "tolerance"] * times,
             facts={"known": key, "link": ENVELOPE_LINK, "reason": KNOWN[0].reason, "envelope": envelope,
                    "within_envelope": f"{times}x its tolerance, envelope {envelope:g}x"})
    row = c.index[compared & (c["outcome"] == "pass")][0]
    mark(c, c.index == row, "fail", max_abs_err=c.at[row, "tolerance"] * 3.2e4,
         facts={"outside_known": key, "link": ENVELOPE_LINK, "reason": KNOWN[0].reason, "envelope": 2500.0,
                "within_envelope": "3.2e+04x its tolerance, envelope 2.5e+03x"},
         message="outside known divergence's envelope", rerun="pytest 'outside'")
    row = c.index[(c["outcome"] == "pass") & (c["op"] == "group_norm")][0]
    mark(c, c.index == row, "error", max_abs_err=None,
         facts={"known": key, "link": ENVELOPE_LINK, "reason": KNOWN[0].reason, "envelope": None,
                "within_envelope": "raises ValueError, as this cause does"})
    c.loc[row, "outcome"] = "known"
    return res


def test_known_divergences_show_error_against_envelope_and_count_records_outside_it(numpy_results):
    res = with_envelopes(numpy_results)
    known = model.known(res)
    assert list(known["divergence"]) == [KNOWN[0].key] and list(known["adapter"]) == ["numpy"]
    row = known.iloc[0]
    assert row["records"] == 3 and row["outside"] == 1 and row["link"] == ENVELOPE_LINK
    # the record closest to its envelope speaks: 400 of 1000, not 40 of 2000
    assert row["ratio"] == pytest.approx(400) and row["envelope"] == 1000 and row["used"] == pytest.approx(0.4)
    assert row["reason"] == KNOWN[0].reason and row["example"].endswith(" forward_train")
    outside = model.outside_known(res)
    assert len(outside) == 1
    assert outside.iloc[0]["ratio"] == pytest.approx(3.2e4) and outside.iloc[0]["envelope"] == 2500
    assert outside.iloc[0]["divergence"] == KNOWN[0].key and outside.iloc[0]["rerun"] == "pytest 'outside'"
    assert model.headlines(res)[0].endswith("1 unexpected failure (1 outside a known divergence's envelope).")
    assert model.outside_known(model.load(numpy_results)).empty and model.known(model.load(numpy_results)).empty


def test_speed_lists_ops_in_registry_order_and_modes_in_the_ops_order(quick_bench):
    speed = model.speed(model.load(quick_bench))
    assert model.ordered_ops(speed["op"]) == list(dict.fromkeys(speed["op"]))
    assert list(dict.fromkeys(speed["op"])) == [op for op in ops.names() if op in set(speed["op"])]
    assert len(set(speed["op"])) == len(ops.names())  # every op is benchmarked
    bn = speed[(speed["op"] == "batch_norm") & (speed["group"] == "default")]
    assert list(dict.fromkeys(bn["mode"])) == list(ops.get("batch_norm").bench_modes)
    assert model.op_title("rms_norm") == "RMSNorm" and model.op_title("plugin_norm") == "plugin_norm"


def test_a_case_timed_head_to_head_lists_its_adapters_by_their_ratio_to_the_fastest(quick_bench, tmp_path):
    """The fastest is the one the paired rounds do not beat, which need not hold the lowest median: it
    comes first, and the rest follow their ratios, not their medians."""
    standing = {"numpy": (2e-3, {"ratio": 1.0, "ratio_ci": [1.0, 1.0], "verdict": "fastest"}),
                "torch": (1e-3, {"ratio": 1.02, "ratio_ci": [0.95, 1.1], "verdict": "tied"})}

    def edit(row: dict) -> None:
        if row.get("adapter") in standing and row.get("median_s") is not None:
            median, h2h = standing[row["adapter"]]
            row.update(median_s=median, samples_s=[median] * 3, head_to_head={**h2h, "block_spread": 0.1})

    speed = model.speed(model.load(rewrite(quick_bench, tmp_path / "r" / "results.jsonl", edit=edit)))
    firsts = speed.groupby(["op", "mode", "shape", "dtype"], sort=False).head(1)
    assert len(firsts) > 10 and set(firsts["adapter"]) == {"numpy"} and set(firsts["verdict"]) == {"fastest"}


# ---------------------------------------------------------------- allocators and repeats

PRELOADS = {"tcmalloc": "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4", "jemalloc": "/usr/lib/libjemalloc.so.2"}
PROBES = {"warm": 0.0, "system": 61.5, "tcmalloc": 0.2, "jemalloc": 0.1}


def timing(row: dict) -> bool:
    return row.get("suite") == "speed" and row.get("check") not in model.NOT_TIMINGS


def scale(row: dict, factor: float) -> None:
    """A timing made ``factor`` times slower: its median and every round's time."""
    row["median_s"] *= factor
    row["min_s"] *= factor
    row["samples_s"] = [x * factor for x in row["samples_s"]]


def picked(row: dict) -> bool:
    """The one case the allocator and spread tests edit: torch LayerNorm forward, default shape."""
    return (timing(row) and row["adapter"] == "torch" and row["op"] == "layer_norm" and row["check"] == "forward"
            and row["params"]["group"] == "default")


def allocator_env(name: str | None) -> dict:
    """The environment record's allocator, as a process started under ``name`` describes it."""
    if name is None:
        return {"allocator": None}
    known = allocator.KNOWN[name]
    settings = dict(known.env) | ({"LD_PRELOAD": PRELOADS[name]} if name in PRELOADS else {})
    mapped = {"preload_mapped": True} if name in PRELOADS else {}
    return {"allocator": {"name": name, "settings": settings, "meaning": known.meaning,
                          "probe_faults_per_mb": PROBES[name], **mapped}, "cpu_probe": {"seconds": 0.004}}


def per_allocator(root: Path, src: Path, names: tuple[str, ...],
                  edit: Callable[[str, dict], None] | None = None) -> Path:
    """What `normbench bench --allocators` writes: the same cases timed under each allocator, a
    process (results file) per allocator and repeat, in ``<allocator>/r<k>``; ``edit(name, row)``
    changes a timing."""
    rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    env = next(row for row in rows if row["type"] == "environment")
    repeats = sorted({row["repeat"] for row in rows if timing(row)})
    for name, k in ((name, k) for name in names for k in repeats):
        kept = [json.loads(json.dumps(row)) for row in rows if row["type"] != "environment"
                and (row["repeat"] == k if timing(row) else k == repeats[0])]  # recompiles: the first pass
        for row in filter(timing, kept):
            row["allocator"] = name
            if edit is not None:
                edit(name, row)
        dst = root / name / f"r{k}" / "results.jsonl"
        dst.parent.mkdir(parents=True)
        dst.write_text("".join(json.dumps(row) + "\n" for row in [{**env, **allocator_env(name)}, *kept]))
    return root


def unrecorded(src: Path, dst: Path, edit: Callable[[dict], None] | None = None) -> Path:
    """A results file from before records named their allocator."""
    def strip(row):
        row.pop("allocator", None)
        if edit is not None:
            edit(row)
    return rewrite(src, dst, allocator_env(None), strip)


def system_faults(name: str, row: dict) -> None:
    """system page-faults the picked case's output in on every call and takes twice as long."""
    if name == "system" and picked(row):
        scale(row, 2.0)
        row["faults_per_call"] = 4096.0


def test_repeats_pool_per_allocator_and_the_tables_show_each_runs_primary(quick_bench, tmp_path):
    one = model.load(unrecorded(quick_bench, tmp_path / "old" / "results.jsonl"))
    res = model.load(per_allocator(tmp_path / "three", quick_bench, ("system", "warm", "tcmalloc")))
    assert list(res.environments["run"]) == [f"three/{name}/r{k}" for name in ("system", "tcmalloc", "warm")
                                             for k in range(3)]
    assert list(model.runs(res)["run"]) == ["three"]  # one run: its repeats pool, its allocators compare
    timed, single = model.timed_rows(res), model.timed_rows(one)
    assert len(timed) == 3 * len(single) and set(timed["repeats"]) == set(single["repeats"]) == {3}
    assert timed.groupby("allocator").size().to_dict() == dict.fromkeys(("system", "tcmalloc", "warm"), len(single))
    assert set(timed.loc[timed["primary"], "allocator"]) == {allocator.DEFAULT}
    speed, primary = model.speed(res), model.primary_speed(res)
    assert list(primary.columns) == list(speed.columns) and "allocator" in speed
    assert set(primary["allocator"]) == {"warm"} and len(primary) == len(model.speed(one))
    assert (speed.groupby(["allocator", "group", "op", "mode", "shape", "dtype"])["vs_fastest"].min() == 1.0).all()
    # Without the default, the allocator most cases were timed under is the primary one.
    two = model.load(per_allocator(tmp_path / "two", quick_bench, ("system", "tcmalloc")))
    assert set(model.primary_speed(two)["allocator"]) == {"system"}
    # Files from before the allocator was recorded: nothing to choose, nothing hidden, nothing said.
    assert single["allocator"].isna().all() and single["primary"].all()
    assert model.allocator_note(one) is None and model.allocators(one).empty


def test_the_allocator_is_stated_once_with_its_meaning(quick_bench, tmp_path):
    warm = model.load(per_allocator(tmp_path / "warm", quick_bench, ("warm",)))
    assert model.allocator_note(warm) == f"Allocator: warm — {allocator.KNOWN['warm'].meaning}."
    three = model.load(per_allocator(tmp_path / "three", quick_bench, ("system", "warm", "tcmalloc")))
    assert model.allocator_note(three).endswith(". Also timed under system, tcmalloc: see Allocator effect.")


def test_allocator_effect_compares_each_case_with_system_largest_effect_first(quick_bench, tmp_path):
    res = model.load(per_allocator(tmp_path / "a", quick_bench, ("system", "warm", "tcmalloc"), system_faults))
    table = model.allocators(res)
    cases = table.groupby(model.ALLOCATOR_CASE, sort=False).size()
    assert set(cases) == {3} and len(cases) == len(model.primary_speed(res))
    top = table.head(3).set_index("allocator")
    assert list(top.index) == ["system", "warm", "tcmalloc"]  # the baseline first
    assert (top["adapter"] == "torch").all() and (top["op"] == "layer_norm").all() and set(top["mode"]) == {"forward"}
    assert set(top["baseline"]) == {"system"} and top.loc["system", "vs_baseline"] == 1.0
    assert list(top["vs_baseline"]) == pytest.approx([1.0, 0.5, 0.5])
    assert top.loc["system", "faults_per_call"] == 4096 and top.loc["system", "effect"] == pytest.approx(2.0)
    effects = list(table.drop_duplicates(model.ALLOCATOR_CASE)["effect"])
    assert effects == sorted(effects, reverse=True) and effects[1] == pytest.approx(1.0)  # the rest: same copy
    # Without system, the run's primary allocator is the baseline.
    res = model.load(per_allocator(tmp_path / "b", quick_bench, ("tcmalloc", "warm")))
    assert set(model.allocators(res)["baseline"]) == {"warm"}
    assert model.allocators(model.load(per_allocator(tmp_path / "c", quick_bench, ("warm",)))).empty


def spread_repeats(row: dict) -> None:
    """Every repeat of every timing takes 1 ms, but repeat 1 of the picked case takes 1.5 ms in a
    process that measured half the memory bandwidth and page-faulted (its other repeats did not)."""
    if timing(row):
        scale(row, 1e-3 / row["median_s"])
        if picked(row):
            row["faults_per_call"] = 0.0
        if picked(row) and row["repeat"] == 1:
            scale(row, 1.5)
            row.update(bandwidth_gbps=row["bandwidth_gbps"] / 2, faults_per_call=900.0)


def test_repeat_spread_is_the_slowest_repeat_over_the_fastest(quick_bench, tmp_path):
    res = model.load(per_allocator(tmp_path, quick_bench, ("warm",), lambda _, row: spread_repeats(row)))
    speed = model.speed(res)
    worst = speed.loc[speed["repeat_spread"].idxmax()]
    assert (worst["adapter"], worst["op"], worst["mode"]) == ("torch", "layer_norm", "forward")
    assert worst["group"] == "default" and worst["repeat_spread"] == pytest.approx(1.5)
    assert worst["repeat_medians_s"] == pytest.approx([1e-3, 1.5e-3, 1e-3])
    assert model.spread_note(worst) == "repeats 1.00–1.50 ms"
    steady = speed.drop(index=worst.name)
    assert steady["repeat_spread"].to_numpy() == pytest.approx(1.0) and not any(map(model.spread_note, steady.iloc))
    assert model.SPREAD_NOTE == 1.10
    one = model.load(rewrite(quick_bench, tmp_path / "one" / "results.jsonl",
                             edit=lambda row: timing(row) and row["repeat"] and row.update(outcome="skip")))
    assert model.speed(one)["repeat_spread"].isna().all()  # one repeat: no spread to speak of


def test_stability_summarises_the_spread_and_shows_the_worst_cases_repeats(quick_bench, tmp_path):
    res = model.load(per_allocator(tmp_path / "a", quick_bench, ("system", "warm"), lambda _, row: spread_repeats(row)))
    found = model.stability(res)
    default = model.primary_speed(res)
    default = default[default["group"] != "sweep"]
    assert found["cases"] == len(default) and found["within"] == len(default) - 1  # system's are not counted
    assert found["median"] == pytest.approx(1.0) and found["worst"] == pytest.approx(1.5)
    assert found["allocators"] == ["warm"]
    worst = found["worst_case"]
    assert (worst["adapter"], worst["title"], worst["mode"]) == ("torch", "LayerNorm", "forward")
    repeats = worst["repeats"]
    assert list(repeats["repeat"]) == [0, 1, 2] and list(repeats["faults_per_call"])[1] == 900.0
    bandwidth = list(repeats["bandwidth_gbps"])
    assert bandwidth[1] == pytest.approx(bandwidth[0] / 2) and bandwidth[0] == bandwidth[2]
    summary, named = model.stability_text(found)
    assert summary.startswith(f"Of {len(default)} default-shape cases timed in several repeats under warm, "
                              f"{len(default) - 1} agree within ±10%")
    assert "worst 1.50×" in summary and named.startswith("Worst: torch LayerNorm forward ")
    one = rewrite(quick_bench, tmp_path / "one" / "results.jsonl",
                  edit=lambda row: timing(row) and row["repeat"] and row.update(outcome="skip"))
    assert model.stability(model.load(one)) is None


def test_runs_show_the_allocator_its_settings_and_fault_probe(quick_bench, tmp_path):
    res = model.load(per_allocator(tmp_path / "a", quick_bench, ("system", "warm", "tcmalloc")))
    env = res.environments.drop_duplicates("allocator").set_index("allocator")
    assert env.loc["warm", "allocator_settings"] == f"GLIBC_TUNABLES={allocator.WARM_TUNABLES}"
    assert env.loc["tcmalloc", "allocator_settings"] == f"LD_PRELOAD={PRELOADS['tcmalloc']}"
    assert env.loc["system", "allocator_settings"] == "" and env.loc["system", "allocator_probe_faults_per_mb"] == 61.5
    assert env.loc["warm", "cpu_probe_s"] == 0.004
    run = model.runs(res).iloc[0]
    assert run["allocator"] == (f"system; tcmalloc (LD_PRELOAD={PRELOADS['tcmalloc']}); "
                                f"warm (GLIBC_TUNABLES={allocator.WARM_TUNABLES})")
    assert run["allocator probe"] == "system 61.5; tcmalloc 0.2; warm 0 page faults/MiB"
    unmapped = rewrite(quick_bench, tmp_path / "b" / "results.jsonl",
                       {"allocator": {**allocator_env("tcmalloc")["allocator"], "preload_mapped": False}})
    assert model.runs(model.load(unmapped)).iloc[0]["allocator"].endswith(" — ⚠ preloaded library not mapped")
    old = model.runs(model.load(unrecorded(quick_bench, tmp_path / "old" / "results.jsonl"))).iloc[0]
    assert old["allocator"] == old["allocator probe"] == formatting.MISSING


def test_the_environment_says_where_each_process_kept_its_compiles(numpy_results, quick_bench, tmp_path):
    """A verification process may read compiles an earlier run left in the user's cache; a benchmark's start
    empty. The report says which, and says nothing for files from before it was recorded."""
    cache = "/home/u/.cache/normbench/compile"
    make_run(tmp_path, "cached", {
        "verify/numpy": (numpy_results, {"compile_caches": {
            "JAX_COMPILATION_CACHE_DIR": f"{cache}/jax", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
            "TF_XLA_FLAGS": f"--tf_xla_auto_jit=0 --tf_xla_persistent_cache_directory={cache}/tensorflow-xla",
            "TORCHINDUCTOR_CACHE_DIR": f"{cache}/inductor"}}),
        "bench/numpy/r0": (quick_bench, {"compile_caches": {}, "head_to_head": {
            "compile_caches": "each entrant's own, empty at its first process"}}),
    })
    shown = model.runs(model.load(tmp_path / "cached")).iloc[0]["compile caches"]
    assert set(shown.split("; ")) == {f"{cache}/ (inductor, jax, tensorflow-xla)",
                                      "benchmark: each entrant's own, empty at its first process"}
    old = rewrite(numpy_results, tmp_path / "old" / "results.jsonl", edit=lambda row: None)
    rows = [json.loads(line) for line in old.read_text().splitlines()]
    rows[0].pop("compile_caches", None)
    old.write_text("".join(json.dumps(row) + "\n" for row in rows))
    assert "compile caches" not in model.split_runs(model.runs(model.load(old)))[0]  # not recorded: not shown
