"""The memory allocator a benchmark process runs under: a named, recorded setting.

On CPU a norm's output (tens of MB at the shapes users care about) is allocated and freed on
every call. glibc hands blocks that large back to the kernel (munmap, or trimming the heap),
so the next call page-faults its output in again: ~0.8 μs per 4 KiB page, several ms per call.
Whether that happens depends on the process's allocator state, not on the kernel being timed,
so benchmarks fix it: by default with glibc's own tunables (nothing to install) set so that
freed memory stays mapped, as it does in a long training loop once the allocator has settled.

The settings act at process start (``GLIBC_TUNABLES`` is read by the dynamic loader,
``LD_PRELOAD`` too), so they are environment variables for a new process, never applied to
the running one: ``normbench bench`` re-executes itself under them.
"""

from __future__ import annotations

import ctypes
import os
import resource
from dataclasses import dataclass, field
from pathlib import Path

from ..results.allocators import DEFAULT, MEANINGS

ACTIVE = "NORMBENCH_ALLOCATOR"  # set in a process started under a setting: its name

# Each setting, and what it fixed here (faults per call of a steady-state loop):
# - mmap_threshold=32 MiB (the largest glibc allows on 64-bit) and mmap_max=0: blocks of any
#   size come from the heap, not from a mapping of their own that free() unmaps;
# - arena_max=1: every thread allocates from the main heap. A thread's own arena holds at most
#   64 MiB per heap and maps anything larger directly whatever mmap_max says, so XLA's worker
#   threads mapped and faulted in a 256 MiB output on every call (flax.linen RMSNorm forward
#   4096 × 16384: 65,537 faults and 206 ms per call; 0 faults and 47 ms with this);
# - trim_threshold=4 GiB: never give the top of the heap back;
# - top_pad=256 MiB: grow the heap in large steps.
WARM_TUNABLES = ("glibc.malloc.mmap_threshold=33554432:glibc.malloc.mmap_max=0:glibc.malloc.arena_max=1:"
                 "glibc.malloc.trim_threshold=4294967296:glibc.malloc.top_pad=268435456")
# jemalloc's default decay returns dirty pages to the kernel after ~10 s (and muzzy ones after
# that): -1 keeps them, the same retention the glibc tunables give.
JEMALLOC_RETAIN = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
LIBDIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib", "/usr/local/lib")


class AllocatorError(ValueError):
    """An allocator that cannot be used here; the message is one line saying why and what to do."""


@dataclass(frozen=True)
class Allocator:
    name: str
    env: dict[str, str] = field(default_factory=dict)  # set for the benchmark process, before it starts
    meaning: str = ""

    @property
    def preload(self) -> str | None:
        return self.env.get("LD_PRELOAD")

    @property
    def spec(self) -> str:
        """What ``--allocator`` takes to mean this one again."""
        return self.name if self.name in KNOWN else self.env["LD_PRELOAD"]


@dataclass(frozen=True)
class _Known:
    meaning: str
    libraries: tuple[str, ...] = ()  # shared objects to preload, first found wins
    package: str = ""  # the Debian package that installs one
    env: tuple[tuple[str, str], ...] = ()


KNOWN: dict[str, _Known] = {
    "warm": _Known(MEANINGS["warm"], env=(("GLIBC_TUNABLES", WARM_TUNABLES),)),
    "system": _Known(MEANINGS["system"]),
    "tcmalloc": _Known(MEANINGS["tcmalloc"], ("libtcmalloc_minimal.so.4", "libtcmalloc.so.4"), "libtcmalloc-minimal4"),
    "jemalloc": _Known(MEANINGS["jemalloc"], ("libjemalloc.so.2",), "libjemalloc2",
                       (("MALLOC_CONF", JEMALLOC_RETAIN),)),
}


def names() -> tuple[str, ...]:
    return tuple(KNOWN)


