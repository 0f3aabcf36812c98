"""`normbench list`: every adapter and op, installed or how to install it."""

from __future__ import annotations

import argparse

from .. import ops
from ..adapters import registry


def add(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("list", help="list known adapters").set_defaults(func=list_adapters)


def list_adapters(_: argparse.Namespace) -> int:
    """Every adapter × op: installed and its version, or the install hint; what it runs and where."""
    adapters = [registry.get(name) for name in registry.known()]
    width = max(len(a.name) for a in adapters)
    head = "  ".join(f"{op.name:<13}" for op in ops.all())
    print(f"{'adapter':<{width}}  {head}  status")
    for a in adapters:
        missing = a.missing()
        status = f"not installed: {a.install_hint()}" if missing else f"installed {a.version()}"
        built = "  ".join(f"{('builds' if op.name in a.ops else '-'):<13}" for op in ops.all())
        process = f"process: {a.group or a.name}" + "".join(f" {k}={v}" for k, v in a.environment.items())
        print(f"{a.name:<{width}}  {built}  {status}")
        print(f"{'':<{width}}  dtypes: {','.join(sorted(a.dtypes))}  features: {','.join(sorted(a.features))}  "
              f"{process}")
        for i, (mode, named) in enumerate(zip(a.modes, a.every_mode(), strict=True) if len(a.modes) > 1 else ()):
            less = f"; without {','.join(f for f, _ in mode.lacks)}" if mode.lacks else ""
            kind = "default" if i == 0 else "compiled" if mode.compiled else "other"
            print(f"{'':<{width}}  mode {mode.name} ({kind}): {mode.how}{less}  -> --adapters {named}")
    return 0
