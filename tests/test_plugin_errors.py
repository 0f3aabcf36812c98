"""The plugin's own failures: a record must reach the results file even when normbench errs."""

from __future__ import annotations

import json

from .helpers import run_python

CRASHING_CLASSIFY = """
import sys
import pytest
from normbench.verify import known

def explain(row):
    raise RuntimeError("planted: the known-divergence lookup broke")

known.explain = explain
sys.exit(pytest.main(["-p", "no:cacheprovider", "--pyargs", "normbench.suites.test_agreement",
                      "--adapters", "tests.meta_adapters:GradMissingTerm",
                      "-k", "test_gradients and layer_norm-8x16-float32-normal]",
                      "--results", sys.argv[1], "-q"]))
"""


def test_a_record_whose_classification_raises_is_an_error_record_not_lost(tmp_path):
    results = tmp_path / "results.jsonl"
    proc = run_python(CRASHING_CLASSIFY, args=[str(results)], env={"TMPDIR": str(tmp_path)})
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    grad = [r for r in rows if r.get("type") == "check" and r["check"] == "grad_dx"]
    assert len(grad) == 1, rows
    assert grad[0]["outcome"] == "error"
    assert "could not match this record against its known divergences" in grad[0]["message"]
    assert "planted: the known-divergence lookup broke" in grad[0]["message"]
    assert "RuntimeError" in grad[0]["facts"]["traceback"]
