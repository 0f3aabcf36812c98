"""Execution modes: an adapter in another mode is ``<name>+<mode>``, its own rows judged by the
oracle like the default, selected with ``--modes``; a bug that exists only in a compiled mode is
caught in that mode alone; the built-in compiled modes really run compiled."""

from __future__ import annotations

import dataclasses
import html
import json

import numpy as np
import pandas as pd
import pytest

from normbench import ops
from normbench.adapters import registry
from normbench.adapters.base import Mode
from normbench.ops.case import Case
from normbench.ops.spec import NormSpec
from normbench.reports import modes
from normbench.reports.loading import Results
from normbench.results.records import Record
from normbench.running import runner
from normbench.running.job import plan
from normbench.verify import checks, known

from .helpers import ROOT, one_line_error, run_cli

META = "tests.meta_adapters:CompiledOnePass"


def test_an_adapter_in_a_mode_is_named_for_it():
    torch = registry.get("torch")
    moded = registry.get("torch+inductor")
    assert (moded.name, moded.base_name, moded.mode.name, moded.ref, moded.group) == (
        "torch+inductor", "torch", "inductor", "torch+inductor", "torch+inductor")
    assert torch.mode is None and torch.name == "torch"  # the copy leaves the adapter alone
    assert registry.get("onnxruntime+all").name == "onnxruntime"  # the default mode is the adapter itself


def test_an_unknown_mode_is_one_line_naming_the_modes():
    with pytest.raises(registry.UnknownAdapter, match=r"torch has no mode 'xla'; its modes: eager, inductor"):
        registry.get("torch+xla")
    with pytest.raises(registry.UnknownAdapter, match=r"unknown mode 'jit_compile'.*inductor.*xla"):
        registry.with_modes(registry.select("torch,tf_keras"), "jit_compile")


def test_modes_selection_adds_each_adapters_modes_after_its_default():
    picked = [a.name for a in registry.with_modes(registry.select("torch,onnxruntime,keras[jax]"), "compiled")]
    assert picked == ["torch", "torch+inductor", "torch+inductor_emulate", "onnxruntime", "keras[jax]"]
    picked = [a.name for a in registry.with_modes(registry.select("tf_keras,onnxruntime"), "xla,disabled")]
    assert picked == ["tf_keras", "tf_keras+xla", "onnxruntime", "onnxruntime+disabled"]
    assert [a.name for a in registry.with_modes(registry.select("torch+inductor"), "all")] == ["torch+inductor"]
    assert len(registry.with_modes(registry.select("onnxruntime"), "all")) == 4


def test_a_mode_runs_in_its_own_process_and_not_in_the_synchronized_suite(tmp_path):
    adapters = registry.with_modes(registry.select("torch"), "inductor")
    opts = runner.Options(suites=(*runner.VERIFY_SUITES, runner.SYNC_SUITE), quick=True, threads=1, timeout_s=60)
    jobs = runner.jobs(plan(adapters), tmp_path, opts)
    assert [(j.phase, j.group.name) for j in jobs] == [("verify", "torch"), ("verify", "torch+inductor"),
                                                       ("sync", "torch")]
    assert "torch+inductor" in jobs[1].command


def test_a_mode_that_lacks_a_feature_or_a_program_is_a_skip_naming_why():
    moded = registry.get("torch+inductor")
    spec = NormSpec("layer_norm")
    assert "double backward" in moded.unsupported(spec, (4, 8), "float32", ("second_order",))
    missing = dataclasses.replace(moded.mode, executables=((("no-such-compiler-here",), "apt-get install it"),))
    moded.mode = missing
    assert moded.unsupported(spec, (4, 8), "float32") == (
        "torch+inductor: torch.compile(module, dynamic=False, fullgraph=True) (Inductor's C++/OpenMP kernels) "
        "needs no-such-compiler-here on PATH: apt-get install it")
    assert Mode("x", "y").missing() is None


