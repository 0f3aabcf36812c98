from __future__ import annotations

import os

import pytest

from normbench.adapters import registry

BUILTIN = list(registry.BUILTIN)


@pytest.fixture(params=BUILTIN)
def builtin_adapter(request):
    """Each built-in adapter; a missing framework skips, or fails where all are required."""
    adapter = registry.get(request.param)
    missing = adapter.missing()
    if missing:
        message = f"{adapter.name}: not installed: {adapter.install_hint()}"
        if os.environ.get("NORMBENCH_REQUIRE_ALL"):
            pytest.fail(message + " (NORMBENCH_REQUIRE_ALL is set)")
        pytest.skip(message)
    return adapter
