"""`normbench repro`: each record written as a script that needs only numpy and the framework, and that still says
what the record said once normbench is out of reach.

The records are real: each check runs on its real adapter (one process per Keras backend) and is classified against
the known divergences, as a run does. Every known divergence outside the synchronized suite has one record here, and
its script, run where `import normbench` fails, must exit 1; passing records of every framework (and the compiled
modes) must exit 0.
"""

from __future__ import annotations

import ast
import concurrent.futures
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from normbench import repro
from normbench.adapters import registry
from normbench.verify import known

from .conftest import require_installed
from .helpers import ROOT, blocking, one_line_error, run_cli, run_python

# Entries of the synchronized suite: their records need the framework's data-parallel engine (refused, tested below).
SYNCHRONIZED = ("flax-sync-unweighted-mean", "keras-sync-one-pass-moments", "keras-sync-mask-local")
# One record each known divergence covers: (adapter, check, case id; "-mixed" ends a mixed-precision case's id).
KNOWN_RECORDS = {
    "torch-group-norm-channels-last-one-pass": ("torch", "forward_train",
                                                "group_norm-2x5x7x8-float32-offset1e4-channels_last-groups4"),
    "torch-half-rstd-overflow": ("torch", "grad_dx",
                                 "group_norm-1x1x1x2-float16-offset1e4-channels_first-groups1-eps1e-10"),
    "torch-instance-norm-channels-last-batch-one": ("torch", "grad_dx",
                                                    "instance_norm-1x5x7x3-float32-normal-channels_last"),
    "torch-group-norm-jvp-channels-last": ("torch+inductor", "jvp",
                                           "group_norm-2x5x7x8-float32-normal-channels_last-groups4"),
    "torch-half-batchnorm-overflow": ("torch", "forward_train", "batch_norm-4x6x10-float16-large-channels_last"),
    "torch-welford-short-groups": ("torch", "grad_dx",
                                   "group_norm-64x4x1-float32-shifted:5e+06:1-channels_first-groups2"),
    "torch-uncentred-backward": ("torch", "grad_dx", "layer_norm-512x1x2-float32-shifted:2000:1e-05-eps1e-11"),
    "onnxruntime-layer-norm-welford-short-rows": ("onnxruntime", "forward_train",
                                                  "layer_norm-508x1x1x2-float32-shifted:5e+06:1"),
    "torch-onnx-no-rms-norm": ("torch.onnx", "forward_train", "rms_norm-8x16-float32-normal"),
    "torch-onnx-instance-norm-running-dynamic-batch": ("torch.onnx", "forward_eval",
                                                       "instance_norm-4x6x10-float32-normal-channels_first-running"),
    "flax-fast-variance": ("flax.linen", "forward_train", "layer_norm-8x16-float32-offset1e4"),
    "flax-linen-mixed-dx-double-upcast": ("flax.linen", "grad_dx", "layer_norm-8x16-bfloat16-normal-mixed"),
    "flax-nnx-float32-batch-stats": ("flax.nnx", "running_mean", "batch_norm-8x16-float64-normal"),
    "keras-mask-last-axis": ("keras[tensorflow]", "forward_train",
                             "batch_norm-4x10x6-float32-normal-channels_first-masked"),
    "keras-masked-single-channel": ("keras[tensorflow]", "forward_train", "batch_norm-2x1-float32-normal-masked"),
    "keras-masked-moments-epsilon": ("keras[tensorflow]", "forward_train",
                                     "batch_norm-4x6x10-float64-normal-channels_last-masked"),
    "keras-torch-fast-variance": ("keras[torch]", "forward_train", "batch_norm-4x6x10-float32-offset1e4-channels_last"),
    "keras-float64-as-float32": ("keras[jax]", "forward_train", "layer_norm-8x16-float64-normal"),
    "tf-moments-stop-gradient-second-order": ("keras[tensorflow]+xla", "second_order_dx",
                                              "layer_norm-8x16-float32-normal"),
    "tf-xla-fused-batchnorm-one-pass": ("tf_keras+xla", "forward_train",
                                        "batch_norm-2x3x5x7-float32-offset1e4-channels_first"),
    "tf-xla-rsqrt-grad-half-nan": ("tf_keras+xla", "grad_dx", "layer_norm-8x16-float16-constant"),
    "tf-keras-fused-ignores-mask": ("tf_keras", "forward_train",
                                    "batch_norm-2x3x5x7-float32-normal-channels_last-masked"),
    "tf-keras-mask-last-axis": ("tf_keras", "forward_train", "batch_norm-4x10x6-float32-normal-channels_first-masked"),
    "tf-keras-float32-decay": ("tf_keras", "running_mean", "batch_norm-8x16-float64-normal"),
    "tf-keras-half-precision": ("tf_keras", "forward_train", "layer_norm-8x16-float16-offset1e4"),
    "onnx-group-norm-function": ("onnxruntime", "forward_train",
                                 "group_norm-4x6x10-float32-offset1e4-channels_first-groups3"),
    "onnx-float32-attributes": ("onnxruntime", "running_mean", "batch_norm-8x16-float64-normal"),
}
# Records that pass: each framework family, the compiled modes, and checks besides the oracle's (steps, a relation).
PASSING = {
    "torch-pieces": ("torch", "sample_independence", "group_norm-4x6x10-float32-normal-channels_first-groups3"),
    "torch-inductor": ("torch+inductor", "forward_train", "layer_norm-4x6x10-float32-normal"),
    "torch-onnx": ("torch.onnx", "forward_train", "layer_norm-4x6x10-float32-normal-last2"),
    "linen-steps": ("flax.linen", "running_var_steps", "batch_norm-8x16-float32-normal"),
    "nnx-jvp": ("flax.nnx", "jvp", "group_norm-4x6x10-float32-normal-channels_first-groups3"),
    "tf-keras-xla": ("tf_keras+xla", "grad_dgamma", "batch_norm-4x6x10-float32-normal-channels_last"),
    "keras-jax": ("keras[jax]", "second_order_dx", "layer_norm-8x16-float32-normal"),
    "onnxruntime-mixed": ("onnxruntime", "forward_eval", "batch_norm-4x6x10-float16-normal-channels_last-mixed"),
}
ALLOWED = {"base64", "sys", "os", "io", "warnings", "functools", "numpy", "ml_dtypes", "torch", "jax", "flax", "keras",
           "tensorflow", "tf_keras", "onnx", "onnxruntime"}