def test_a_moded_record_names_its_mode_and_a_default_one_reads_as_before():
    case = Case(NormSpec("layer_norm"), (4, 8))
    plain = checks.forward(registry.get("numpy"), case, training=True)[0]
    assert "mode" not in plain.to_row() and plain.mode is None
    moded = checks.forward(registry.get("onnxruntime+disabled"), case, training=True)[0]
    row = json.loads(json.dumps(moded.to_row()))
    assert (row["adapter"], row["mode"], row["case"]) == ("onnxruntime+disabled", "disabled", case.id)
    assert row["facts"]["mode_settings"] == "SessionOptions.graph_optimization_level = ORT_DISABLE_ALL"
    assert Record.from_row(row) == moded and row["outcome"] == "pass"


def test_onnxruntime_modes_set_the_sessions_optimization_level():
    import onnxruntime as ort

    case = Case(NormSpec("layer_norm"), (4, 8))
    for name, level in (("onnxruntime", "ORT_ENABLE_ALL"), ("onnxruntime+disabled", "ORT_DISABLE_ALL")):
        layer = registry.get(name).build(case.spec, case.shape, case.dtype)
        got = layer._sessions[False].get_session_options().graph_optimization_level
        assert got == getattr(ort.GraphOptimizationLevel, level)


@pytest.mark.parametrize("name", ["torch+inductor", "keras[tensorflow]+xla", "tf_keras+xla"])
def test_a_compiled_mode_compiles_and_is_judged_by_the_oracle(name):
    """The layer's call goes through the compiler (its compiled function exists and counts the
    compile), and the result passes the oracle with the same derived tolerance as eager."""
    adapter = registry.get(name)
    case = Case(NormSpec("layer_norm"), (8, 64), input="offset1e2")
    recs = checks.forward(adapter, case, training=True) + checks.gradients(adapter, case)
    assert [r.outcome for r in recs] == ["pass"] * 4, [r.message for r in recs]
    layer = adapter.build(case.spec, case.shape, case.dtype)
    if name.startswith("torch"):
        import torch

        assert isinstance(layer._run, torch._dynamo.eval_frame.OptimizedModule)
    else:
        fn = layer._graph(lambda t: layer._call(t, True))
        fn(layer._to_native(case.data()[0]))
        assert fn.experimental_get_tracing_count() == 1
        assert "jit_compile=True" in adapter.mode.how and fn._jit_compile is True


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    out = tmp_path_factory.mktemp("modes") / "r"
    proc = run_cli("verify", "--adapters", META, "--modes", "compiled", "--suites", "agreement", "-o", str(out),
                   "--no-report", "--", "-k", "layer_norm and not rms_norm", cwd=ROOT)
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()[1:]]
    return proc, rows, out / "results.jsonl"


def test_a_bug_only_in_the_compiled_mode_is_caught_only_there(planted):
    proc, rows, _ = planted
    assert proc.returncode == 1
    by = {a: [r for r in rows if r["adapter"] == a] for a in ("meta-compiled-one-pass",
                                                              "meta-compiled-one-pass+compiled")}
    assert by["meta-compiled-one-pass"] and all(r["outcome"] in ("pass", "skip") for r in by["meta-compiled-one-pass"])
    failed = [r for r in by["meta-compiled-one-pass+compiled"] if r["outcome"] == "fail"]
    assert {r["check"] for r in failed} >= {"forward_train"}
    assert all(r["mode"] == "compiled" for r in by["meta-compiled-one-pass+compiled"])
    # where the mean is large against the spread, and not elsewhere: the bug is the cancellation
    assert any("offset1e4" in r["case"] for r in failed)
    assert not [r for r in failed if r["check"] == "forward_train" and r["input"] == "normal"
                and r["dtype"] == "float64"]
    assert "--adapters 'tests.meta_adapters:CompiledOnePass+compiled'" in failed[0]["rerun"]


