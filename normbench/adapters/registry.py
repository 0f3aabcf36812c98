"""Find frameworks and adapters by name without importing any framework.

``FRAMEWORKS`` is the one line that registers a built-in framework package (see ``framework``);
third-party packages register under the ``normbench.frameworks`` entry-point group. Everything
normbench knows per framework is read from the packages: adapter names, the distributions the
environment record carries, thread set-up, self-check families, host devices for the
synchronized suite, known divergences. Built-in adapters, third-party ones registered under the
``normbench.adapters`` entry-point group, and ``module:Class`` references all resolve to an
Adapter instance. Resolving a name imports only the adapter's own module, never its framework.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
import traceback
from functools import cache

from . import framework
from .base import Adapter
from .framework import FRAMEWORKS, builtin, frameworks

__all__ = ["BUILTIN", "FRAMEWORKS", "MODE_SELECTIONS", "UnknownAdapter", "frameworks", "get", "known", "requires",
           "select", "with_modes"]

ENTRY_POINT_GROUP = "normbench.adapters"


class UnknownAdapter(LookupError):
    pass


def requires() -> tuple[str, ...]:
    """Every module some framework's adapters import: what `import normbench` must leave unimported."""
    mods = (m for name, ref in _framework_adapters().items() for m in _load(ref).requires)
    return tuple(dict.fromkeys(mods))


def _framework_adapters() -> dict[str, str]:
    return {name: f.ref(ref) for f in frameworks() for name, ref in f.adapters.items()}


BUILTIN = {name: f.ref(ref) for f in builtin() for name, ref in f.adapters.items()}


@cache
def _entry_points() -> dict[str, str]:
    eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.value for ep in eps}


def known() -> dict[str, str]:
    """Every adapter name and the ``module:Class`` it resolves to: the framework packages' first
    (built-ins, then registered ones), then adapters registered alone."""
    table = _framework_adapters()
    return {**table, **{k: v for k, v in _entry_points().items() if k not in table}}


def _load(ref: str) -> Adapter:
    module_name, _, attr = ref.partition(":")
    if os.getcwd() not in sys.path:  # like `python -m`, so ./my_adapter.py:Class just works
        sys.path.append(os.getcwd())
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except Exception as exc:  # noqa: BLE001 - any failure of a user's module is one line, not a traceback
        raise UnknownAdapter(f"cannot load adapter {ref!r}: {_why(exc)}") from None
    if isinstance(obj, type) and issubclass(obj, Adapter):
        return obj()
    if isinstance(obj, Adapter):
        return obj
    raise UnknownAdapter(f"{ref!r} is not a normbench.Adapter subclass")


def _why(exc: Exception) -> str:
    """One line: the exception, and where in the user's file it happened."""
    if isinstance(exc, SyntaxError):
        return f"{type(exc).__name__}: {exc.msg} ({exc.filename}:{exc.lineno})"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if not f.filename.startswith("<")]
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames and not isinstance(exc, ImportError) else ""
    return f"{type(exc).__name__}: {exc}{where}"


