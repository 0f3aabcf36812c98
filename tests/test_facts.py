"""The facts schema: every key a real run writes is declared in ``results.facts``, and the
running-variance convention reads as a set from this format's list and from the older text."""

from __future__ import annotations

from normbench.results import facts, records

from .helpers import run_cli

SUITES = "agreement,train_eval,batch_size_one,sequence_lengths"


def test_every_fact_key_a_run_writes_is_declared(tmp_path):
    out = tmp_path / "r"
    proc = run_cli("verify", "--adapters", "numpy,torch", "--suites", SUITES, "--no-report", "-o", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    _, found = records.read_records(out / "results.jsonl")
    keys = {key for record in found for key in record.facts}
    assert {"running_var", "declared_running_var", "output_dtype", "default_eps"} <= keys  # the run measured them
    assert facts.undeclared(keys) == []
    stored = [record.facts["running_var"] for record in found if "running_var" in record.facts]
    assert stored and all(isinstance(v, list) and v == sorted(v) for v in stored)  # a set, never "a or b" text
    assert {tuple(v) for v in stored} <= {(), ("biased",), ("unbiased",), ("biased", "unbiased")}


def test_undeclared_names_a_new_key():
    assert facts.undeclared(["running_var", "output_dtype", "default_whatever", "shiny_new_fact"]) == [
        "shiny_new_fact"]
    assert facts.undeclared([]) == []


def test_conventions_read_the_list_and_the_older_text():
    assert facts.conventions(["biased", "unbiased"]) == facts.conventions("biased or unbiased") == {
        "biased", "unbiased"}
    assert facts.conventions([]) == facts.conventions("neither") == facts.conventions(None) == frozenset()
    assert facts.conventions(["unbiased"]) == facts.conventions("unbiased") == {"unbiased"}
    assert facts.says({"unbiased", "biased"}) == "biased or unbiased" and facts.says(()) == "neither"
