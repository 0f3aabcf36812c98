"""Coverage that never shrinks in silence: every stress input and metamorphic case in every layout an op
allows; check-adapter says what an adapter will exercise before it runs; the scaffold runs from its
first minute; a run that skips more than it runs says so."""

from __future__ import annotations

import textwrap
from collections import Counter

from normbench import ops
from normbench.results import records

from .helpers import one_line_error, run_cli

STRESSED = "offset1e2 or offset1e4 or tiny_variance or constant or large or quantized"


def test_an_adapter_of_either_layout_gets_every_stress_and_metamorphic_case(tmp_path):
    """BatchNorm's stress inputs and every channel op's metamorphic case existed in channels_last alone:
    a channels_first-only adapter skipped 84 BatchNorm stress records in silence and hid 5 real failures."""
    (tmp_path / "one_layout.py").write_text(textwrap.dedent("""
        from normbench.adapters.numpy.layers import NumpyAdapter

        class FirstOnly(NumpyAdapter):
            name = "first-only"
            layouts = frozenset({"channels_first"})

        class LastOnly(NumpyAdapter):
            name = "last-only"
            layouts = frozenset({"channels_last"})
    """))
    out = tmp_path / "r"
    proc = run_cli("verify", "--adapters", "one_layout:FirstOnly,one_layout:LastOnly", "-o", str(out), "--no-report",
                   "--suites", "agreement", "--", "-k", STRESSED, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [r for r in records.read(out / "results.jsonl")[1] if r["outcome"] != "skip" and len(r["shape"]) > 2]
    ran = Counter((r["adapter"], r["op"], r["input"]) for r in rows)
    for op in ("batch_norm", "group_norm", "instance_norm"):
        for source in ("offset1e2", "offset1e4", "tiny_variance", "constant", "large", "quantized"):
            first, last = ran[("first-only", op, source)], ran[("last-only", op, source)]
            assert first == last > 0, (op, source, first, last)
    images = {tuple(r["shape"]) for r in rows if r["op"] == "batch_norm" and len(r["shape"]) == 4}
    assert images == {(2, 3, 5, 7), (2, 5, 7, 3)}  # 4-D BatchNorm under stress, where fused kernels run


def test_new_adapter_writes_a_file_that_verifies_as_not_built_yet(tmp_path):
    """The scaffold runs from its first minute: every op a skip saying "not built yet", and the run's
    summary says it skipped more than it ran; check-adapter says the same before anything runs."""
    made = run_cli("new-adapter", "my-norm", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "my_norm.py").exists() and "normbench check-adapter my_norm:MyNormAdapter" in made.stdout
    again = run_cli("new-adapter", "my-norm", cwd=tmp_path)
    one_line_error(again, "my_norm.py already exists; not overwriting it")
    one_line_error(run_cli("new-adapter", "flax.linen", cwd=tmp_path), "'flax.linen' is the name of")
    one_line_error(run_cli("new-adapter", "2fast", cwd=tmp_path), "makes no Python module name")
    checked = run_cli("check-adapter", "my_norm:MyNormAdapter", cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.count("skips every case") == 5 and "not built yet" in checked.stdout
    out = tmp_path / "r"
    proc = run_cli("verify", "--adapters", "my_norm:MyNormAdapter", "-o", str(out), "--no-report", "--", "-k",
                   "test_forward_train", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = records.read(out / "results.jsonl")[1]
    assert rows and {r["outcome"] for r in rows} == {"skip"}
    assert {r["op"] for r in rows if "not built yet" in r["message"]} == set(ops.names())
    assert "my-norm: " in proc.stdout and "are skips, more than ran; `normbench check-adapter my_norm:MyNormAdapter`" \
        in proc.stdout


def test_check_adapter_says_what_runs_and_what_cannot_before_running_anything():
    proc = run_cli("check-adapter", "examples.my_rmsnorm:MyRMSNormAdapter,torch.onnx")
    assert proc.returncode == 0, proc.stderr
    mine, exported = proc.stdout.split("\n\nadapter ")
    assert "rms_norm       MyRMSNorm: a float32 layer built" in mine
    assert "layer_norm     skip: my-rmsnorm does not build layer_norm (it builds rms_norm)" in mine
    assert "jvp           skipped (forward-mode derivatives): not in `features`" in mine
    assert "MyRMSNorm does not define timed(): verified, not benchmarked" in mine
    assert "agreement suite: 21 of" in mine and "more skip than run" in mine
    assert "modes: opset17 (default); opset17_disabled -> --adapters torch.onnx+opset17_disabled" in exported
    one_line_error(run_cli("check-adapter", "nosuch"), "unknown adapter 'nosuch'")


def test_a_declared_feature_without_its_method_is_said(tmp_path):
    (tmp_path / "gappy.py").write_text(textwrap.dedent("""
        from normbench import Layer
        from normbench.adapters.numpy.layers import NumpyAdapter, NumpyLayer

        class NoJvp(NumpyLayer):
            jvp = Layer.jvp  # the contract's own: raises Unsupported

        class Gappy(NumpyAdapter):
            name = "gappy"
            builders = {"layer_norm": NoJvp}
            features = NumpyAdapter.features | {"jvp"}
    """))
    proc = run_cli("check-adapter", "gappy:Gappy", cwd=tmp_path)
    assert "layer_norm: features declares 'jvp' but NoJvp does not define jvp(): every jvp check will skip" \
        in proc.stdout, proc.stdout
    one_line_error(run_cli("check-adapter", "gappy:Nope", cwd=tmp_path), "cannot load adapter 'gappy:Nope'")


def test_the_report_counts_each_adapters_skips_by_reason(numpy_results):
    from normbench.reports import coverage, markdown, model
    from normbench.reports.html import page as html

    res = model.load(numpy_results)
    row = coverage.by_adapter(res).set_index("adapter").loc["numpy"]
    reasons = dict(row["reasons"])
    assert row["ran"] > 10 * row["skipped"] > 0
    assert sum(reasons.values()) == row["skipped"]
    assert reasons["numpy has no mixed-precision path for batch_norm on float16 inputs"] > 0
    page, md = html.render(res), markdown.render(res)
    assert 'id="coverage"' in page and "numpy has no mixed-precision path for batch_norm on float16 inputs" in page
    assert "### Coverage" in md and "| numpy |" in md.split("### Coverage")[1]


def test_an_overflowed_running_variance_is_said_to_overflow():
    """It was reported as "stores neither running variance, but … declares biased", which sends the reader
    to the convention instead of the overflow."""
    import numpy as np

    from normbench.adapters.numpy.layers import NumpyAdapter, NumpyLayer
    from normbench.ops.case import Case
    from normbench.ops.spec import NormSpec
    from normbench.verify import checks

    class Overflowing(NumpyLayer):
        def forward(self, x, training, mask=None):
            y = super().forward(x, training, mask)
            if training:
                self.running_var = np.full_like(self.running_var, np.inf)
            return y

    class Adapter(NumpyAdapter):
        name = "overflowing"
        builders = {"batch_norm": Overflowing}
        running_var = "biased"

    rec, = [r for r in checks.running_stats(Adapter(), Case(NormSpec("batch_norm"), (8, 16)))
            if r.check == "running_var"]
    assert rec.outcome == "fail" and rec.facts["running_var_nonfinite"] == 16
    assert rec.message.startswith("stores a non-finite running variance (16 of 16 values inf or NaN")
    assert "neither" not in rec.message and "declares" not in rec.message
