"""pytest plugin: picks adapters (--adapters), parametrizes suites over them, records results.

Loaded through the ``pytest11`` entry point, so it must stay cheap: it imports no framework.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import pytest

from . import known
from .adapters import registry
from .records import Record, ResultsFile


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("normbench")
    group.addoption(
        "--adapters", default=None,
        help="comma-separated adapter names or module:Class (default: every known adapter)",
    )
    group.addoption("--bench-dtypes", default="float32", help="benchmark dtypes, comma-separated (default float32)")
    group.addoption("--bench-quick", action="store_true", help="tiny benchmark shapes (tests the harness)")
    group.addoption("--bench-repeats", type=int, default=3,
                    help="timed blocks per case, spread over the run and pooled (default 3)")
    group.addoption(
        "--results", default=None,
        help="results file to write (JSON Lines); default normbench-results/<time>/results.jsonl",
    )


def _default_results() -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("normbench-results") / stamp / "results.jsonl"


class Recorder:
    """Writes the records of one pytest session to its results file."""

    def __init__(self, config: pytest.Config) -> None:
        # Loaded into every pytest run where normbench is installed: resolve adapters only
        # when asked for by name, or when a suite needs them.
        option = config.getoption("--adapters")
        self._adapters = None
        if option:
            try:
                self._adapters = registry.select(option)
            except registry.UnknownAdapter as exc:
                raise pytest.UsageError(str(exc)) from None
        path = config.getoption("--results")
        self.path = Path(path) if path else _default_results()
        if self.path.exists():
            raise pytest.UsageError(f"results file {self.path} already exists; not overwriting it")
        self.file = ResultsFile(self.path)
        self.count = 0
        self.exercised: dict[str, Record] = {}  # known divergence -> first record it covered
        self.reproduced: set[str] = set()
        self.stale_records: list[Record] = []

    @property
    def adapters(self) -> list:
        if self._adapters is None:
            self._adapters = registry.select(None)
        return self._adapters

    def inventory(self) -> dict[str, dict]:
        """Every selected adapter: installed or not, version, install hint."""
        out = {}
        for a in self.adapters:
            missing = a.missing()
            out[a.name] = {
                "installed": not missing, "version": None if missing else a.version(),
                "install": a.install_hint(), "dtypes": sorted(a.dtypes),
                "features": sorted(a.features), "ops": sorted(a.ops),
            }
        return out

    def classify(self, rec: Record) -> None:
        """Turn a failure covered by a known divergence into ``known``; count per entry."""
        entry = known.lookup(dataclasses.asdict(rec))
        if entry is None:
            return
        self.exercised.setdefault(entry.key, rec)
        if rec.outcome in ("fail", "error"):
            self.reproduced.add(entry.key)
            rec.outcome = "known"
            rec.facts = {**rec.facts, "known": entry.key, "link": entry.link}
            rec.message = f"known divergence {entry.key}: {entry.reason} ({entry.link}); {rec.message}"

    def stale(self) -> dict[str, Record]:
        """Known divergences this run exercised that never failed, as failing records."""
        out = {}
        for key, rec in self.exercised.items():
            if key not in self.reproduced:
                entry = next(k for k in known.KNOWN if k.key == key)
                out[key] = dataclasses.replace(
                    rec, check="known_divergence", outcome="fail", facts={"known": key, "link": entry.link},
                    message=f"known divergence {key} did not reproduce on {rec.adapter} {rec.framework_version}: "
                            f"fixed upstream? Update normbench/known.py ({entry.link})",
                )
        return out

    def add(self, rec: Record) -> None:
        if not self.count:  # the environment record goes out with the first result
            self.file.extra_env.setdefault("adapters", self.inventory())
        self.file.add(rec)
        self.count += 1


def pytest_configure(config: pytest.Config) -> None:
    # keras's TF backend calls np.array(tensor, copy=False) on every conversion; not ours to fix.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    )
    config.stash[_KEY] = Recorder(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(_KEY, None)
    if recorder is not None:
        recorder.file.close()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "norm_adapter" in metafunc.fixturenames:
        adapters = metafunc.config.stash[_KEY].adapters
        metafunc.parametrize("norm_adapter", adapters, ids=[a.name for a in adapters], indirect=True)


@pytest.fixture
def norm_adapter(request: pytest.FixtureRequest):
    """The adapter under test; a missing framework is a skip with its install hint."""
    a = request.param
    missing = a.missing()
    if missing:
        pytest.skip(f"{a.name}: not installed ({', '.join(missing)}): {a.install_hint()}")
    return a


@pytest.fixture
def norm_record(request: pytest.FixtureRequest, norm_adapter):
    """Write records to the results file. The test fails if a check failed or errored
    unexpectedly, and is an xfail if every failure is a known divergence."""
    recorder: Recorder = request.config.stash[_KEY]

    def write(records: list[Record]) -> list[Record]:
        rerun = f"pytest '{request.node.path}::{request.node.name}'"
        for rec in records:
            recorder.classify(rec)
            if rec.outcome in ("fail", "error", "known"):
                rec.rerun = f"{rerun} --adapters '{norm_adapter.ref or norm_adapter.name}'"
                rec.message = f"{rec.message}; rerun: {rec.rerun}"
            recorder.add(rec)
        bad = [r for r in records if r.outcome in ("fail", "error")]
        if bad:
            pytest.fail("\n".join(f"{r.check} [{r.outcome}] {r.message}" for r in bad), pytrace=False)
        known = [r for r in records if r.outcome == "known"]
        if known:
            pytest.xfail(known[0].message)
        if records and all(r.outcome == "skip" for r in records):
            pytest.skip(records[0].message)
        return records

    return write


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Strict known divergences: one that was exercised but never failed makes the run fail."""
    recorder = session.config.stash.get(_KEY, None)
    if recorder is None:
        return
    recorder.stale_records = list(recorder.stale().values())
    for rec in recorder.stale_records:
        recorder.add(rec)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    recorder = config.stash.get(_KEY, None)
    if recorder is None:
        return
    for rec in recorder.stale_records:
        terminalreporter.write_line(f"XPASS(strict) {rec.message}", red=True)
    if recorder.count:
        terminalreporter.write_line(f"normbench: {recorder.count} records written to {recorder.path}")


_KEY = pytest.StashKey[Recorder]()


def add_to_environment(config: pytest.Config, key: str, value) -> None:
    """Add a measurement (memory bandwidth) to the run's environment record, which is
    written with the first result."""
    config.stash[_KEY].file.extra_env[key] = value
