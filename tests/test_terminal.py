"""pytest's failure summary stays linear in the number of failures (normbench/terminal.py)."""

from __future__ import annotations

pytest_plugins = ["pytester"]

FAILURES = 150

TESTS = f"""
import pytest

@pytest.fixture
def noisy():
    yield
    print("teardown of", id(object()))

@pytest.mark.parametrize("i", range({2 * FAILURES}))
def test_half_fail(noisy, i):
    assert i % 2 == 0
"""

# Counts the reporter's scans of every report of the session (``getreports("")``), which pytest
# makes once per failure to find that failure's teardown reports.
COUNTING = """
import atexit, _pytest.terminal as terminal

scans = []
original = terminal.TerminalReporter.getreports

def getreports(self, name):
    if name == "":
        scans.append(1)
    return original(self, name)

terminal.TerminalReporter.getreports = getreports
atexit.register(lambda: print("SCANS", len(scans)))
"""


def test_the_failure_summary_scans_the_reports_once_and_still_shows_each_teardown(pytester):
    pytester.makepyfile(TESTS)
    pytester.makeconftest(COUNTING)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=FAILURES, failed=FAILURES)
    scans = int(next(line for line in result.outlines if line.startswith("SCANS")).split()[1])
    assert scans <= 2, scans  # pytest alone: one per failure
    # what the lookup returns is unchanged: every failure still shows its teardown's output
    assert sum("Captured stdout teardown" in line for line in result.outlines) == FAILURES
