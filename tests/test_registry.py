"""Lazy discovery, unknown names, missing frameworks and third-party adapters."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from normbench.adapters import NotInstalled, UnknownAdapter, registry
from normbench.ops.spec import NormSpec
from normbench.results import records

from .helpers import FRAMEWORKS, ROOT, blocking, one_line_error, run_cli, run_python


def test_import_normbench_imports_no_framework():
    code = textwrap.dedent(f"""
        import sys
        import normbench, normbench.cli, normbench.plugin, normbench.verify.checks, normbench.verify.cases
        import normbench.suites.test_agreement
        from normbench.adapters import registry
        for name in registry.known():
            a = registry.get(name)
            a.missing(), a.version(), a.install_hint()
        print(sorted(m for m in {FRAMEWORKS!r} if m in sys.modules))
    """)
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_unknown_adapter_lists_known_names():
    with pytest.raises(UnknownAdapter) as exc:
        registry.get("torhc")
    message = str(exc.value)
    assert "did you mean 'torch'" in message
    for name in registry.BUILTIN:
        assert name in message


def test_unknown_adapter_on_the_command_line(tmp_path):
    out = run_cli("verify", "--adapters", "numpy,nope", "-o", str(tmp_path / "run"))
    assert out.returncode == 2
    assert "unknown adapter 'nope'" in out.stderr and "flax.linen" in out.stderr
    assert not (tmp_path / "run").exists()


def test_unknown_adapter_through_pytest(tmp_path):
    code = "import pytest, sys; sys.exit(pytest.main(['--pyargs', 'normbench.suites', '--adapters', 'nope']))"
    out = run_python(code, cwd=tmp_path)
    assert out.returncode == 4  # pytest's usage error
    assert "unknown adapter 'nope'" in out.stderr


def test_missing_framework_is_reported_with_install_hint():
    code = blocking("torch") + textwrap.dedent("""
        from normbench.adapters import registry, NotInstalled
        from normbench.ops.spec import NormSpec
        a = registry.get("torch")
        print(a.missing())
        try:
            a.build(NormSpec("layer_norm"), (2, 3), "float32")
        except NotInstalled as exc:
            print(exc)
    """)
    out = run_python(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "['torch']", "torch: not installed (torch): pip install 'normbench[torch]'"
    ]


def test_missing_framework_is_a_clean_skip_in_the_suites(tmp_path):
    code = blocking("torch") + textwrap.dedent(f"""
        import pytest
        sys.exit(pytest.main(["--pyargs", "normbench.suites", "--adapters", "numpy,torch",
                              "-rs", "--results", {str(tmp_path / "r.jsonl")!r}]))
    """)
    out = run_python(code, cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "torch: not installed (torch): pip install 'normbench[torch]'" in out.stdout
    assert " passed" in out.stdout and " skipped" in out.stdout


def test_missing_framework_in_normbench_list():
    out = run_python(blocking("onnxruntime") + "from normbench.cli import main; main(['list'])")
    assert out.returncode == 0, out.stderr
    line = next(ln for ln in out.stdout.splitlines() if ln.startswith("onnxruntime"))
    assert "not installed: pip install 'normbench[onnx]'" in line


def test_entry_point_adapter_is_discovered(tmp_path):
    (tmp_path / "thirdparty_norm.py").write_text(textwrap.dedent("""
        from normbench.adapters.numpy.layers import NumpyAdapter
        class Fused(NumpyAdapter):
            name = "fused"
    """))
    dist = tmp_path / "thirdparty_norm-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-norm\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[normbench.adapters]\nfused = thirdparty_norm:Fused\n")
    code = "from normbench.adapters import registry; print(registry.get('fused').name)"
    out = run_python(code, env={"PYTHONPATH": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "fused"


def test_module_class_reference_must_be_an_adapter():
    with pytest.raises(UnknownAdapter, match="not a normbench.Adapter"):
        registry.get("normbench.ops.spec:NormSpec")
    with pytest.raises(UnknownAdapter, match="cannot load adapter"):
        registry.get("no_such_module_xyz:Thing")


def test_readme_shows_the_example_adapter_verbatim():
    example = (ROOT / "examples" / "my_rmsnorm.py").read_text()
    code = example.split('"""', 2)[2].strip()  # the example without its docstring
    assert code in (ROOT / "README.md").read_text()
    assert len(code.splitlines()) < 40


def test_not_installed_is_unsupported_subclass():
    assert issubclass(NotInstalled, Exception)
    with pytest.raises(ValueError, match="unknown op"):
        NormSpec("no_such_norm")


def test_an_adapter_that_builds_nothing_is_refused_in_one_line(tmp_path):
    """An older contract's shape (``layer = MyLayer; ops = {...}``) set no ``builders``: it ran with
    every case skipped and exit 0. Selecting it is now a usage error naming what it defines."""
    (tmp_path / "oldstyle.py").write_text(textwrap.dedent("""
        from normbench.adapters.base import Adapter, Layer

        class MyLayer(Layer):
            pass

        class OldStyle(Adapter):
            name = "oldstyle"
            layer = MyLayer
            ops = frozenset({"layer_norm"})
    """))
    for command in ("run", "verify", "bench"):
        proc = run_cli(command, "--adapters", "oldstyle:OldStyle", "-o", str(tmp_path / command), cwd=tmp_path)
        one_line_error(proc, "oldstyle:OldStyle builds no op", "it defines layer, ops", "normbench reads `builders`")
        assert not (tmp_path / command).exists()


def _toy_registered(tmp_path) -> dict:
    """The environment of a process where tests/toy_framework is registered by its one line: an
    entry point under normbench.frameworks (and the dist-info naming its distribution)."""
    dist = tmp_path / "thirdparty_toy-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-toy\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[normbench.frameworks]\ntoy = tests.toy_framework\n")
    return {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}


def test_a_framework_package_and_one_registration_line_is_all_a_new_framework_takes(tmp_path):
    env = _toy_registered(tmp_path)
    listed = run_cli("list", env=env)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    i = next(i for i, ln in enumerate(lines) if ln.startswith("toy "))
    assert "installed 1.0" in lines[i] and "process: toy" in lines[i + 1]

    code = textwrap.dedent("""
        import json, os
        from normbench.adapters import registry
        from normbench.bench import threads
        from normbench.bench.environment import environment
        from normbench.results import records
        from normbench.running.job import plan
        from normbench.verify import known
        threads.configure(2)
        groups = {g.name: [a.name for a in g.adapters] for g in plan(registry.select(None))}
        env = environment()
        print(json.dumps({"groups": groups, "versions": env["versions"], "threads": env["threads"],
                          "known": [k.key for k in known.KNOWN], "last": registry.frameworks()[-1].name}))
    """)
    out = run_python(code, env=env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["groups"]["toy"] == ["toy"]  # planned into a process of its own
    assert got["versions"]["thirdparty-toy"] == "1.0"  # its distribution, in the environment record
    assert got["threads"]["TOY_NUM_THREADS"] == "2"  # its thread set-up, asked like every framework's
    assert "toy-example" in got["known"] and got["last"] == "toy"

    run = run_cli("verify", "--adapters", "toy", "-o", str(tmp_path / "r"), "--", "-k",
                  "test_forward_train and layer_norm and float32-normal", env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    environment, rows = records.read(tmp_path / "r" / "results.jsonl")
    assert environment["versions"]["thirdparty-toy"] == "1.0"
    assert rows and {r["adapter"] for r in rows} == {"toy"} and "pass" in {r["outcome"] for r in rows}