def test_modes_on_the_command_line(tmp_path):
    listed = run_cli("list")
    assert "mode inductor (compiled): torch.compile(module" in listed.stdout
    assert "-> --adapters keras[tensorflow]+xla" in listed.stdout
    one_line_error(run_cli("verify", "--adapters", "torch", "--modes", "turbo", "-o", str(tmp_path / "v")),
                   "unknown mode 'turbo'", "inductor")
    one_line_error(run_cli("run", "--adapters", "numpy+fast", "-o", str(tmp_path / "r")),
                   "numpy has no mode 'fast'")
    assert not (tmp_path / "v").exists() and not (tmp_path / "r").exists()


def test_a_mode_timed_head_to_head_carries_its_ratio_to_its_default():
    """Paired with its default mode's blocks of the same rounds, like any two contenders; in heats,
    through the anchor."""
    from normbench.bench import head_to_head

    rng = np.random.default_rng(0)
    drift = 1 + rng.uniform(0, 1, (2, 12))  # the machine's speed moves both alike
    blocks = {"torch": 1e-3 * drift, "torch+inductor": 0.5e-3 * drift * (1 + 0.01 * rng.standard_normal((2, 12))),
              "other": 2e-3 * drift}
    table = head_to_head.standings(blocks)
    versus = table["torch+inductor"]["versus_default"]
    assert versus["default"] == "torch" and versus["verdict"] == "faster"
    assert versus["ratio_ci"][0] < 0.5 < versus["ratio_ci"][1] < 0.52
    assert "versus_default" not in table["torch"] and "versus_default" not in table["other"]
    relative = {name: (b / blocks["other"]).tolist() for name, b in blocks.items()}
    chained = head_to_head.chained_standings(blocks, relative, "other", relative)
    assert 0.45 < chained["torch+inductor"]["versus_default"]["ratio"] < 0.55


def _optimized_ops(layer, tmp_path) -> set[str]:
    """The node types onnxruntime runs for an exported layer, after its graph optimizations."""
    import onnx
    import onnxruntime as ort

    sess = layer._graph()
    opts = ort.SessionOptions()
    opts.graph_optimization_level = sess.get_session_options().graph_optimization_level
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    opts.log_severity_level = 3
    ort.InferenceSession(layer._model, opts, providers=["CPUExecutionProvider"])
    return {n.op_type for n in onnx.load(opts.optimized_model_filepath).graph.node}


def test_the_exported_path_runs_each_opset_at_each_level(tmp_path):
    """torch.onnx at opset 16 writes LayerNorm decomposed, which onnxruntime fuses back into one kernel at
    ORT_ENABLE_ALL and runs as written when optimizations are off; opset 17 writes the node itself. Each
    passes the oracle on the stress inputs where a one-pass fused kernel would cancel."""
    spec = NormSpec("layer_norm")
    found = {}
    for name in ("torch.onnx", "torch.onnx+opset16", "torch.onnx+opset16_disabled"):
        adapter = registry.get(name)
        found[name] = _optimized_ops(adapter.build(spec, (8, 64), "float32"), tmp_path)
        for source in ("offset1e4", "constant"):
            rec, = checks.forward(adapter, Case(spec, (8, 64), input=source), training=True)
            assert rec.outcome == "pass", rec.message
    assert found["torch.onnx"] == found["torch.onnx+opset16"] == {"LayerNormalization"}
    assert {"ReduceMean", "Sqrt", "Div"} <= found["torch.onnx+opset16_disabled"]
    assert "LayerNormalization" not in found["torch.onnx+opset16_disabled"]


def test_the_exported_path_says_what_it_cannot_export():
    case = Case(NormSpec("rms_norm"), (4, 8))
    rec, = checks.forward(registry.get("torch.onnx+opset16"), case, training=True)
    assert rec.outcome == "error" and "aten::rms_norm" in rec.message
    bn = Case(NormSpec("batch_norm"), (4, 8))
    rec, = checks.forward(registry.get("torch.onnx"), bn, training=True)
    assert rec.outcome == "skip" and "inference graph" in rec.message
    rec, = checks.forward(registry.get("torch.onnx"), bn, training=False)
    assert rec.outcome == "pass", rec.message


