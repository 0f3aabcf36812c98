"""Where an adapter failed, and what record fields its exception makes.

The innermost frame in the adapter's own source files:

A framework's exception or crash usually surfaces deep inside the framework; what an
adapter author needs is the line of *their* module that called into it. The same question
is asked of a Python exception (checks), of faulthandler's dump of a crashed process and of
the stack a hung process dumps before it is killed (the runner).
"""

from __future__ import annotations

import inspect
import re
import traceback
from dataclasses import dataclass

from ..results.kinds import Outcome
from .base import Adapter, ImportFailed, Layer, Unsupported


@dataclass(frozen=True)
class Frame:
    file: str
    line: int
    function: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line} in {self.function}"


def adapter_files(adapter: Adapter) -> frozenset[str]:
    """Source files of the adapter's classes and its layer's (the contract's base module excluded)."""
    classes = [*type(adapter).__mro__, *getattr(adapter, "layer", Layer).__mro__]
    files = set()
    for cls in classes:
        if cls in (Adapter, Layer, object):
            continue
        try:
            files.add(inspect.getsourcefile(cls))
        except TypeError:  # a class without a source file (built in C)
            continue
    return frozenset(f for f in files if f)


def innermost(frames: list[Frame], files: frozenset[str]) -> Frame | None:
    """The innermost of ``frames`` (listed outermost first) that lies in ``files``."""
    return next((f for f in reversed(frames) if f.file in files), None)


def of_exception(exc: BaseException) -> list[Frame]:
    """An exception's traceback, outermost first."""
    return [Frame(f.filename, f.lineno or 0, f.name) for f in traceback.extract_tb(exc.__traceback__)]


FAULTHANDLER_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+) in (?P<function>\S+)')
THREAD = re.compile(r"^(Current thread|Thread) 0x[0-9a-f]+")


def of_faulthandler(text: str) -> list[list[Frame]]:
    """Each thread's stack from faulthandler output (most recent call first there), outermost
    first here; the thread that crashed or handled the dump signal ("Current thread") first."""
    stacks: list[tuple[bool, list[Frame]]] = []
    for line in text.splitlines():
        head = THREAD.match(line)
        if head:
            stacks.append((head.group(1) == "Current thread", []))
            continue
        m = FAULTHANDLER_FRAME.match(line)
        if m and stacks:
            stacks[-1][1].append(Frame(m["file"], int(m["line"]), m["function"]))
    stacks.sort(key=lambda s: not s[0])
    return [list(reversed(frames)) for _, frames in stacks]


def blame(stacks: list[list[Frame]], files: frozenset[str]) -> Frame | None:
    """The adapter's innermost frame in the first stack that passes through its files."""
    return next((f for f in (innermost(s, files) for s in stacks) if f), None)


# TensorFlow's autograph re-raises an error from code it traces (tf.function, XLA) as StagingError where it
# cannot rebuild the original type from a message (IndexError among them); the message keeps the original's
# "IndexError: ..." line. A known cause that raises IndexError eagerly raises it under tf.function too.
_WRAPPERS = ("StagingError",)
_WRAPPED = re.compile(r"^\s*([A-Z]\w*(?:Error|Exception)): ", re.M)


def exception_name(exc: BaseException) -> str:
    """The exception's type name, or the type a wrapper (``_WRAPPERS``) names as the one it re-raised."""
    name = type(exc).__name__
    found = _WRAPPED.findall(str(exc)) if name in _WRAPPERS else []
    return found[-1] if found else name


def raised(adapter: Adapter, exc: Exception) -> dict:
    """Record fields for an exception from an adapter's layer: ``Unsupported`` (wherever it is
    raised) is a skip with its reason; anything else an error that names the adapter's own line
    that led to it, with the whole traceback in ``facts``."""
    if isinstance(exc, Unsupported):
        return {"outcome": Outcome.SKIP, "message": str(exc)}
    message = f"{type(exc).__name__}: {exc}".strip()
    if isinstance(exc, ImportFailed):
        return {"outcome": Outcome.ERROR, "message": message}
    frames = of_exception(exc)
    where = innermost(frames, adapter_files(adapter)) or (frames[-1] if frames else None)
    tb = "".join(traceback.format_exception(exc)).rstrip()
    name = exception_name(exc)
    return {"outcome": Outcome.ERROR, "message": message + (f" (at {where})" if where else ""),
            "facts": {"exception": name, "where": str(where) if where else None, "traceback": tb,
                      **({"raised_as": type(exc).__name__} if name != type(exc).__name__ else {})}}


def _fatal(text: str) -> str | None:
    """faulthandler's "Fatal Python error: Segmentation fault" line, if the process printed one."""
    return next((line.strip() for line in text.splitlines() if line.startswith("Fatal Python error")), None)


def gist(text: str) -> str:
    """The lines of stderr that say what happened: the fatal error and the innermost frame
    (faulthandler prints it first), else the last three lines."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    fatal = _fatal(text)
    if fatal:
        after = lines[lines.index(fatal) + 1:]
        frame = next((line for line in after if line.startswith("File ")), "")
        return " | ".join(x for x in (fatal, frame) if x)
    return " | ".join(lines[-3:]) if lines else "(empty)"
