"""Verification and benchmark suites, run with ``pytest --pyargs normbench.suites``."""
