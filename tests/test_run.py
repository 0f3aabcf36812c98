"""`normbench run`: one process per framework group, and what survives when one dies."""

from __future__ import annotations

import json

import pytest

from normbench.results import records

from .helpers import ROOT, one_line_error, run_cli

CRASHING = "tests.crashing_adapters"


@pytest.fixture(scope="module")
def crashed_run(tmp_path_factory):
    """numpy beside a segfaulting, a hanging and an unimportable adapter, each in its own process."""
    out = tmp_path_factory.mktemp("run") / "r"
    adapters = (f"numpy,{CRASHING}:Segfaulting,{CRASHING}:Hanging,{CRASHING}:Unimportable,{CRASHING}:Uninstalled,"
                f"{CRASHING}:SegfaultingAtOnce")
    proc = run_cli("run", "--adapters", adapters, "--suites", "agreement", "--quick", "--timeout", "15",
                   "-o", str(out), cwd=ROOT)
    return proc, out


def _rows(folder):
    return [r for path in sorted(folder.rglob("*.jsonl")) for r in records.read(path)[1]]


def test_every_group_runs_in_its_own_process(crashed_run):
    proc, out = crashed_run
    plan = json.loads((out / "run.json").read_text())
    assert [(j["phase"], j["group"]) for j in plan["jobs"]] == [
        ("verify", "numpy"), ("verify", "segfaulting"), ("verify", "hanging"), ("verify", "unimportable"),
        ("verify", "uninstalled"), ("verify", "segfaulting-at-once")]
    assert {j["group"]: j["status"] for j in plan["jobs"]} == {
        "numpy": "done", "segfaulting": "crashed", "hanging": "timeout", "unimportable": "done",
        "uninstalled": "not installed", "segfaulting-at-once": "crashed"}
    assert not (out / "logs" / "verify-uninstalled.stderr.log").exists()  # no process was started
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]


def test_the_other_groups_results_survive_a_crash_and_a_hang(crashed_run):
    proc, out = crashed_run
    numpy = _rows(out / "verify" / "numpy")
    assert numpy and {r["outcome"] for r in numpy} == {"pass"} and {r["adapter"] for r in numpy} == {"numpy"}
    for group in ("segfaulting", "hanging"):
        rows = _rows(out / "verify" / group)
        passed = [r for r in rows if r["outcome"] == "pass"]
        assert len(passed) >= 5, f"{group}: the records written before it died are kept"
        errors = [r for r in rows if r["outcome"] == "error"]
        assert len(errors) == 1 and errors[0]["check"] == "verify_process" and errors[0]["rerun"]
    crash = next(r for r in _rows(out / "verify" / "segfaulting") if r["outcome"] == "error")
    assert "killed by SIGSEGV" in crash["message"]
    assert f"-o {out / 'verify' / 'segfaulting'}-rerun " in crash["rerun"]  # never into the folder it left
    assert "Segmentation fault" in crash["facts"]["stderr_tail"]  # faulthandler's traceback
    hang = next(r for r in _rows(out / "verify" / "hanging") if r["outcome"] == "error")
    assert "killed after 15 s" in hang["message"] and hang["facts"]["status"] == "timeout"


def _line_of(text: str, adapter_class: str) -> int:
    """The line of ``text`` in crashing_adapters.py's layer for ``adapter_class``."""
    source = (ROOT / "tests" / "crashing_adapters.py").read_text().splitlines()
    start = next(i for i, line in enumerate(source) if line.startswith(f"class {adapter_class}Layer"))
    return next(i for i, line in enumerate(source[start:], start) if text in line) + 1


def test_a_crash_or_hang_record_names_the_adapters_own_line(crashed_run):
    """faulthandler's innermost frame is ctypes (crash) or time.sleep's caller; the record names
    the line of the adapter's own file, and a hang is dumped (SIGUSR1) before it is killed."""
    _, out = crashed_run
    where = str(ROOT / "tests" / "crashing_adapters.py")
    crash = next(r for r in _rows(out / "verify" / "segfaulting") if r["outcome"] == "error")
    assert crash["facts"]["where"] == f"{where}:{_line_of('string_at(0)', 'Segfaulting')} in forward"
    assert f"at {crash['facts']['where']}" in crash["message"]
    hang = next(r for r in _rows(out / "verify" / "hanging") if r["outcome"] == "error")
    assert hang["facts"]["where"] == f"{where}:{_line_of('sleep(3600)', 'Hanging')} in forward"
    assert f"it hung at {hang['facts']['where']}" in hang["message"]
    assert hang["message"].count("15 s") == 1, hang["message"]
    assert "(most recent call first)" in hang["facts"]["stderr_tail"]  # the stacks it dumped,
    assert f'File "{where}", line {_line_of("sleep(3600)", "Hanging")} in forward' in hang["facts"]["stderr_tail"]


