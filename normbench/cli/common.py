"""What several commands share: one-line errors, the output folder, pytest in this process,
the reports written beside results, and the option types."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..adapters import registry
from ..adapters.base import Adapter
from ..running import child, folder
from ..running.job import Job
from ..running.supervisor import OK_EXITS, Stop

REPORT_FILES = {"report.html", "report.md", "results.csv"}
# Verified by default, timed only when named: the float64 reference, which the frameworks are measured against,
# not one of them (its float64 passes over a 4096 × 16384 RMSNorm take seconds per call); and torch.onnx, whose
# exported graphs run onnxruntime's kernels, timed already as onnxruntime.
UNTIMED = ("numpy", "torch.onnx")
MODES_HELP = ("execution modes to add to each adapter's default: compiled, all, or mode names, comma-separated "
              "(`normbench list` shows them; or name one adapter in one mode as <name>+<mode>)")
COMPILE_CACHE_HELP = ("where JAX, TensorFlow's XLA and Inductor keep what the verification compiled, for later runs "
                      "(default ~/.cache/normbench/compile, or what JAX_COMPILATION_CACHE_DIR, TF_XLA_FLAGS and "
                      "TORCHINDUCTOR_CACHE_DIR already say; a new folder gives a cold run; benchmarks always compile "
                      "afresh)")


def timed_by_default() -> list[Adapter]:
    """What a benchmark times when no adapter is named: every installed adapter but the untimed ones."""
    return [a for a in registry.select(None) if a.name not in UNTIMED and not a.missing()]


def fail(message: str) -> int:
    print(f"normbench: error: {message}", file=sys.stderr)
    return 2


def warn(message: str) -> None:
    print(f"normbench: warning: {message}", file=sys.stderr)


def output(args: argparse.Namespace) -> Path | None:
    """The fresh, writable results folder; None (after saying why) if it already holds
    something or cannot be written."""
    try:
        return folder.fresh(args.output)
    except folder.FolderError as exc:
        fail(str(exc))
        return None


def run_pytest(argv: list[str], args: argparse.Namespace, results: Path, hypothesis: bool = False) -> int:
    """The suites in this process (a supervisor's child, or a user's `verify`/`bench`/`search`). Without
    ``hypothesis`` (only the search draws with it), Hypothesis's pytest plugin stays out: it imports
    Hypothesis at every session's end, ~0.6 s of each verification process for nothing."""
    import pytest

    child.dump_stacks_on_request()
    child.stop_with_parent()
    if args.adapters:
        argv += ["--adapters", args.adapters]
    if getattr(args, "modes", None):
        argv += ["--modes", args.modes]
    argv += ["-q"] if not args.verbose else ["-v"]
    plugins = ["-p", "no:cacheprovider"] + ([] if hypothesis else ["-p", "no:hypothesispytest"])
    code = pytest.main(argv + ["--results", str(results), *plugins] + args.pytest_args)
    print(f"normbench: results in {results}" if results.exists() else "normbench: no results written")
    return int(code)


def load_results(files: list[Path]):
    """The results files, read once, as the reports read them (``reports.model.Results``)."""
    from ..reports import model  # pandas: only for the commands that read results

    return model.load(files, warn=warn)


def write_reports(sources, out: Path) -> list[Path]:
    """report.html, report.md and results.csv in ``out`` from results files (or loaded results)."""
    from ..reports import markdown, model, reproducers  # pandas and matplotlib: only when reports are written
    from ..reports.html import page

    res = sources if isinstance(sources, model.Results) else load_results(sources)
    out.mkdir(parents=True, exist_ok=True)
    res.reproducers = reproducers.write(res, out)  # beside the report, which links them
    written = [out / "report.html", out / "report.md", out / "results.csv"]
    written[0].write_text(page.render(res), encoding="utf-8")
    written[1].write_text(markdown.render(res, html_name="report.html"), encoding="utf-8")
    model.tidy(res).to_csv(written[2], index=False)
    return written


def reports_beside(files: list[Path], out: Path, code: int, skip: bool = False) -> int:
    """The report of ``files``, written into ``out``; the exit status, made a failure if the
    report could not be written (the results are kept either way)."""
    if files and not skip:
        try:
            print("normbench: report in " + str(write_reports(files, out)[0]))
        except Exception as exc:  # noqa: BLE001 - the results are kept; say why the report is missing
            print(f"normbench: could not render the report ({type(exc).__name__}: {exc})", file=sys.stderr)
            return code or 1
    return code


def own_results(out: Path) -> list[Path]:
    """The results file a command run in this process wrote into ``out``, if it did."""
    return [out / "results.jsonl"] if (out / "results.jsonl").exists() else []


def supervised_status(job_list: list[Job], stop: Stop, out: Path) -> int:
    """The exit status of a command whose work ran in supervised processes: 130 (after one line
    on stderr) if a signal cut it short, 1 if a process did not finish or found failures."""
    if stop.is_set():
        done = sum(not job.failed and job.finished for job in job_list)
        print(f"normbench: interrupted by {stop.signal}: {done} of {len(job_list)} processes finished; "
              f"results so far in {out}", file=sys.stderr)
        return 130
    return 1 if any(job.failed or job.returncode not in (*OK_EXITS, None) or job.returncode == 1
                    for job in job_list) else 0


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
