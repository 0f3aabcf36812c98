"""A reproducer assembled from its parts: the docstring, the imports, the case's arrays, the framework's layer
(its package's ``repro`` module), the float64 oracle, the comparison and ``main``."""

from __future__ import annotations

import math
import re
import sys
import textwrap

from ..adapters import registry
from ..adapters.repro import Cannot, Target, fill, py, writers
from ..ops.case import Case
from ..ops.dtypes import DTYPES, overflow_threshold
from ..results.kinds import Outcome, Suite
from . import arrays, oracle
from .checks import Body, Refused, body
from .checks import raised as recorded_exception

_SUITES = {
    Suite.SYNCHRONIZED: "a synchronized BatchNorm record runs on the framework's data-parallel engine across "
                        "replicas, which a one-process script does not reproduce",
    Suite.SPEED: "a timing, not a comparison with the oracle",
    Suite.PROCESS: "a record about a whole process, not one case",
}
_NOT_A_FRAMEWORK = {"numpy": "numpy is normbench's own float64 reference, not a framework under test"}

_COMPARE = '''
def errors(got, want, finite=None):
    """(|got − want| elementwise, got, want) in float64, as normbench judges: an exact value that rounds to ±inf in
    got's dtype makes ±inf right; a non-finite value where the true one is finite is infinitely wrong (``finite``
    marks where the true value is finite when ``want`` is a layer's output)."""
    a = np.asarray(got)
    limit = OVERFLOW.get(a.dtype.name, np.inf)
    exact = np.asarray(want, np.float64)
    a = a.astype(np.float64)
    with np.errstate(invalid="ignore"):
        beyond = np.isfinite(exact) & (np.abs(exact) >= limit)
        want = np.where(beyond, np.sign(exact) * np.inf, exact)
        same = ~np.isfinite(want) & (np.isnan(want) == np.isnan(a)) & (np.isnan(want) | (a == want))
        if finite is not None:
            same &= ~np.broadcast_to(finite, want.shape)
        err = np.where(same, 0.0, np.abs(a - np.where(beyond & np.isfinite(a), exact, want)))
    return np.where(np.isnan(err), np.inf, err), a, exact


def verdict(name, got, want, finite=None):
    """Print observed against expected where they differ most; 1 beyond the tolerance, else 0."""
    if np.shape(got) != np.shape(want):
        print(f"{name}: shape {np.shape(got)}, expected {np.shape(want)}")
        return 1
    err, a, w = errors(got, want, finite)
    at = np.unravel_index(int(np.argmax(err)), err.shape) if err.size else ()
    worst = float(err.max()) if err.size else 0.0
    print(f"{name} ({np.asarray(got).dtype}, shape {err.shape}): furthest off at {tuple(int(i) for i in at)}: "
          f"observed {float(a[at])!r}, expected {float(w[at])!r} (float64)")
    bad = int((~np.isfinite(a) & np.isfinite(w)).sum())
    if bad:
        print(f"{bad} values are non-finite where the float64 result is finite")
    @@judge@@
'''
_JUDGE = '''
print(f"max |observed - expected| = {worst:.6g}")
print(f"tolerance {TOLERANCE:.6g}: the record's, from normbench's tolerance policy "
      "(lambda*eps*(1 + sqrt(n)*(1 + kappa))*M per element)")
if worst > TOLERANCE:
    print(f"DIVERGES: {worst / TOLERANCE:.3g} times the tolerance")
    return 1
print("agrees within the tolerance")
return 0
'''
_NO_TOLERANCE = '''
print(f"max |observed - expected| = {worst:.6g} (the record holds no tolerance: it recorded {RAISED})")
print(f"did not raise {RAISED}, as recorded")
return 0
'''


def refusal(row: dict) -> str | None:
    """Why ``row`` gets no standalone reproducer (one line), or None."""
    try:
        build(row)
    except Refused as exc:
        return str(exc)
    return None