def test_a_crash_before_the_first_record_still_reaches_the_report(crashed_run):
    _, out = crashed_run
    folder = out / "verify" / "segfaulting-at-once"
    assert [p.name for p in folder.glob("*.jsonl")] == ["process-errors.jsonl"]
    (crash,) = _rows(folder)
    assert crash["outcome"] == "error" and "killed by SIGSEGV" in crash["message"] and "0 records" in crash["message"]
    assert "segfaulting-at-once" in (out / "report" / "report.md").read_text()


def test_an_adapter_whose_framework_fails_to_import_is_errors_not_skips(crashed_run):
    _, out = crashed_run
    rows = _rows(out / "verify" / "unimportable")
    assert rows and {r["outcome"] for r in rows} == {"error"}
    assert all("importing it failed (ImportError: libbroken.so" in r["message"] for r in rows)


def test_a_framework_not_installed_is_a_skip_naming_its_extra(crashed_run):
    proc, out = crashed_run
    assert "not installed: uninstalled (pip install 'normbench[nosuch]')" in proc.stdout  # not eaten as markup
    rows = _rows(out / "verify" / "uninstalled")
    assert [r["outcome"] for r in rows] == ["skip"]
    assert "not installed (no_such_framework): pip install 'normbench[nosuch]'" in rows[0]["message"]


def test_the_report_covers_the_survivors_and_the_errors(crashed_run):
    proc, out = crashed_run
    md = (out / "report" / "report.md").read_text()
    html = (out / "report" / "report.html").read_text()
    for name in ("numpy", "segfaulting", "hanging", "unimportable", "segfaulting-at-once"):
        assert name in md and name in html
    assert "killed by SIGSEGV" in html
    assert f"report: {out / 'report' / 'report.html'}" in proc.stdout


def test_the_closing_line_counts_checks_as_the_report_does(crashed_run):
    """The report's headline: "N checks on M adapters: a pass, b fail, … — verdict."; the closing
    line says the same counts, and timings apart (none in this run)."""
    proc, out = crashed_run
    headline = next(line for line in (out / "report" / "report.md").read_text().splitlines() if " checks on " in line)
    said = headline.split(": ", 1)[1].split(" — ")[0]
    assert f"checks: {said}; 0 timings" in proc.stdout, (headline, proc.stdout[-1500:])


def test_progress_is_one_line_per_process_off_a_terminal(crashed_run):
    proc, _ = crashed_run
    lines = [line for line in proc.stdout.splitlines() if line.startswith("normbench: verify")]
    assert len(lines) == 6 and any(line.startswith("normbench: verify hanging: timeout") for line in lines)
    assert "\x1b[" not in proc.stdout  # no live display or colours in a pipe


