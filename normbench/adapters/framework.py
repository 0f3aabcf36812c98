"""What a framework package tells normbench about itself, as plain data (importing it imports
no framework).

Every framework is a package under ``normbench.adapters`` (or a third party's, registered under the
``normbench.frameworks`` entry-point group) with the same module names, like Keras's
``backend/<name>/``: ``__init__.py`` holds its ``FRAMEWORK`` descriptor; ``layers.py`` its Adapter and
Layer classes (one module per API path where a framework has several, e.g. ``flax/linen.py``);
``replicas.py`` its synchronized path; ``known.py`` its known divergences (``KNOWN``); ``threads.py``
its thread set-up; ``compile_cache.py`` where its compiler keeps what it compiled (``adapters.compile_cache``).
A framework without a module's concern omits the module (numpy has no ``known.py``; TensorFlow's threads
and XLA cache are set up once, in ``keras/``, for tf_keras too, and JAX's cache in ``flax/``, for keras[jax]
too). What its layers and replicas share sits in a module of its own (``torch/native.py``,
``keras/native.py``, ``flax/common.py``), so neither imports the other.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType

# The one line that registers a built-in framework: its package under normbench.adapters, in the
# order `normbench list` shows their adapters.
FRAMEWORKS = ("numpy", "torch", "flax", "keras", "tf_keras", "onnxruntime")
ENTRY_POINT_GROUP = "normbench.frameworks"  # entry points naming a third party's framework package


@dataclass(frozen=True)
class Framework:
    """One framework package. ``adapters`` maps each adapter name to ``module:Class``, the module
    relative to the package (``.layers:TorchAdapter``) or absolute; ``distributions`` are the
    wheels whose versions the environment record carries; ``extra`` the pip extra installing it;
    ``family`` (label, adapter) the adapter the harness self-check times for it, if any;
    ``host_devices`` a ``module:function`` (``environ, count -> environ``) giving a process
    ``count`` host devices before the framework starts, for the synchronized suite."""

    name: str
    adapters: Mapping[str, str]
    distributions: tuple[str, ...] = ()
    extra: str | None = None
    family: tuple[str, str] | None = None
    host_devices: str | None = None
    package: str = field(default="", compare=False)  # set by the registry: where the package lives

    def ref(self, ref: str) -> str:
        """``ref`` with a module relative to this package (``.layers:TorchAdapter``) made absolute."""
        return self.package + ref if ref.startswith(".") else ref


def _descriptor(package: str) -> Framework:
    return dataclasses.replace(importlib.import_module(package).FRAMEWORK, package=package)


@cache
def builtin() -> tuple[Framework, ...]:
    return tuple(_descriptor(f"{__package__}.{name}") for name in FRAMEWORKS)


@cache
def frameworks() -> tuple[Framework, ...]:
    """Every framework package: the built-in ones, then those registered by entry point."""
    ours = {f.package for f in builtin()}
    extra = dict.fromkeys(ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))
    return (*builtin(), *(_descriptor(p) for p in extra if p not in ours))


def module(framework: Framework, name: str) -> ModuleType | None:
    """The framework package's module ``name`` (``known``, ``threads``, ``replicas``), or None where
    the package has none: a framework without a module's concern omits the module."""
    qualified = f"{framework.package}.{name}"
    return importlib.import_module(qualified) if importlib.util.find_spec(qualified) else None


def modules(name: str) -> list[ModuleType]:
    """Every framework's module ``name``, where it has one."""
    return [m for f in frameworks() if (m := module(f, name)) is not None]


def resolve(framework: Framework, ref: str):
    """The object a ``module:attr`` reference of ``framework`` names (relative modules start with '.')."""
    module_name, _, attr = framework.ref(ref).partition(":")
    return getattr(importlib.import_module(module_name), attr)


def distributions() -> tuple[str, ...]:
    """Every framework's distributions, each once, in the frameworks' order."""
    return tuple(dict.fromkeys(d for f in frameworks() for d in f.distributions))


def families() -> dict[str, str]:
    """Self-check family label -> the adapter the self-check times for it."""
    return dict(f.family for f in frameworks() if f.family)
