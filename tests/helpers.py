"""Run normbench and pytest as a user would: in a fresh subprocess."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from normbench.adapters import registry

ROOT = Path(__file__).resolve().parent.parent
FRAMEWORKS = registry.requires()  # every module a framework package's adapters import


def run_python(code: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 300,
               args: list[str] = ()):
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=cwd or ROOT, capture_output=True, text=True,
        timeout=timeout, env={**os.environ, **(env or {})},
    )


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 300, env: dict | None = None):
    exe = Path(sys.executable).with_name("normbench")
    return subprocess.run(
        [str(exe), *args], cwd=cwd or ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def blocking(*modules: str) -> str:
    """Python source that makes ``modules`` look uninstalled, as if never pip-installed."""
    return "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules)


def one_line_error(proc, *expected: str) -> str:
    """Exit 2 and one line on stderr holding every expected piece; returns the line."""
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and all(e in lines[0] for e in expected), proc.stderr
    return lines[0]


def section(page: str, key: str) -> str:
    """The body of a rendered report page's section ``key`` (its aria-labelledby id)."""
    return re.search(rf'<section aria-labelledby="{key}">(.*?)</section>', page, flags=re.S).group(1)


def browser_dom(page: str, tmp_path: Path) -> str:
    """The DOM headless Chromium builds from a rendered report page (skips without Chromium)."""
    import shutil

    import pytest

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("chromium not installed")
    path = tmp_path / "report.html"
    path.write_text(page, encoding="utf-8")
    proc = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / 'p'}",
                           "--dump-dom", path.as_uri()], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout
