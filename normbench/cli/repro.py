"""`normbench repro`: one record of a results file written as a standalone script that reproduces it with numpy and
the framework alone, to attach to an upstream issue (``normbench.repro``)."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from ..results.records import Record
from .common import fail

DESCRIPTION = """\
Write one record of a results file as a standalone Python script: it imports only numpy and the framework (never
normbench), holds the case's exact arrays, builds the layer with the constructor arguments the adapter uses (its
mode too: torch.compile, tf.function(jit_compile=True), ...), runs the record's check, recomputes the float64
expectation inline with numpy, and exits 1 while the divergence exists (the error exceeds the record's tolerance, a
value is non-finite, or the recorded exception is raised), 0 once the layer agrees.

RECORD is one of:
  PATH:LINE   line LINE of a results file, numbered from 1 as `grep -n` numbers it (line 1 is the environment)
  -           one JSON record (a check line of a results file) on stdin
  PATH        with --case and --check (and --adapter where several adapters ran the case): the record they name

A record with no standalone reproducer (a synchronized or third-party adapter's record, a timing, a skip) is
refused in one line, and its rerun command printed instead (exit 2)."""

EXAMPLES = """\
examples:
  normbench repro my-run/verify/torch/results.jsonl:17
  normbench repro my-run/verify/jax/results.jsonl --case layer_norm-8x16-float32-offset1e4 \\
      --check forward_train --adapter flax.linen -o flax_fast_variance.py
  grep '"known"' results.jsonl | head -1 | normbench repro -"""


def add(sub: argparse._SubParsersAction) -> None:
    repro = sub.add_parser("repro", help="write a standalone script (numpy and the framework, no normbench) that "
                                         "reproduces one record", description=DESCRIPTION, epilog=EXAMPLES,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    repro.add_argument("record", help="PATH:LINE, '-' (a JSON record on stdin), or PATH with --case and --check")
    repro.add_argument("--case", help="the record's case id (with PATH)")
    repro.add_argument("--check", help="the record's check, e.g. forward_train or grad_dx (with PATH)")
    repro.add_argument("--adapter", help="the record's adapter, e.g. torch+inductor (with PATH)")
    repro.add_argument("-o", "--output", help="the script to write (default: repro_<adapter>_<op>_<check>.py here); "
                                              "an existing file is never overwritten")
    repro.set_defaults(func=write)


class BadRecord(ValueError):
    """The record cannot be read; the message names the file and line."""


def write(args: argparse.Namespace) -> int:
    from .. import repro  # the case arrays and the reproducer writers: only for this command

    try:
        where, row = _select(args)
    except BadRecord as exc:
        return fail(str(exc))
    out = Path(args.output or repro.default_name(row))
    if out.exists():
        return fail(f"{out} already exists; not overwriting it (give another -o)")
    if not out.parent.is_dir():
        return fail(f"{out.parent} is not a folder; cannot write {out}")
    try:
        source = repro.build(row, out.name)
    except repro.Refused as exc:
        rerun = row.get("rerun") or ""
        fail(f"{where}: no standalone reproducer for this record: {exc}; "
             + ("its rerun command follows" if rerun else "the record has no rerun command"))
        if rerun:
            print(rerun)
        return 2
    try:
        with open(out, "x", encoding="utf-8") as fh:
            fh.write(source)
    except OSError as exc:
        return fail(f"cannot write {out}: {exc.strerror or exc}")
    print(f"normbench: wrote {out} (python {out}: exits 1 while the divergence exists, 0 once the layer agrees)")
    return 0


def _select(args: argparse.Namespace) -> tuple[str, dict]:
    """(where the record came from, the record) as the arguments name it."""
    chosen = (args.case, args.check, args.adapter)
    if args.record == "-":
        if any(chosen):
            raise BadRecord("--case, --check and --adapter select a record of a results file, not of stdin")
        text = [line for line in sys.stdin.read().splitlines() if line.strip()]
        if len(text) != 1:
            raise BadRecord(f"<stdin>: expected one JSON record (one line), got {len(text)} lines")
        return "<stdin>", _check("<stdin>", text[0])
    if any(chosen):
        return _matching(Path(args.record), *chosen)
    found = re.fullmatch(r"(.+):(\d+)", args.record)
    if not found:
        if Path(args.record).is_file():
            raise BadRecord(f"{args.record}: name the record: PATH:LINE, or --case and --check")
        raise BadRecord(f"{args.record}: expected PATH:LINE, '-', or PATH with --case and --check")
    path, number = Path(found.group(1)), int(found.group(2))
    lines = _read(path)
    if not 1 <= number <= len(lines):
        raise BadRecord(f"{path}:{number}: no such line ({path} has {len(lines)} lines)")
    return f"{path}:{number}", _check(f"{path}:{number}", lines[number - 1])


def _read(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise BadRecord(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadRecord(f"{path}: cannot read it ({exc})") from None


def _check(where: str, line: str) -> dict:
    """The check record a line holds; BadRecord naming ``where`` if it holds none."""
    try:
        row = json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadRecord(f"{where}: not a JSON object ({exc.msg})") from None
    if not isinstance(row, dict) or row.get("type", "check") != "check":
        kind = row.get("type") if isinstance(row, dict) else None
        raise BadRecord(f"{where}: the {kind} record, not a check" if kind == "environment" else
                        f"{where}: not a normbench check record")
    try:
        Record.from_row({k: v for k, v in row.items() if k != "type"})
    except (TypeError, ValueError) as exc:
        raise BadRecord(f"{where}: not a check record ({exc})") from None
    return row


def _matching(path: Path, case: str | None, check: str | None, adapter: str | None) -> tuple[str, dict]:
    """The one record of ``path`` with that case, check and adapter."""
    if not (case and check):
        raise BadRecord("--case and --check name a record together (and --adapter where several adapters ran it)")
    found = []
    for number, line in enumerate(_read(path), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadRecord(f"{path}:{number}: not a JSON object ({exc.msg})") from None
        if (isinstance(row, dict) and row.get("type") == "check" and row.get("case") == case
                and row.get("check") == check and adapter in (None, row.get("adapter"))):
            found.append((number, line))
    which = f"case {case}, check {check}" + (f", adapter {adapter}" if adapter else "")
    if not found:
        raise BadRecord(f"{path}: no record of {which}")
    if len(found) > 1:
        lines = ", ".join(str(n) for n, _ in found[:8])
        raise BadRecord(f"{path}: {len(found)} records of {which} (lines {lines}): give PATH:LINE"
                        + ("" if adapter else " or --adapter"))
    number, line = found[0]
    return f"{path}:{number}", _check(f"{path}:{number}", line)