def resolve(spec: str | None = None) -> Allocator:
    """A named setting (see ``KNOWN``), or the path of a shared library to preload."""
    spec = (spec or DEFAULT).strip()
    known = KNOWN.get(spec)
    if known is None:
        if "/" not in spec and not spec.endswith(".so") and ".so." not in spec:
            raise AllocatorError(f"unknown allocator {spec!r}; known: {', '.join(KNOWN)}, or the path of a "
                                 "shared library to preload")
        path = Path(spec).expanduser()
        if not path.is_file():
            raise AllocatorError(f"allocator library {spec} does not exist")
        return Allocator(path.name, {"LD_PRELOAD": str(path.resolve())}, f"{path.name} preloaded")
    env = dict(known.env)
    if known.libraries:
        found = find_library(known.libraries)
        if found is None:
            raise AllocatorError(f"{spec} is not installed here ({' or '.join(known.libraries)} not found): "
                                 f"apt-get install {known.package}, or pass --allocator PATH")
        env["LD_PRELOAD"] = found
    return Allocator(spec, env, known.meaning)


def find_library(candidates: tuple[str, ...], dirs: tuple[str, ...] | None = None) -> str | None:
    for name in candidates:
        for d in LIBDIRS if dirs is None else dirs:
            path = Path(d) / name
            if path.is_file():
                return str(path)
    return None


def parse_list(text: str) -> list[Allocator]:
    """``--allocators system,warm,tcmalloc``: each resolved (a missing library fails them all,
    before anything runs); repeated names once."""
    items = [s.strip() for s in text.split(",") if s.strip()]
    if not items:
        raise AllocatorError("--allocators names no allocator")
    seen: dict[str, Allocator] = {}
    for item in items:
        a = resolve(item)
        seen.setdefault(a.name, a)
    return list(seen.values())


def process_env(allocator: Allocator, base: dict[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with ``allocator``'s settings and nothing of
    another's: a parent's LD_PRELOAD, GLIBC_TUNABLES or MALLOC_CONF would otherwise leak in."""
    env = dict(os.environ if base is None else base)
    for var in ("LD_PRELOAD", "GLIBC_TUNABLES", "MALLOC_CONF"):
        env.pop(var, None)
    env.update(allocator.env)
    env[ACTIVE] = allocator.name
    return env


def active_name() -> str:
    """The setting this process was started under: as normbench named it, else read from the
    environment (a preloaded library by its file name, the warm tunables, or ``system``)."""
    if os.environ.get(ACTIVE):
        return os.environ[ACTIVE]
    if os.environ.get("LD_PRELOAD"):
        return Path(os.environ["LD_PRELOAD"].split(":")[0].split()[0]).name
    if os.environ.get("GLIBC_TUNABLES") == WARM_TUNABLES:
        return "warm"
    return "system" if not os.environ.get("GLIBC_TUNABLES") else "glibc tunables"


def current(expected: Allocator) -> bool:
    """Whether this process was started under ``expected``'s settings."""
    return active_name() == expected.name and all(os.environ.get(k) == v for k, v in expected.env.items())


def describe() -> dict:
    """What this process runs under, for the environment record, with evidence that it took
    effect: the preloaded library mapped into the process, and the page faults of allocating,
    touching and freeing a 16 MiB block ten times (near zero when freed memory stays mapped)."""
    name = active_name()
    env = {k: os.environ[k] for k in ("GLIBC_TUNABLES", "LD_PRELOAD", "MALLOC_CONF") if k in os.environ}
    known = KNOWN.get(name)
    meaning = known.meaning if known else "preloaded" if env.get("LD_PRELOAD") else "glibc with custom tunables"
    out: dict = {"name": name, "settings": env, "meaning": meaning}
    preload = env.get("LD_PRELOAD")
    if preload:
        out["preload_mapped"] = _mapped(preload)
    out["probe_faults_per_mb"] = probe_faults_per_mb()
    return out


def _mapped(path: str) -> bool | None:
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        return None
    return os.path.realpath(path) in maps or path in maps


PROBE_MB = 16


def probe_faults_per_mb(rounds: int = 10) -> float | None:
    """Minor page faults per MiB of a malloc'd, written and freed 16 MiB block, after a first
    round: the allocator behaviour a norm's output sees on every call."""
    libc = ctypes.CDLL(None)  # the process's own symbols: a preloaded malloc, as the frameworks get it
    libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    size = PROBE_MB * 2**20

    def once() -> None:
        p = libc.malloc(size)
        if not p:
            raise MemoryError
        ctypes.memset(p, 1, size)
        libc.free(p)

    once()
    start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(rounds):
        once()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start) / rounds / PROBE_MB
