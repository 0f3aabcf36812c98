"""Keras on its other backends, and legacy tf_keras, through the full verification suites.

Keras reads KERAS_BACKEND once per process, so the Keras adapters this test process cannot
host (keras[jax] and keras[torch] under the default backend) run the suites in a fresh pytest
process with the adapter's ``environment``, as `normbench run` starts them; tf_keras runs there
too, so its whole matrix is covered here as well as in-process by test_adapters.py. Each run
must pass (known divergences are xfails), and the facts the suites measure are checked.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter

import pytest

from normbench.adapters import registry
from normbench.results import records

from .conftest import OTHER_PROCESS, require_installed

ADAPTERS = [name for name in registry.BUILTIN if name in OTHER_PROCESS or name == "tf_keras"]

# The known divergences each adapter's suite run reproduces (checked as a set: a new one, or one
# that no longer applies, is a change worth a look).
KNOWN = {
    "keras[tensorflow]": {"keras-mask-last-axis", "keras-masked-moments-epsilon",
                          "tf-moments-stop-gradient-second-order"},
    "keras[jax]": {"keras-mask-last-axis", "keras-float64-as-float32"},
    "keras[torch]": {"keras-mask-last-axis", "keras-float64-as-float32", "keras-torch-fast-variance"},
    "tf_keras": {"tf-keras-fused-ignores-mask", "tf-keras-mask-last-axis", "tf-keras-float32-decay",
                 "tf-keras-half-precision", "tf-moments-stop-gradient-second-order"},
}


@pytest.fixture(scope="module", params=ADAPTERS)
def suite_run(request, tmp_path_factory):
    """The verification suites on one adapter in a process of its own: (adapter, process, records)."""
    adapter = registry.get(request.param)
    require_installed(adapter)
    results = tmp_path_factory.mktemp("suites") / "results.jsonl"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST", "PYTEST_ADDOPTS"))}
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "--pyargs", "normbench.suites", "--adapters", adapter.name,
         "--results", str(results), "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"],
        cwd=results.parent, capture_output=True, text=True, timeout=600, env={**env, **adapter.environment},
    )
    rows = records.read(results)[1] if results.exists() else []
    return adapter, proc, rows


def test_suites_pass_with_only_known_divergences(suite_run):
    adapter, proc, rows = suite_run
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    outcomes = Counter(r["outcome"] for r in rows)
    assert outcomes["pass"] > 300 and not outcomes["fail"] and not outcomes["error"], outcomes
    assert {r["adapter"] for r in rows} == {adapter.name}
    known = {r["facts"]["known"] for r in rows if r["outcome"] == "known"}
    assert known == KNOWN[adapter.name]


def test_measured_conventions(suite_run):
    """Keras's own conventions, measured: momentum 0.99 as the weight of the old value (normbench
    hands it 1 − m, so the update follows the canonical one), eps 1e-3, biased running variance
    except where tf_keras takes its fused kernel (4-D float32), and β for a batch of one."""
    adapter, _, rows = suite_run
    by_check = {}
    for r in rows:
        by_check.setdefault(r["check"], []).append(r)
    bn_defaults = next(r for r in by_check["defaults"] if r["op"] == "batch_norm")["facts"]
    assert bn_defaults["default_momentum"] == pytest.approx(0.99) and bn_defaults["default_eps"] == 1e-3
    assert bn_defaults["momentum_convention"] == "old"
    for r in by_check["running_mean_steps"]:
        if r["params"].get("precision") == "mixed":  # float32 statistics from half inputs: judged, not a convention
            continue
        if r["op"] == "instance_norm":  # Keras keeps no InstanceNorm running statistics
            assert r["outcome"] == "skip"
            continue
        assert r["outcome"] == "pass"
        assert r["facts"]["momentum_applied_as"] == "weight of the new value"
        assert r["facts"]["running_var"] == ["biased"]  # train_eval's cases are 2-D and 3-D
    stored = {(len(r["shape"]), r["layout"]): r["facts"]["running_var"] for r in by_check["running_var"]
              if r["suite"] == "agreement" and r["op"] == "batch_norm" and r["dtype"] == "float32"
              and r["input"] == "normal"
              and not r["params"]["masked"] and r["params"]["eps"] == 1e-5}
    assert set(stored) == {(2, None), (3, "channels_first"), (3, "channels_last"), (4, "channels_first"),
                           (4, "channels_last")}
    for (ndim, _), var in stored.items():
        assert var == (["unbiased"] if adapter.name == "tf_keras" and ndim == 4 else ["biased"]), stored
    (one,) = by_check["train_one_value_per_channel"]
    assert one["facts"]["behaviour"] == "returns beta"
