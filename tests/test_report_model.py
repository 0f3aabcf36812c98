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
from normbench.reports import formatting, model
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
         facts={"known": KNOWN[0].key})
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
            row["facts"].update(running_var="unbiased", declared_running_var="biased")
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


def test_a_known_stress_record_does_not_decide_the_running_variance(numpy_results, tmp_path):
    """A stress input whose running variance a known divergence explains matches neither convention;
    the passing records still say which one the layer keeps (flax's one-pass variance at offset 1e4)."""

    def edit(row):
        if row["check"] == "running_var" and row["input"] == "offset1e4":
            row.update(outcome="known")
            row["facts"].update(running_var="neither", known="flax-fast-variance")

    res = model.load([rewrite(numpy_results, tmp_path / "k" / "results.jsonl", edit=edit)])
    row = model.behaviour(res).set_index(["adapter", "op"]).loc[("numpy", "batch_norm")]
    assert row["running variance"] == "biased" and not row["running variance mismatch"]


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
             facts={"known": key, "link": ENVELOPE_LINK, "envelope": envelope,
                    "within_envelope": f"{times}x its tolerance, envelope {envelope:g}x"})
    row = c.index[compared & (c["outcome"] == "pass")][0]
    mark(c, c.index == row, "fail", max_abs_err=c.at[row, "tolerance"] * 3.2e4,
         facts={"outside_known": key, "link": ENVELOPE_LINK, "envelope": 2500.0,
                "within_envelope": "3.2e+04x its tolerance, envelope 2.5e+03x"},
         message="outside known divergence's envelope", rerun="pytest 'outside'")
    row = c.index[(c["outcome"] == "pass") & (c["op"] == "group_norm")][0]
    mark(c, c.index == row, "error", max_abs_err=None,
         facts={"known": key, "link": ENVELOPE_LINK, "envelope": None,
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