@pytest.mark.parametrize("args, message", [
    (["--adapters", "numpy,nope"], "unknown adapter 'nope'"),
    (["--suites", "agreement,speedy"], "unknown suite 'speedy'; known suites: agreement"),
    (["--threads", "0"], "--threads: must be at least 1"),
    (["--threads", "two"], "--threads: not a whole number"),
    (["-n", "many"], "-n/--workers must be a whole number or 'auto'"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, message):
    proc = run_cli("run", *args, "-o", str(tmp_path / "r"))
    assert proc.returncode == 2 and message in proc.stderr.strip().splitlines()[-1], proc.stderr  # after any usage
    assert not (tmp_path / "r").exists()


def test_an_existing_folder_is_never_overwritten_unasked(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    proc = run_cli("run", "--adapters", "numpy", "-o", str(mine))
    assert proc.returncode == 2 and "already exists" in proc.stderr and "--overwrite" in proc.stderr
    proc = run_cli("run", "--adapters", "numpy", "--overwrite", "-o", str(mine))
    assert proc.returncode == 2 and "not a normbench run folder" in proc.stderr
    assert (mine / "notes.txt").read_text() == "keep me"


def test_an_unwritable_output_folder_is_named(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    proc = run_cli("run", "--adapters", "numpy", "-o", str(blocker / "r"))
    assert proc.returncode == 2 and f"cannot write the output folder {blocker / 'r'}: Not a directory" in proc.stderr


def test_overwrite_replaces_an_earlier_run(tmp_path):
    out = tmp_path / "r"
    first = run_cli("run", "--adapters", "numpy", "--suites", "batch_size_one", "-o", str(out))
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    again = run_cli("run", "--adapters", "numpy", "--suites", "batch_size_one", "-o", str(out))
    assert again.returncode == 2 and "already exists" in again.stderr
    replaced = run_cli("run", "--adapters", "numpy", "--suites", "train_eval", "--overwrite", "-o", str(out))
    assert replaced.returncode == 0, replaced.stdout[-2000:] + replaced.stderr[-2000:]
    assert {r["suite"] for r in _rows(out / "verify")} == {"train_eval"}

@pytest.mark.serial

def test_a_benchmark_waits_until_it_has_the_machine_alone():
    """The lock `tox -p` relies on: verification shares the machine, a benchmark excludes all."""
    import threading
    import time

    from normbench.bench import lock

    events = []

    def bench():
        with lock.machine(exclusive=True, waiting=lambda: events.append("waiting")):
            events.append("bench")

    with lock.machine(exclusive=False), lock.machine(exclusive=False):  # two verifications at once
        worker = threading.Thread(target=bench)
        worker.start()
        time.sleep(0.5)
        assert events == ["waiting"]  # held back while any verification runs
        events.append("verified")
    worker.join(300)  # other normbench processes on this machine (a developer's run) may still hold it
    assert events == ["waiting", "verified", "bench"]


def test_verification_under_xdist_merges_into_one_results_file(tmp_path):
    out = tmp_path / "r"
    proc = run_cli("run", "--adapters", "numpy", "--suites", "agreement", "--quick", "-n", "2", "-o", str(out))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert [p.name for p in (out / "verify" / "numpy").glob("*.jsonl")] == ["results.jsonl"]
    rows = _rows(out / "verify" / "numpy")
    assert len(rows) > 100 and {r["outcome"] for r in rows} == {"pass"}
    assert "-n" in json.loads((out / "run.json").read_text())["jobs"][0]["command"]


def test_the_benchmark_is_one_head_to_head_process_after_all_verification():
    """Every timed adapter in one conductor (a process per adapter and pass, all alive at once),
    not a process per group and pass timed minutes apart."""
    from normbench.adapters import registry
    from normbench.running import job, runner

    groups = job.plan(registry.select("numpy,flax.linen,flax.nnx"))
    jobs = runner.jobs(groups, ROOT / "unused", runner.Options())
    assert [j.label for j in jobs] == ["verify numpy", "verify jax", "sync numpy", "sync jax", "bench head-to-head"]
    (bench,) = [j for j in jobs if j.phase == "bench"]
    cmd = bench.command
    assert cmd[cmd.index("--adapters") + 1] == "numpy,flax.linen,flax.nnx" and "--in-process" not in cmd
    assert cmd[cmd.index("--processes") + 1] == str(runner.RUN_PASSES) and bench.exclusive
    assert cmd[cmd.index("--rounds") + 1] == str(runner.RUN_ROUNDS)
    assert "--verbose" in cmd  # its log says case by case where the time went
    assert bench.timeout_s == runner.DEFAULT_TIMEOUT_S * runner.RUN_PASSES
    quick = runner.jobs(groups, ROOT / "unused", runner.Options(quick=True))
    (fast,) = [j for j in quick if j.phase == "bench"]
    assert "--no-sweeps" in fast.command and fast.command[fast.command.index("--processes") + 1] == "1"
    assert "--no-sweeps" not in cmd


def test_the_default_run_verifies_the_reference_but_times_only_the_frameworks(tmp_path):
    """`normbench run` without --adapters passes untimed=("numpy",): the reference is verified,
    not benchmarked (it is timed when named, as `--adapters numpy` runs above show)."""
    from normbench.adapters import registry
    from normbench.running import job, runner

    groups = job.plan(registry.select("numpy,torch"))
    jobs = runner.jobs(groups, tmp_path, runner.Options(quick=True, untimed=("numpy",)))
    assert [j.label for j in jobs] == ["verify numpy", "verify torch", "sync numpy", "sync torch",
                                       "bench head-to-head"]
    (bench,) = [j for j in jobs if j.phase == "bench"]
    assert bench.command[bench.command.index("--adapters") + 1] == "torch"


def test_a_runs_passes_pool_into_one_timing_per_case(quick_bench, tmp_path):
    """Results files of one run folder (one per process and pass) pool by case."""
    from normbench.reports import load, model

    run = tmp_path / "run"
    for k in range(2):
        folder = run / "bench" / "numpy" / f"r{k}"
        folder.mkdir(parents=True)
        (folder / "results.jsonl").write_text(quick_bench.read_text())
    (run / "run.json").write_text("{}")
    res = load([run])
    one = load([quick_bench])
    assert len(model.timed_rows(res)) == len(model.timed_rows(one))
    assert set(model.timed_rows(res)["repeats"]) == {2 * r for r in set(model.timed_rows(one)["repeats"])}
    assert set(res.environments["run"]) == {"run/bench/numpy/r0", "run/bench/numpy/r1"}


def _listing(folder):
    return sorted((str(p.relative_to(folder)), p.read_bytes() if p.is_file() else b"") for p in folder.rglob("*"))


A_RUN = {"format": "normbench-run/1", "suites": ["train_eval"], "jobs": [
    {"phase": "verify", "group": "numpy", "folder": "verify/numpy", "command": ["normbench"]}]}


@pytest.mark.parametrize("plan, extra, expected", [
    ('{"mine": true}', {}, "its run.json is not a normbench run record"),
    ("not json at all", {}, "its run.json is not a normbench run record"),
    (json.dumps({**A_RUN, "format": "something-else/9"}), {}, "its run.json is not a normbench run record"),
    (json.dumps(A_RUN), {"notes.txt": "keep me"}, "it holds files a run does not write (notes.txt)"),
], ids=["other-json", "not-json", "other-format", "foreign-file"])
def test_overwrite_deletes_only_a_normbench_run_folder(tmp_path, plan, extra, expected):
    folder = tmp_path / "r"
    folder.mkdir()
    (folder / "run.json").write_text(plan)
    (folder / "verify").mkdir()
    (folder / "verify" / "results.jsonl").write_text("{}\n")
    for name, text in extra.items():
        (folder / name).write_text(text)
    before = _listing(folder)
    proc = run_cli("run", "--adapters", "numpy", "--overwrite", "-o", str(folder))
    one_line_error(proc, f"not deleting {folder}: {expected}")
    assert _listing(folder) == before


@pytest.mark.parametrize("where", [".", "..", "home"])
def test_overwrite_never_empties_the_working_directory_a_parent_or_home(tmp_path, where):
    """The probe: `normbench run -o . --overwrite` in a project holding a stray run.json."""
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "src" / "code.py").write_text("print('mine')")
    for folder in (project, tmp_path):
        (folder / "run.json").write_text(json.dumps(A_RUN))
    (tmp_path / "elsewhere").mkdir()
    before = _listing(tmp_path)
    target = {".": ".", "..": "..", "home": str(project)}[where]
    env = {"HOME": str(project)} if where == "home" else {}
    proc = run_cli("run", "--adapters", "numpy", "--overwrite", "-o", target,
                   cwd=tmp_path / "elsewhere" if where == "home" else project, env=env)
    one_line_error(proc, "it is the working directory, a folder above it, the home folder or the root")
    assert _listing(tmp_path) == before


def test_overwrite_replaces_a_run_in_place_and_says_how_each_process_ended(tmp_path):
    out = tmp_path / "r"
    first = run_cli("run", "--adapters", "numpy", "--suites", "batch_size_one", "-o", str(out))
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    plan = json.loads((out / "run.json").read_text())
    assert plan["format"] == "normbench-run/1" and [j["status"] for j in plan["jobs"]] == ["done"]
    assert {p.name for p in out.iterdir()} <= {"run.json", "verify", "bench", "logs", "report"}