def test_the_report_sets_each_mode_beside_its_default(planted):
    """The Execution modes section: the compiled mode's outcomes, its passes' worst error beside the
    eager mode's, and the change of variance algorithm, measured on the stress inputs."""
    from normbench.reports import markdown, model, modes
    from normbench.reports.html import page as html
    from normbench.reports.html_elements import esc

    res = model.load(planted[2])
    table = modes.verified(res).set_index("op")
    row = table.loc["layer_norm"]
    assert (row["adapter"], row["mode"]) == ("meta-compiled-one-pass", "compiled")
    assert row["fail"] > 0 and row["variance"] == "changes: cancels on stress inputs"
    assert row["stress_worst"] > 1 > row["default_stress_worst"]
    page, md = html.render(res), markdown.render(res)
    assert 'id="modes"' in page and "changes: cancels on stress inputs" in page
    assert "### Execution modes" in md and "| meta-compiled-one-pass | compiled | layer_norm |" in md
    # what the mode ran, once (not once per op, a column that pushed the table past the page)
    ran = "numpy, one-pass statistics (the planted bug)"
    assert page.count(esc(ran)) == 1 and md.count(ran) == 1, (page.count(esc(ran)), md.count(ran))
    assert "`meta-compiled-one-pass+compiled`: " + ran in md


def test_xla_changes_tf_keras_fused_batchnorm_to_one_pass_variance():
    """A divergence only a compiled mode has: XLA's BatchNormExpander under tf_keras's fused 4-D BatchNorm
    cancels at offset 1e2 and is NaN at 1e4, where eager TF passes; each record is the known entry."""
    eager, xla = registry.get("tf_keras"), registry.get("tf_keras+xla")
    for source in ("offset1e2", "offset1e4"):
        case = Case(NormSpec("batch_norm", layout="channels_last"), (4, 5, 6, 8), input=source)
        rec, = checks.forward(eager, case, training=True)
        assert rec.outcome == "pass", rec.message
        rec, = checks.forward(xla, case, training=True)
        assert rec.outcome == "fail" and rec.max_abs_err / rec.tolerance > 2
        entry, within, why = known.explain(dataclasses.asdict(rec))
        assert entry.key == "tf-xla-fused-batchnorm-one-pass" and within, why


