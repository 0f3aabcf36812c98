"""What an adapter author gets when their adapter misbehaves: the record names the exception
and the line of their own file, `Unsupported` is a skip wherever it is raised, NaN fails every
check, a module that does not import is one line, and two adapters cannot share a name."""

from __future__ import annotations

import textwrap

import pytest

from normbench.results import records

from .helpers import ROOT, one_line_error, run_cli

MISBEHAVING = "tests.misbehaving_adapters"


def verify(tmp_path, adapter: str, *pytest_args: str, cwd=ROOT):
    out = tmp_path / "r"
    proc = run_cli("verify", "--adapters", adapter, "-o", str(out), "--", *pytest_args, cwd=cwd)
    rows = records.read(out / "results.jsonl")[1] if (out / "results.jsonl").exists() else []
    return proc, rows


def test_an_exception_names_the_adapters_own_file_and_line(tmp_path):
    proc, rows = verify(tmp_path, f"{MISBEHAVING}:Raising", "-k", "test_forward_train and float32-normal",
                        "--tb=long")
    assert proc.returncode == 1
    source = (ROOT / "tests" / "misbehaving_adapters.py").read_text().splitlines()
    line = next(i for i, text in enumerate(source, 1) if "x.shape[5]" in text)
    where = f"{ROOT / 'tests' / 'misbehaving_adapters.py'}:{line} in forward"
    errors = [r for r in rows if r["outcome"] == "error"]
    assert errors and all(r["facts"]["where"] == where for r in errors)
    assert errors[0]["message"].startswith(f"IndexError: tuple index out of range (at {where})")
    assert errors[0]["facts"]["exception"] == "IndexError"
    assert errors[0]["facts"]["traceback"].startswith("Traceback (most recent call last):")
    assert f'misbehaving_adapters.py", line {line}, in forward' in proc.stdout  # the whole traceback, in the log


def test_unsupported_raised_inside_a_layer_is_a_skip_with_its_reason(tmp_path):
    proc, rows = verify(tmp_path, f"{MISBEHAVING}:Refusing", "-k", "test_gradients and float32-normal")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert rows and {r["outcome"] for r in rows} == {"skip"}
    assert all(r["message"] == "refusing: this kernel has no backward pass" for r in rows)


@pytest.mark.parametrize("test", ["test_scale_shift_invariance", "test_one_sample_equals_its_row",
                                  "test_train_equals_eval", "test_padding_shifts",
                                  "test_forward_train and float32-normal"])
def test_an_output_of_nan_fails_every_check_metamorphic_ones_included(tmp_path, test):
    proc, rows = verify(tmp_path, f"{MISBEHAVING}:NanEverywhere", "-k", test)
    assert proc.returncode == 1
    judged = [r for r in rows if r["outcome"] != "skip"]
    assert judged and {r["outcome"] for r in judged} == {"fail"}, {r["outcome"] for r in judged}
    assert all("non-finite" in r["message"] or "got nan" in r["message"] for r in judged)


def test_a_module_with_a_syntax_error_is_one_line(tmp_path):
    (tmp_path / "typo.py").write_text("from normbench import Adapter\n\nclass Typo(Adapter)\n    name = 'typo'\n")
    for command in ("run", "verify", "bench"):
        proc = run_cli(command, "--adapters", "typo:Typo", "-o", str(tmp_path / command), cwd=tmp_path)
        one_line_error(proc, "cannot load adapter 'typo:Typo': SyntaxError", f"{tmp_path / 'typo.py'}:3")
        assert not (tmp_path / command).exists()


def test_a_module_that_raises_on_import_names_its_line(tmp_path):
    (tmp_path / "broken_adapter.py").write_text(textwrap.dedent("""
        from normbench import Adapter

        SETTINGS = {}
        EPS = SETTINGS["eps"]
    """))
    proc = run_cli("verify", "--adapters", "broken_adapter:Whatever", "-o", str(tmp_path / "r"), cwd=tmp_path)
    one_line_error(proc, "KeyError: 'eps'", f"{tmp_path / 'broken_adapter.py'}:5")


@pytest.mark.parametrize("adapters, expected", [
    ("numpy,numpy", "adapter name 'numpy' is taken twice: given twice ('numpy')"),
    # a class named like a built-in is refused before any pair is compared: it would inherit the built-in's excuses
    (f"numpy,{MISBEHAVING}:Impostor", f"adapter {MISBEHAVING}:Impostor is named 'numpy', the name of "
                                      "normbench.adapters.numpy.layers:NumpyAdapter"),
])
def test_two_adapters_with_one_name_are_refused(tmp_path, adapters, expected):
    for command in ("run", "verify"):
        proc = run_cli(command, "--adapters", adapters, "-o", str(tmp_path / command))
        one_line_error(proc, expected)
        assert not (tmp_path / command).exists()
