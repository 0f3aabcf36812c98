"""Do two `normbench run` folders hold the same (case id, check, adapter, outcome) rows?

A structural change must not change what a run finds. This reads every ``*.jsonl`` under each
folder (check lines only: environment and format lines are not rows), and prints the rows that
only one side has, as a set and, for repeated rows (benchmark repeats), as counts. Exit 0 when
the sets are equal, 1 when they differ, 2 on bad input.

    python tools/same_records.py RUN_BEFORE RUN_AFTER
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

Row = tuple[str, str, str, str, str]  # suite, case id, check, adapter, outcome


def rows(folder: Path) -> Counter[Row]:
    found: Counter[Row] = Counter()
    for path in sorted(folder.rglob("*.jsonl")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SystemExit(f"{path}:{number}: not JSON ({exc.msg})") from None
            if rec.get("type", "check") != "check":
                continue
            found[(rec["suite"], rec["case"], rec["check"], rec["adapter"], rec["outcome"])] += 1
    return found


def compare(before: Counter[Row], after: Counter[Row]) -> list[str]:
    lines = []
    for label, only in (("only before", before.keys() - after.keys()), ("only after", after.keys() - before.keys())):
        lines += [f"{label}: {' | '.join(row)}" for row in sorted(only)]
    lines += [f"count {before[row]} → {after[row]}: {' | '.join(row)}"
              for row in sorted(before.keys() & after.keys()) if before[row] != after[row]]
    return lines


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2 or not all(Path(a).is_dir() for a in args):
        print("usage: python tools/same_records.py RUN_BEFORE RUN_AFTER (two run folders)", file=sys.stderr)
        return 2
    before, after = rows(Path(args[0])), rows(Path(args[1]))
    diff = compare(before, after)
    print("\n".join(diff))
    outcomes = Counter(row[4] for row in before.elements())
    print(f"{len(before)} distinct rows before, {len(after)} after ({sum(before.values())} and "
          f"{sum(after.values())} records; before: {', '.join(f'{n} {o}' for o, n in sorted(outcomes.items()))}): "
          + ("the same set of (suite, case, check, adapter, outcome) rows" if not set(before) ^ set(after)
             else f"{len(set(before) ^ set(after))} rows differ"))
    return 1 if set(before) ^ set(after) else 0


if __name__ == "__main__":
    sys.exit(main())