def _case(case_id: str):
    """The case an id names; a trailing ``-mixed`` is the mixed-precision path (which the search's parser lacks)."""
    from normbench.ops.case import Case
    from normbench.search.case_ids import parse

    mixed = case_id.endswith("-mixed")
    case = parse(case_id.removesuffix("-mixed"))
    if mixed:
        case = Case(dataclasses.replace(case.spec, precision="mixed"), case.shape, case.dtype, case.input)
    assert case.id == case_id
    return case


def records(wanted: dict[str, tuple[str, str, str]]) -> dict[str, dict]:
    """Run each (adapter, check, case) for real and classify it as a run does: key -> the record's row.
    Runs in a process of the adapters' environment (see ``_made``)."""
    from normbench import plugin
    from normbench.verify import behaviour, checks, metamorphic

    def run(adapter, check, case):
        if check in ("forward_train", "forward_eval"):
            return checks.forward(adapter, case, training=check == "forward_train")
        if check.startswith("grad_"):
            return checks.gradients(adapter, case)
        if check in ("running_mean", "running_var"):
            return checks.running_stats(adapter, case)
        if check == "jvp":
            return checks.jvp(adapter, case)
        if check.startswith("second_order"):
            return checks.second_order(adapter, case)
        if check == "sample_independence":
            return metamorphic.sample_independence(adapter, case)
        return behaviour.train_steps(adapter, case)

    out = {}
    for key, (name, check, case_id) in wanted.items():
        for rec in run(registry.get(name), check, _case(case_id)):
            plugin.classify(rec)
            if rec.check == check:
                out[key] = rec.to_row()
    return out


def _groups(wanted: dict[str, tuple[str, str, str]]) -> list[dict[str, tuple[str, str, str]]]:
    """The wanted records by the environment their adapters need (Keras reads its backend once per process),
    the largest group first."""
    groups: dict[tuple, dict] = {}
    for key, spec in wanted.items():
        adapter = registry.get(spec[0])
        require_installed(adapter)
        groups.setdefault(tuple(sorted(adapter.environment.items())), {})[key] = spec
    return sorted(groups.values(), key=len, reverse=True)