def default_name(row: dict) -> str:
    """``repro_<adapter>_<op>_<check>.py``, every run of other characters one underscore."""
    stem = "_".join(str(row.get(k) or "") for k in ("adapter", "op", "check"))
    return "repro_" + re.sub(r"[^A-Za-z0-9]+", "_", stem).strip("_") + ".py"


def _adapter(row: dict) -> tuple[str, str | None]:
    """(the adapter's own name, its mode), refused unless normbench writes its layers."""
    name, mode = str(row.get("adapter") or ""), row.get("mode")
    base = name[: -len(mode) - 1] if mode and name.endswith(f"+{mode}") else name
    if base in _NOT_A_FRAMEWORK:
        raise Refused(_NOT_A_FRAMEWORK[base])
    if base not in registry.BUILTIN:
        raise Refused(f"{name or 'the record'} is not a built-in adapter: normbench writes standalone reproducers "
                      "only for the layers its own adapters build")
    if base not in writers():
        raise Refused(f"normbench has no reproducer writer for {base}")
    return base, mode


def build(row: dict, name: str | None = None) -> str:
    """The reproducer of ``row`` (a check line of a results file), to be saved as ``name``; Refused says why not."""
    suite, outcome = row.get("suite"), row.get("outcome")
    if suite in _SUITES or (row.get("params") or {}).get("replicas"):
        raise Refused(_SUITES.get(suite, _SUITES[Suite.SYNCHRONIZED]))
    if outcome == Outcome.SKIP:
        raise Refused(f"the record is a skip: nothing ran ({row.get('message') or 'no reason given'})")
    base, mode = _adapter(row)
    try:
        case = Case.from_record(row)
    except (KeyError, TypeError, ValueError) as exc:
        raise Refused(f"its case does not rebuild: {exc}") from None
    work = body(row, case, registry.get(base).running_var)
    try:
        layer = writers()[base].layer(Target(base, mode, case, work.needs))
    except Cannot as exc:
        raise Refused(str(exc)) from None
    raised = recorded_exception(row)
    x, p = case.data()
    given = {"x": x, "gamma": p.gamma, "beta": p.beta,
             "running_mean": p.running_mean if case.spec.has_running_stats else None,
             "running_var": p.running_var if case.spec.has_running_stats else None, **work.arrays}
    embedded = [arrays.embed(k, v) for k, v in given.items()]
    helper = any(h for _, h in embedded)
    stdlib = {i for i in layer.imports if i.split()[1].split(".")[0] in sys.stdlib_module_names}
    imports = [*layer.preamble, *([""] if layer.preamble else []),
               *sorted({"import sys", *(["import base64"] if helper else []), *stdlib}), "", "import numpy as np",
               *(i for i in layer.imports if i not in stdlib)]
    parts = [
        _docstring(row, case, mode, work, layer.install, raised, name or default_name(row)),
        "\n".join(imports),
        _arrays_comment(case) + (arrays.HELPER if helper else "\n") + "\n" + "\n".join(s for s, _ in embedded),
        "# ---- the layer, built and called as normbench's adapter does ----\n" + layer.code.strip("\n"),
        "# ---- the float64 expectation: normbench's oracle, transcribed for this case ----\n"
        + oracle.source(case.spec, work.shapes or (case.shape,), work.oracle).strip("\n"),
        _tolerance(row, raised) + fill(_COMPARE, judge=(_JUDGE if raised is None else _NO_TOLERANCE).strip("\n")),
        _main(work, raised),
    ]
    return "\n\n\n".join(p.strip("\n") for p in parts if p.strip()) + "\n"


def _arrays_comment(case: Case) -> str:
    extra = "; its parameters and running statistics are float32 (mixed precision)" if case.spec.precision else ""
    return (f"# ---- the case's arrays: the exact values of its {case.dtype} input, as float64 ----\n"
            f"# (normbench regenerates them from the case id {case.id}){extra}")


