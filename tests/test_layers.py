"""Imports run one way: each package of normbench imports only the packages below it.

The order is the data flow's (case → adapter → record → results → report): ops and results at the
bottom, the command line at the top. A function-level import must obey the same order, so one can
keep a command light (pandas only when a report is written) but never dodge a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "normbench"
ORDER = ("ops", "results", "numerics", "adapters", "bench", "verify", "search", "terminal", "plugin", "suites",
         "running", "repro", "reports", "cli")  # lowest first
TOP = {"__init__", "__main__", "__version__"}  # the package's own entry points, above everything


def _package(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported normbench module, inside a function?) for each import of normbench in ``path``."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    package = module if rel.name == "__init__" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            target = ".".join(base + ([node.module] if node.module else []))
            names = [target] if node.module else [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [f"{node.module}.{a.name}" for a in node.names] if node.module == "normbench" else [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found += [(n, id(node) in inner) for n in names if n == "normbench" or n.startswith("normbench.")]
    return found


def test_every_package_is_placed_in_the_order():
    packages = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    packages |= {p.stem for p in ROOT.glob("*.py")}
    assert packages - TOP <= set(ORDER), f"place {sorted(packages - TOP - set(ORDER))} in ORDER"


def test_no_package_imports_one_above_it():
    upward = []
    for path in sorted(ROOT.rglob("*.py")):
        here = _package(".".join(path.relative_to(ROOT.parent).with_suffix("").parts))
        for target, in_function in _imports(path):
            there = _package(target)
            if here in TOP or there == here or there in TOP - {"__init__"}:
                continue
            if there == "__init__" or ORDER.index(there) > ORDER.index(here):
                where = "inside a function" if in_function else "at module level"
                upward.append(f"{path.relative_to(ROOT.parent)} ({here}) imports {target} ({there}) {where}")
    assert not upward, "\n".join(upward)
