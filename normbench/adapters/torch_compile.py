"""torch.compile as normbench's compiled torch modes run it, shared by the torch adapter and Keras on torch."""

from __future__ import annotations

from typing import Any

# Inductor builds its CPU kernels with a C++ compiler: a compiled mode without one is a skip naming the package.
CXX = ((("g++", "c++", "clang++"), "apt-get install g++ (Inductor builds its CPU kernels with a C++ compiler)"),)


def torch_compile(fn: Any, **options: Any) -> Any:
    """``torch.compile(fn, dynamic=False, **options)`` with recompile limits no run reaches, and reaching
    one an error: Dynamo's default, after 8 recompiles of one function (256 in all), is to run it eager
    from then on without a word, which would verify and time eager under a compiled mode's name. Static
    shapes, so a case compiles as its own rerun does, whatever ran before it."""
    import torch

    torch._dynamo.config.recompile_limit = torch._dynamo.config.accumulated_recompile_limit = 1_000_000
    torch._dynamo.config.fail_on_recompile_limit_hit = True
    return torch.compile(fn, dynamic=False, **options)
