"""The README's adapters run as the README says: the numpy RMSNorm kernel, the hand-written JAX kernels
(every op, both layouts, gradients, JVP, second order) and ONNX's reference evaluator, which declares
ONNX semantics and so meets the ONNX specs' known divergences within their envelopes."""

from __future__ import annotations

import textwrap
from collections import Counter

from normbench.results import records

from .helpers import ROOT, run_cli


def _verify(tmp_path, adapters: str, *k: str, cwd=ROOT) -> tuple[object, list[dict]]:
    out = tmp_path / "r"
    proc = run_cli("verify", "--adapters", adapters, "-o", str(out), "--no-report", *(["--", "-k", *k] if k else []),
                   cwd=cwd, timeout=900, env={"PYTHONPATH": str(ROOT)})
    return proc, records.read(out / "results.jsonl")[1]


def test_the_numpy_rmsnorm_example_passes_every_suite(tmp_path):
    proc, rows = _verify(tmp_path, "examples.my_rmsnorm:MyRMSNormAdapter")
    assert proc.returncode == 0, proc.stdout[-3000:]
    outcomes = Counter(r["outcome"] for r in rows if r["op"] == "rms_norm")
    assert outcomes["pass"] > 20 and not outcomes["fail"] and not outcomes["error"]


def test_the_jax_kernels_example_passes_with_every_derivative(tmp_path):
    proc, rows = _verify(tmp_path, "examples.jax_kernels:JaxKernels",
                         "float32 and normal and not masked and not mixed and (test_forward_train or test_gradients "
                         "or test_jvp or test_second_order or test_forward_eval)")
    assert proc.returncode == 0, proc.stdout[-3000:]
    ran = {(r["op"], r["check"], r["layout"]) for r in rows if r["outcome"] == "pass"}
    assert {op for op, _, _ in ran} == {"layer_norm", "rms_norm", "batch_norm", "group_norm", "instance_norm"}
    assert {"jvp", "second_order_dx", "grad_dx", "forward_eval"} <= {check for _, check, _ in ran}
    assert {"channels_first", "channels_last"} <= {layout for _, _, layout in ran}


def test_an_adapter_that_declares_onnx_semantics_meets_the_specs_known_divergences(tmp_path):
    """ONNX's reference evaluator: its float64 BatchNorm and its GroupNormalization-21 function body are the
    spec's divergences, known within their envelopes; without the declaration they are its failures."""
    (tmp_path / "undeclared.py").write_text(textwrap.dedent("""
        from examples.onnx_reference import OnnxReference

        class Undeclared(OnnxReference):
            name = "onnx-reference-undeclared"
            semantics = ()
    """))
    k = "float64 and (batch_norm or group_norm) and (offset1e4 or quantized or normal)"
    proc, rows = _verify(tmp_path, "examples.onnx_reference:OnnxReference,undeclared:Undeclared", k,
                         cwd=tmp_path)
    declared = [r for r in rows if r["adapter"] == "onnx-reference"]
    undeclared = [r for r in rows if r["adapter"] == "onnx-reference-undeclared"]
    known = Counter(r["facts"]["known"] for r in declared if r["outcome"] == "known")
    assert known["onnx-float32-attributes"] > 0 and known["onnx-group-norm-function"] > 0, known
    assert all(r["semantics"] == ["onnx"] for r in declared) and not any("semantics" in r for r in undeclared)
    assert not [r for r in declared if r["outcome"] == "fail"]
    assert {r["case"] for r in undeclared if r["outcome"] == "fail"} == {
        r["case"] for r in declared if r["outcome"] == "known"}
    assert proc.returncode == 1  # the undeclared twin's failures
