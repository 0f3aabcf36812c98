"""What an adapter will exercise, read from its declarations before anything runs (`normbench
check-adapter`): the ops it builds, the dtypes, layouts, features and modes it declares, where its
layer classes and its declarations disagree, and how much of the agreement suite it will run.

A declared feature whose method the layer does not define skips every check of it at run time; a
method defined but not declared is never called. Both read as coverage, so both are said here.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from .. import ops
from ..adapters.base import FEATURES, Adapter, Layer, Unsupported
from ..ops.case import Case
from ..ops.dtypes import DTYPES
from ..ops.spec import LAYOUTS
from . import cases

# The agreement suite's checks (normbench/suites/test_agreement.py): their cases and the features they build with.
AGREEMENT: tuple[tuple[str, Callable[[], list[Case]], tuple[str, ...]], ...] = (
    ("forward_train", lambda: cases.agreement_cases() + cases.mixed_cases(), ()),
    ("forward_eval", lambda: _running(cases.agreement_cases() + cases.mixed_cases()), ("eval",)),
    ("gradients", lambda: cases.agreement_cases() + cases.mixed_cases(), ("grad",)),
    ("running_stats", lambda: _running(cases.agreement_cases() + cases.mixed_cases()), ("running_stats",)),
    ("scale_shift_invariance", cases.metamorphic_cases, ()),
    ("jvp", cases.ad_cases, ("jvp",)),
    ("second_order", cases.ad_cases, ("second_order",)),
)

# The Layer method each feature calls, where one does: a layer that does not define it raises Unsupported.
METHODS = {"grad": "vjp", "jvp": "jvp", "second_order": "second_order"}
WHAT = {"eval": "inference-mode forward passes (forward_eval, train/eval checks)",
        "running_stats": "running mean and variance after training steps",
        "grad": "reverse-mode gradients dx, dγ, dβ", "mask": "masked (padded) statistics",
        "jvp": "forward-mode derivatives", "second_order": "gradients of gradients"}


def _running(found: list[Case]) -> list[Case]:
    return [c for c in found if c.spec.has_running_stats]


@dataclass(frozen=True)
class OpLine:
    op: str
    layer: str | None  # the class its builder makes, where it can be told without building
    skip: str | None  # why the op is not exercised


def _layer_class(builder) -> type[Layer] | None:
    """The Layer class a builder makes: the class itself, or the layer of ``builder(Layer, native)``."""
    target = getattr(builder, "func", builder)
    return target if inspect.isclass(target) and issubclass(target, Layer) else None


def op_lines(adapter: Adapter) -> list[OpLine]:
    out = []
    for op in ops.all():
        builder = adapter.builders.get(op.name)
        if builder is None:
            out.append(OpLine(op.name, None, adapter.unsupported(*op.configs()[0], "float32")))
        else:
            cls = _layer_class(builder)
            out.append(OpLine(op.name, cls.__name__ if cls else "a builder", None))
    return out


def probe(adapter: Adapter, op: str) -> str:
    """One layer of ``op`` built at its first configuration, in the first dtype the adapter declares: the
    one thing read here by running the adapter's code (a layer that is not built yet says so)."""
    spec, shape = ops.get(op).configs()[0]
    dtype = next((d for d in DTYPES if d in adapter.dtypes), "float32")
    try:
        adapter.build(spec, shape, dtype)
    except Unsupported as exc:
        return f"skips every case ({exc})"
    except Exception as exc:  # noqa: BLE001 - what the suites would record as an error, said in one line
        return f"errors building {spec.op} {shape} {dtype}: {type(exc).__name__}: {exc}"
    return f"a {dtype} layer built"


def gaps(adapter: Adapter) -> list[str]:
    """Where a layer class and the adapter's ``features`` disagree, and what it costs: a declared feature
    whose method no class up to Layer defines, or a method the class itself defines but no feature calls."""
    by_class: dict[type[Layer], list[str]] = {}
    for op, builder in adapter.builders.items():
        cls = _layer_class(builder)
        if cls is not None:
            by_class.setdefault(cls, []).append(op)
    out = []
    for cls, built in by_class.items():
        which = ", ".join(built)
        for feature, method in METHODS.items():
            declared = feature in adapter.features
            if declared and getattr(cls, method) is getattr(Layer, method):
                out.append(f"{which}: features declares {feature!r} but {cls.__name__} does not define {method}(): "
                           f"every {feature} check will skip")
            elif not declared and method in vars(cls):
                out.append(f"{which}: {cls.__name__} defines {method}() but features lacks {feature!r}: "
                           f"its {WHAT[feature]} are never checked")
        if cls.timed is Layer.timed:
            out.append(f"{which}: {cls.__name__} does not define timed(): verified, not benchmarked")
    return out