def test_the_default_run_adds_the_compiled_modes_on_the_short_matrix(tmp_path):
    """`normbench run` without --modes verifies each compiled mode on the short matrix (each op's stress
    configuration, float32 and bfloat16), which still catches the planted compiled-only bug; --modes runs
    the mode on the full matrix, --quick adds none."""
    from normbench.cli import run as run_cli_module
    from normbench.verify.cases import agreement_cases, in_short_matrix

    chosen = registry.select("torch,onnxruntime,tf_keras")
    adapters, short = run_cli_module.with_modes(chosen, None, quick=False)
    assert [a.name for a in adapters] == ["torch", "torch+inductor", "onnxruntime", "tf_keras", "tf_keras+xla"]
    assert short == ("torch+inductor", "tf_keras+xla")  # not Inductor's emulation variant (Mode.in_run)
    assert run_cli_module.with_modes(chosen, "compiled", quick=False)[1] == ()
    assert [a.name for a in run_cli_module.with_modes(chosen, None, quick=True)[0]] == ["torch", "onnxruntime",
                                                                                        "tf_keras"]
    jobs = runner.jobs(plan(adapters), tmp_path, runner.Options(short=short))
    by = {j.group.name: j.command for j in jobs if j.phase == "verify"}
    assert by["torch+inductor"][-2:] == ["--matrix", "short"] and "--matrix" not in by["torch"]
    bench = next(j.command for j in jobs if j.phase == "bench")
    assert bench[bench.index("--adapters") + 1] == "torch,onnxruntime,tf_keras"  # verified, not timed

    cases = [c for c in agreement_cases() if in_short_matrix(c)]
    assert {c.spec.op for c in cases} == set(ops.names())
    assert {c.dtype for c in cases} == {"float32", "bfloat16"}
    assert {c.input for c in cases} >= {"normal", "offset1e2", "offset1e4", "tiny_variance", "constant", "large"}

    out = tmp_path / "run"
    proc = run_cli("run", "--adapters", META, "--suites", "agreement,train_eval", "-o", str(out), cwd=ROOT)
    assert proc.returncode == 1, proc.stderr[-2000:]
    rows = [json.loads(line) for f in sorted(out.glob("verify/*/results.jsonl"))
            for line in f.read_text().splitlines()[1:]]
    compiled = [r for r in rows if r["adapter"] == "meta-compiled-one-pass+compiled"]
    eager = [r for r in rows if r["adapter"] == "meta-compiled-one-pass"]
    assert len(eager) > 2 * len(compiled) > 0
    assert {r["dtype"] for r in compiled} == {"float32", "bfloat16"}
    assert all(r["outcome"] in ("pass", "skip") for r in eager)
    assert {r["case"].split("-")[0] for r in compiled if r["outcome"] == "fail"} >= {"layer_norm", "batch_norm"}
    assert json.loads((out / "run.json").read_text())["short_matrix"] == ["meta-compiled-one-pass+compiled"]


def test_compiling_pays_back_only_where_the_mode_is_faster():
    """A tied mode's medians differ by noise: their difference made a tied Inductor row (1.04× [0.34–1.21])
    say "compiling pays back after 573,319 calls". Only a faster mode pays back; a slower one never does."""
    def timed(adapter, mode, case, median, first, versus=None):
        h2h = {"ratio": 1.0, "ratio_ci": [0.9, 1.1], "verdict": "tied"}
        return {"adapter": adapter if mode is None else f"{adapter}+{mode}", "mode": mode, "op": "layer_norm",
                "suite": "speed", "outcome": "pass", "input": "normal", "facts": {}, "framework_version": "2.13",
                "case": case, "check": "forward", "median_s": median, "first_call_s": first,
                "head_to_head": {**h2h, **({"versus_default": versus} if versus else {})}}

    rows = []
    for case, verdict, median in (("a", "faster", 1e-3), ("b", "tied", 0.99e-3), ("c", "slower", 1.5e-3)):
        versus = {"default": "torch", "ratio": median / 1e-3 * 0.5, "ratio_ci": [0.4, 0.6], "verdict": verdict}
        rows += [timed("torch", None, case, 2e-3 if verdict == "faster" else 1e-3, 0.01),
                 timed("torch", "inductor", case, median, 1.01, versus)]
    speed = modes.speed(Results(pd.DataFrame(rows), pd.DataFrame()))
    by_case = {r["case"]: r for _, r in speed.iterrows()}
    assert by_case["a"]["pays_back_after"] == pytest.approx(1.0 / 1e-3)  # 1 s more to compile, 1 ms saved a call
    assert by_case["b"]["pays_back_after"] != by_case["b"]["pays_back_after"]  # NaN: tied
    shown = {case: modes._calls(r) for case, r in by_case.items()}
    assert shown == {"a": "1,000 calls", "b": "unknown: tied", "c": "never"}
    # a process's first compile carries the compiler's set-up (Inductor: 10.7 s, then 1.05 s for the next shape)
    res = Results(pd.DataFrame(rows), pd.DataFrame())
    assert "compiler's one-time set-up" in html.unescape(modes.html(res))
    assert modes.FIRST_CALL_NOTE in "\n".join(modes.markdown(res))
