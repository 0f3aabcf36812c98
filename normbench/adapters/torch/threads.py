"""torch's intra-op pool: torch.set_num_threads once torch is imported (it reads OMP_NUM_THREADS too)."""

from __future__ import annotations

import sys

MODULES = ("torch",)
ENV_VARS: tuple[str, ...] = ()


def apply(n: int) -> None:
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)


def report() -> dict:
    return {"torch": sys.modules["torch"].get_num_threads()} if "torch" in sys.modules else {}