def get(name: str) -> Adapter:
    """The adapter called ``name`` (or given as ``module:Class``); ``<adapter>+<mode>`` is that
    adapter in one of its modes (``torch+inductor``)."""
    table = known()
    base, plus, mode = name.rpartition("+")
    if plus and (base in table or ":" in base):
        try:
            return get(base).in_mode(mode)
        except LookupError as exc:
            raise UnknownAdapter(str(exc)) from None
    if name in table or ":" in name:
        adapter = _load(table.get(name, name))
        adapter.ref = name  # how the user named it, so a rerun command can name it again
        if name not in table:
            _own_name(adapter, table)
        return adapter
    close = difflib.get_close_matches(name, table, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownAdapter(
        f"unknown adapter {name!r}{hint}; known adapters: {', '.join(sorted(table))}; "
        "or give a third-party adapter as module:Class"
    )


def class_ref(adapter: Adapter) -> str:
    """``module:Class`` of the class that built the adapter's records."""
    cls = type(adapter)
    return f"{cls.__module__}:{cls.__qualname__}"


def _own_name(adapter: Adapter, table: dict[str, str]) -> None:
    """Refuse a class given as ``module:Class`` that takes the name of another adapter: a name carries
    that adapter's known divergences (their envelopes excuse its failures) and its rows in every report,
    so a look-alike (a subclass that keeps the name, say) would inherit both."""
    owner = table.get(adapter.name)
    if owner is None or type(_load(owner)) is type(adapter):
        return
    raise UnknownAdapter(
        f"adapter {class_ref(adapter)} is named {adapter.name!r}, the name of {owner}: a name carries its "
        "adapter's known divergences and report rows, so give this class a name of its own "
        f"(e.g. name = 'my-{adapter.name}')"
    )


def _builds_something(adapter: Adapter) -> None:
    """Refuse an adapter whose ``builders`` is empty: every case would be a skip and the run would
    pass, testing nothing (an older contract's ``layer = MyLayer; ops = {...}`` reads that way).
    The message names what the class defines that normbench does not read."""
    if adapter.builders:
        return
    cls = type(adapter)
    ours = set(dir(Adapter)) | set(Adapter.__annotations__)
    defined = sorted({k for c in cls.__mro__ if c is not Adapter and issubclass(c, Adapter) for k in vars(c)
                      if not k.startswith("__") and k not in ours} | {k for k in ("ops",) if k in vars(cls)})
    what = f"it defines {', '.join(defined)}" if defined else "it defines no builders"
    raise UnknownAdapter(
        f"adapter {cls.__module__}:{cls.__qualname__} builds no op ({what}): normbench reads `builders`, "
        "a dict of op name -> Layer subclass or builder(Layer, native), e.g. builders = {'rms_norm': MyLayer}"
    )


@cache
def semantics() -> tuple[str, ...]:
    """Every specification some framework package keys known divergences to (``Known.semantics``)."""
    return tuple(sorted({k.semantics for m in framework.modules("known") for k in m.KNOWN if k.semantics}))


def _known_semantics(adapter: Adapter) -> None:
    """A declared semantics that nothing is keyed to would match nothing, silently: refused, listing them."""
    unknown = [s for s in adapter.semantics if s not in semantics()]
    if unknown:
        raise UnknownAdapter(f"adapter {adapter.name} declares semantics {unknown[0]!r}, which no known divergence "
                             f"is keyed to; known semantics: {', '.join(semantics())}")


def select(names: str | list[str] | None) -> list[Adapter]:
    """Adapters for a comma-separated list (or list) of names; None means every known one.

    An adapter that builds no op is refused (``_builds_something``); `normbench list` still shows it.
    Two adapters with one ``name`` would merge into one row of every report and their rerun
    commands could not tell them apart, so that is refused.
    """
    if names is None:
        names = list(known())
    elif isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    adapters = [get(n) for n in names]
    for a in adapters:
        _builds_something(a)
        _known_semantics(a)
    seen: dict[str, Adapter] = {}
    for a in adapters:
        if a.name in seen:
            first = seen[a.name].ref
            given = f"given twice ({a.ref!r})" if first == a.ref else f"{first!r} and {a.ref!r}"
            raise UnknownAdapter(f"adapter name {a.name!r} is taken twice: {given}; every adapter needs "
                                 "its own name (the name attribute of the class)")
        seen[a.name] = a
    return adapters


MODE_SELECTIONS = ("default", "compiled", "all")


def with_modes(adapters: list[Adapter], modes: str | None) -> list[Adapter]:
    """Each adapter in its default mode, followed by the modes ``modes`` adds: ``default`` (none),
    ``compiled`` (its compiled modes), ``all``, or mode names, comma-separated (an adapter without
    one of them runs its others). An adapter named in a mode (``torch+inductor``) stays as it is.
    A mode name that no selected adapter has is refused, listing theirs."""
    words = [w.strip() for w in (modes or "default").split(",") if w.strip()]
    names = {m.name for a in adapters if a.mode is None for m in a.modes[1:]}
    unknown = [w for w in words if w not in MODE_SELECTIONS and w not in names]
    if unknown:
        raise UnknownAdapter(f"unknown mode {unknown[0]!r}: choose {', '.join(MODE_SELECTIONS)} or modes of the "
                             f"selected adapters ({', '.join(sorted(names)) or 'none has another mode'})")
    out = []
    for a in adapters:
        out.append(a)
        if a.mode is not None:
            continue
        for mode in a.modes[1:]:
            if "all" in words or mode.name in words or ("compiled" in words and mode.compiled):
                out.append(a.in_mode(mode.name))
    return out