def agreement(adapter: Adapter) -> tuple[int, Counter]:
    """How many agreement-suite checks will run, and the skips by reason."""
    ran, skipped = 0, Counter()
    for _, found, features in AGREEMENT:
        for case in found():
            need = features + (("mask",) if case.masked else ())
            why = adapter.unsupported(case.spec, case.shape, case.dtype, need)
            if why is None:
                ran += 1
            else:
                skipped[why] += 1
    return ran, skipped


def overridden(adapter: Adapter, method: str) -> bool:
    return getattr(type(adapter), method) is not getattr(Adapter, method)


def report(adapter: Adapter) -> list[str]:
    """The lines `normbench check-adapter` prints."""
    cls = type(adapter)
    missing = adapter.missing()
    lines = [f"adapter {adapter.name} ({cls.__module__}:{cls.__qualname__}): "
             + (f"not installed ({', '.join(missing)}): {adapter.install_hint()}" if missing
                else f"installed, version {adapter.version()}")]
    lines.append("ops:")
    for line in op_lines(adapter):
        said = f"builds ({line.layer})" if line.skip is None else f"skip: {line.skip}"
        if line.skip is None and not missing:
            said = f"{line.layer}: {probe(adapter, line.op)}"
        lines.append(f"  {line.op:<14} {said}")
    dtypes = [d for d in DTYPES if d in adapter.dtypes]
    lines.append(f"dtypes: {', '.join(dtypes) or 'none'}"
                 + (f"; skipped: {', '.join(d for d in DTYPES if d not in adapter.dtypes)} (not in `dtypes`)"
                    if len(dtypes) < len(DTYPES) else ""))
    lines.append(f"layouts: {', '.join(x for x in LAYOUTS if x in adapter.layouts)}"
                 + ("" if set(LAYOUTS) <= adapter.layouts else
                    f"; skipped: {', '.join(x for x in LAYOUTS if x not in adapter.layouts)} (not in `layouts`)"))
    lines.append("features:")
    for feature in FEATURES:
        lines.append(f"  {feature:<13} " + ("checked" if feature in adapter.features else
                                             f"skipped ({WHAT[feature]}): not in `features`"))
    lines += [f"  ! {gap}" for gap in gaps(adapter)]
    lines.append("modes: " + "; ".join(
        f"{m.name}" + (" (default)" if i == 0 else f" -> --adapters {name}")
        + (f", without {', '.join(f for f, _ in m.lacks)}" if m.lacks else "")
        + (f", cannot run here: {why}" if (why := m.missing()) else "")
        for i, (m, name) in enumerate(zip(adapter.modes, adapter.every_mode(), strict=True))))
    halves = [(op.name, d) for op in ops.all() if op.name in adapter.ops for d in ("float16", "bfloat16")
              if d in adapter.dtypes and adapter.mixed_precision(op.configs()[0][0], d) is not None]
    lines.append("mixed precision: " + (", ".join(f"{op} on {d}" for op, d in halves) if halves else
                                        "none (Adapter.mixed_precision returns no path): the mixed cases skip"))
    lines.append("defaults(): " + ("reported" if overridden(adapter, "defaults") else
                                   "not reported: the train_eval defaults check skips"))
    lines.append("synchronized BatchNorm: " + ("replicate() defined" if overridden(adapter, "replicate") else
                                               "none (no replicate()): the synchronized suite skips"))
    lines.append("semantics: " + (", ".join(adapter.semantics) + " (its known divergences apply)"
                                  if adapter.semantics else "none declared (only divergences of its own name apply)"))
    ran, skipped = agreement(adapter)
    total = ran + sum(skipped.values())
    lines.append(f"agreement suite: {ran} of {total} checks run, {total - ran} skip"
                 + (" — more skip than run" if total - ran > ran else ""))
    lines += [f"  {n:>5} skip: {why}" for why, n in skipped.most_common()]
    return lines