def _made(group: dict[str, tuple[str, str, str]]) -> dict[str, dict]:
    """``records`` of one group, in a process of the group's environment."""
    environment = registry.get(next(iter(group.values()))[0]).environment
    code = "import json, sys; from tests.test_repro import records; print(json.dumps(records(json.loads(sys.argv[1]))))"
    proc = run_python(code, env=dict(environment), timeout=600, args=[json.dumps(group)])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_script(path: Path) -> subprocess.CompletedProcess:
    """The script run as a user runs it, except that `import normbench` fails (the venv has normbench installed)."""
    code = blocking("normbench") + f"import runpy; runpy.run_path({str(path)!r}, run_name='__main__')"
    env = {k: v for k, v in os.environ.items() if k not in ("KERAS_BACKEND", "PYTHONPATH")}
    return subprocess.run([sys.executable, "-I", "-c", code], cwd=path.parent, capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture(scope="module")
def ran(tmp_path_factory):
    """Every record above, its script (``repro.script_for``) and how the script ran: key -> (row, path, process).
    Three processes at a time: each group's scripts start as soon as its records are made."""
    folder = tmp_path_factory.mktemp("repro")
    runs = {}
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        groups = [pool.submit(_made, group) for group in _groups({**KNOWN_RECORDS, **PASSING})]
        for done in concurrent.futures.as_completed(groups):
            for key, row in done.result().items():
                path = folder / f"{len(runs):02d}_{repro.default_name(row)}"
                path.write_text(repro.script_for(row), encoding="utf-8")
                runs[key] = (row, path, pool.submit(run_script, path))
        return {key: (row, path, proc.result()) for key, (row, path, proc) in runs.items()}


def _said(proc: subprocess.CompletedProcess) -> str:
    return f"exit {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


def test_every_known_divergence_but_the_synchronized_has_a_record_here():
    keys = {k.key for k in known.KNOWN}
    assert set(SYNCHRONIZED) <= keys
    assert set(KNOWN_RECORDS) == keys - set(SYNCHRONIZED), "give each new known divergence a record in KNOWN_RECORDS"


@pytest.mark.parametrize("key", sorted(KNOWN_RECORDS))
def test_a_known_divergence_reproduces_without_normbench(ran, key):
    row, path, proc = ran[key]
    assert row["outcome"] == "known" and row["facts"]["known"] == key, row["message"]
    assert proc.returncode == 1, _said(proc)
    assert "DIVERGES" in proc.stdout or "as recorded" in proc.stdout, _said(proc)
    text = path.read_text(encoding="utf-8")
    assert f"Known divergence {key}" in text and row["facts"]["link"] in text
    assert f"TOLERANCE = {row['tolerance']!r}" in text or row["tolerance"] is None


@pytest.mark.parametrize("key", sorted(PASSING))
def test_a_passing_record_passes_without_normbench(ran, key):
    row, _, proc = ran[key]
    assert row["outcome"] == "pass", row["message"]
    assert proc.returncode == 0, _said(proc)
    assert "agrees within the tolerance" in proc.stdout, _said(proc)


def test_a_script_imports_numpy_and_the_framework_alone(ran):
    for row, path, _ in ran.values():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        names |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        assert names <= ALLOWED, (path.name, names - ALLOWED)
        assert "numpy" in names and ast.get_docstring(tree).startswith("Reproduces a normbench record")
        assert row["case"] in ast.get_docstring(tree) and row["framework_version"] in ast.get_docstring(tree)


def test_writing_a_script_imports_no_framework():
    frameworks = sorted(ALLOWED - {"base64", "sys", "os", "io", "warnings", "functools", "numpy", "ml_dtypes"})
    code = ("import json, sys; from normbench import repro; from normbench.adapters.repro import writers; "
            f"print(json.dumps([sorted(writers()), sorted(m for m in sys.modules if m in {frameworks!r})]))")
    proc = run_python(code)
    assert proc.returncode == 0, proc.stderr
    adapters, imported = json.loads(proc.stdout)
    assert set(adapters) == set(registry.BUILTIN) - {"numpy"} and imported == []


@pytest.fixture
def results(ran, tmp_path):
    """A results file of the records above (environment first), and each key's line number in it."""
    path = tmp_path / "results.jsonl"
    keys = sorted(ran)
    lines = [json.dumps({"type": "environment", "format": "normbench-results/1"})]
    lines += [json.dumps(ran[k][0]) for k in keys]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, {k: i + 2 for i, k in enumerate(keys)}


def test_the_command_writes_a_line_of_a_results_file_and_never_overwrites(results, tmp_path):
    path, line = results
    key = "flax-fast-variance"
    proc = run_cli("repro", f"{path}:{line[key]}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    out = tmp_path / repro.default_name(json.loads(path.read_text().splitlines()[line[key] - 1]))
    assert out.read_text(encoding="utf-8") == repro.build(run_row(path, line[key]), out.name)
    assert run_script(out).returncode == 1
    again = run_cli("repro", f"{path}:{line[key]}", cwd=tmp_path)
    one_line_error(again, str(out.name), "already exists")
    chosen = run_cli("repro", str(path), "--case", KNOWN_RECORDS[key][2], "--check", "forward_train", "--adapter",
                     "flax.linen", "-o", str(tmp_path / "chosen.py"))
    assert chosen.returncode == 0, chosen.stderr
    assert (tmp_path / "chosen.py").read_text() == repro.build(run_row(path, line[key]), "chosen.py")


def run_row(path: Path, number: int) -> dict:
    return json.loads(path.read_text(encoding="utf-8").splitlines()[number - 1])


def test_bad_input_is_one_line_naming_the_file_and_line(results, tmp_path):
    path, line = results
    n = len(path.read_text().splitlines())
    one_line_error(run_cli("repro", f"{path}:{n + 5}", cwd=tmp_path), f"{path}:{n + 5}: no such line")
    one_line_error(run_cli("repro", f"{path}:1", cwd=tmp_path), f"{path}:1: the environment record, not a check")
    corrupt = tmp_path / "corrupt.jsonl"
    corrupt.write_text(path.read_text().splitlines()[0] + '\n{"type": "check", "suite": \n', encoding="utf-8")
    one_line_error(run_cli("repro", f"{corrupt}:2", cwd=tmp_path), f"{corrupt}:2: not a JSON object")
    one_line_error(run_cli("repro", str(corrupt), "--case", "x", "--check", "forward_train", cwd=tmp_path),
                   f"{corrupt}:2: not a JSON object")
    one_line_error(run_cli("repro", str(path), cwd=tmp_path), str(path), "PATH:LINE")
    one_line_error(run_cli("repro", f"{tmp_path / 'missing.jsonl'}:3", cwd=tmp_path), "missing.jsonl: no such file")
    assert not list(tmp_path.glob("repro_*.py"))


def test_a_record_without_a_standalone_reproducer_is_refused_with_its_rerun(results, tmp_path):
    path, line = results
    row = run_row(path, line["torch-pieces"])
    rerun = "normbench verify --adapters torch -- -k sync"
    synced = {**row, "suite": "synchronized", "params": {**row["params"], "replicas": [2, 2]}, "rerun": rerun}
    third = {**row, "adapter": "my_norms:Fused", "rerun": rerun}
    for bad, why in ((synced, "data-parallel engine"), (third, "not a built-in adapter")):
        assert repro.script_for(bad) is None and why in repro.refusal(bad)
        proc = subprocess.run([str(Path(sys.executable).with_name("normbench")), "repro", "-"], input=json.dumps(bad),
                              cwd=tmp_path, capture_output=True, text=True, timeout=120)
        one_line_error(proc, "<stdin>: no standalone reproducer", why)
        assert proc.stdout.strip() == rerun
    assert not list(tmp_path.glob("repro_*.py"))


def test_the_command_is_documented_in_its_help():
    proc = run_cli("repro", "--help", cwd=ROOT)
    assert proc.returncode == 0
    for piece in ("PATH:LINE", "--case", "--check", "--adapter", "stdin", "exits 1", "rerun"):
        assert piece in proc.stdout


def test_the_report_links_each_known_divergence_and_failure_to_its_reproducer(tmp_path):
    """onnxruntime's GroupNormalization-21 body (a known divergence) and a planted failure: each gets a
    script beside the report, linked from the divergences section, which exits 1 without normbench."""
    (tmp_path / "planted.py").write_text(
        "from normbench.adapters.numpy.layers import NumpyAdapter, NumpyLayer\n\n"
        "class Off(NumpyLayer):\n"
        "    def forward(self, x, training, mask=None):\n"
        "        return super().forward(x, training, mask) + 1.0\n\n"
        "class Planted(NumpyAdapter):\n"
        "    name = 'planted-off'\n"
        "    builders = {'group_norm': Off}\n")
    out = tmp_path / "r"
    proc = run_cli("verify", "--adapters", "onnxruntime,planted:Planted", "-o", str(out), "--", "-k",
                   "test_forward_train and group_norm-4x6x10-float32-offset1e4", cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout[-2000:]
    scripts = sorted((out / "repro").glob("*.py"))
    page, md = (out / "report.html").read_text(), (out / "report.md").read_text()
    onnx = [p for p in scripts if p.name.startswith("repro_onnxruntime_group_norm_forward_train")]
    assert len(onnx) == 1 and f'href="repro/{onnx[0].name}"' in page and f"(repro/{onnx[0].name})" in md
    assert run_script(onnx[0]).returncode == 1
    # the planted adapter is a third party's: no standalone reproducer, its rerun command instead
    assert not [p for p in scripts if "planted" in p.name] and "planted-off" in page