def _tolerance(row: dict, raised: str | None) -> str:
    overflow = ",\n    ".join(f"{d!r}: {py(overflow_threshold(d))}" for d in DTYPES)
    lines = [
        "# The tolerance, copied from the record: normbench's tolerance policy (normbench/numerics/tolerance.py),",
        "# λ·ε·(1 + √n·(1 + κ))·M for each element (ε the dtype's epsilon, n the group size, κ = |mean|/std, M the",
        "# value's magnitude), summarized so that max |error| <= TOLERANCE exactly when every element is within",
        "# its own.",
        f"TOLERANCE = {_number(row.get('tolerance'))}",
        "# The magnitude from which a value rounds to ±inf in each dtype: an exact value that large makes ±inf right.",
        f"OVERFLOW = {{\n    {overflow},\n}}",
    ]
    if raised:
        lines.insert(0, f"RAISED = {raised!r}  # the exception the record recorded")
    return "\n".join(lines) + "\n\n\n"


def _number(value) -> str:
    if value is None:
        return "None"
    try:
        return py(float(value))
    except (TypeError, ValueError):
        return "None"


def _main(work: Body, raised: str | None) -> str:
    code = "\n".join(line for line in textwrap.dedent(work.code).splitlines() if line.strip())
    if raised is None:
        main = fill("""
            def main():
                layer = Layer()
                @@code@@
            """, code=code)
    else:
        main = fill("""
            def main():
                try:
                    layer = Layer()
                    @@code@@
                except Exception as exc:
                    if type(exc).__name__ != RAISED:
                        raise
                    print(f"raises {type(exc).__name__}, as recorded: {exc}")
                    return 1
            """, code=code)
    return main + '\n\n\nif __name__ == "__main__":\n    sys.exit(main())'


def _docstring(row: dict, case: Case, mode: str | None, work: Body, install: str, raised: str | None,
               name: str) -> str:
    facts = row.get("facts") or {}
    spec = case.spec
    options = ", ".join(f"{k}={v}" for k, v in spec.to_dict().items() if k != "op")
    head = (f"Reproduces a normbench record without normbench: {row.get('adapter')} {row.get('check')} of "
            f"{spec.op} on case {case.id}.")
    framework = f"Framework: {row.get('adapter')} {row.get('framework_version', '')}".rstrip()
    if mode:
        framework += f", mode {mode}" + (f" ({facts['mode_settings']})" if facts.get("mode_settings") else "")
    about = (f"{framework}. Case: a {case.dtype} input of shape {case.shape} drawn as {case.input!r}"
             f"{', ' + case.layout if case.layout else ''}; {options}{'; masked' if case.masked else ''}"
             f"{'; padded with ' + case.pad if case.pad else ''}.")
    recorded = f"normbench recorded: {row.get('outcome')}"
    if raised:
        recorded += f", raising {raised}"
    elif row.get("max_abs_err") is not None:
        err, tol = _short(row.get("max_abs_err")), _short(row.get("tolerance"))
        recorded += f", max |error| {err} against the tolerance {tol}"
    recorded += "."
    paragraphs = [head, about, recorded]
    if facts.get("known"):
        reason = str(facts.get("reason") or "")
        first = reason.split(". ")[0].rstrip(".") + "." if reason else ""
        paragraphs.append(f"Known divergence {facts['known']} ({facts.get('link', 'no link')}): {first}")
    paragraphs.append(f"It builds the layer as normbench's {row.get('adapter')} adapter does, compares {work.what} "
                      "with the float64 result recomputed below with plain numpy (normbench's oracle transcribed for "
                      "this case), and judges the difference by the tolerance normbench recorded.")
    ends = "the error exceeds the tolerance, or a value is not finite where the float64 result is"
    if raised:
        ends = f"the layer raises {raised}, as recorded"
    paragraphs.append(f"Run it with `python {name}`: it needs only numpy, {', '.join(install.split())} "
                      f"(pip install numpy {install}), never normbench. It exits 1 while the divergence exists "
                      f"({ends}) and 0 once the layer agrees.")
    text = "\n\n".join(textwrap.fill(p, 100, break_long_words=False, break_on_hyphens=False) for p in paragraphs)
    return '"""' + text.replace("\\", "\\\\").replace('"""', "'''") + '\n"""'


def _short(value) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return str(value)
    return f"{number:.3g}" if math.isfinite(number) else str(number)
