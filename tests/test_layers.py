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


def _imports(path: Path, run_only: bool = False) -> list[tuple[str, bool]]:
    """(imported normbench module, inside a function?) for each import of normbench in ``path``;
    ``run_only``: not those under ``if TYPE_CHECKING:``, which never run."""
    rel = path.relative_to(ROOT.parent).with_suffix("")
    module = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
    package = module if rel.name == "__init__" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    inner = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
             for n in ast.walk(f)}
    typing = {id(n) for f in ast.walk(tree) if isinstance(f, ast.If) and "TYPE_CHECKING" in ast.unparse(f.test)
              for n in ast.walk(f)} if run_only else set()
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
        if id(node) not in typing:
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


def _module_of(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    return ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)


def _runs_first(target: str, modules: set[str]) -> list[str]:
    """What importing ``target`` executes: each package on its path, then the module itself."""
    parts = target.split(".")
    return [m for m in (".".join(parts[:i]) for i in range(2, len(parts) + 1)) if m in modules]


def test_no_module_imports_itself_round_a_cycle():
    """`import normbench.reports.modes` on its own failed: modes imported html.elements, which ran the html
    package's page, which imported the section registry, which imported modes, half-made. Module-level
    imports, package initialisations included, form no cycle (a module's own packages run before it)."""
    paths = sorted(ROOT.rglob("*.py"))
    modules = {_module_of(p) for p in paths}
    edges = {}
    for path in paths:
        here = _module_of(path)
        own = {".".join(here.split(".")[:i]) for i in range(1, len(here.split(".")) + 1)}
        edges[here] = {m for target, inner in _imports(path, run_only=True) if not inner
                       for m in _runs_first(target, modules) if m not in own}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(m: str) -> list[str] | None:
        state[m] = 1
        stack.append(m)
        for n in sorted(edges.get(m, ())):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if not state.get(n) and (cycle := visit(n)):
                return cycle
        state[m] = 2
        stack.pop()
        return None

    for m in sorted(edges):
        if not state.get(m) and (cycle := visit(m)):
            raise AssertionError("import cycle: " + " -> ".join(cycle))


MODULE_LINES = 500  # issue 20: a module past this does more than one thing


def test_no_module_is_over_500_lines():
    """The conductor grew to 658 lines over the head-to-head work (entrants, contender pipes and the
    memory plan beside the rounds) with nothing to stop it; now it is three modules and this test."""
    long = {str(p.relative_to(ROOT.parent)): n for p in sorted(ROOT.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MODULE_LINES}
    assert not long, f"over {MODULE_LINES} lines: {long}"
