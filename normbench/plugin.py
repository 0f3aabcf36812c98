"""pytest plugin: picks adapters (--adapters), parametrizes suites over them, records results.

Loaded through the ``pytest11`` entry point, so it must stay cheap: it imports no framework,
and works without pytest-xdist. Under xdist each worker writes its own part of the results
file, and the controller merges the parts when the session ends, then judges the known
divergences over every worker's records.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import sys
import traceback
from collections import Counter
from collections.abc import Mapping
from pathlib import Path

import pytest

from . import search, terminal
from .adapters import compile_cache, registry
from .bench import lock
from .bench.environment import environment
from .ops.case import Case
from .results import records
from .results.kinds import Check, Outcome
from .results.records import Record, ResultsFile
from .verify import known
from .verify.cases import MATRICES, in_short_matrix


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("normbench")
    group.addoption(
        "--adapters", default=None,
        help="comma-separated adapter names or module:Class (default: every known adapter)",
    )
    group.addoption(
        "--modes", default=None,
        help="execution modes to add to each adapter's default: compiled, all, or mode names, comma-separated "
             "(`normbench list` shows each adapter's; an adapter named as <name>+<mode> runs in that mode alone)",
    )
    group.addoption(
        "--matrix", default="full", choices=MATRICES,
        help="full: every case (the default); short: each op's stress configuration in float32 and bfloat16 "
             "alone, the matrix normbench run verifies the compiled modes it adds on",
    )
    group.addoption("--bench-dtypes", default=None,
                    help="benchmark dtypes, comma-separated (default: each op's own, float32 and for "
                         "RMSNorm bfloat16 too)")
    group.addoption("--bench-quick", action="store_true", help="tiny benchmark shapes (tests the harness)")
    group.addoption("--bench-no-sweeps", action="store_true", help="time the default shapes only, not the sweeps")
    group.addoption("--bench-repeats", type=int, default=3,
                    help="timed blocks per case, spread over the run and pooled (default 3)")
    group.addoption("--bench-first-repeat", type=int, default=0,
                    help="index of the first repeat, when repeats run in separate processes (normbench run)")
    group.addoption(
        "--results", default=None,
        help="results file to write (JSON Lines); default normbench-results/<time>/results.jsonl",
    )
    search.add_options(group)


def _default_results() -> Path:
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("normbench-results") / stamp / "results.jsonl"


_RESULTS_INPUT = "normbench_results"  # the controller's results file, handed to each xdist worker
_SUITES = "normbench.suites"  # the package a verification session names (``--pyargs``)


def _role(config: pytest.Config) -> str:
    """``worker`` or ``controller`` under pytest-xdist, else ``single``."""
    if hasattr(config, "workerinput"):
        return "worker"
    # xdist's own test (xdist.plugin._is_distribution_mode), already settled by its
    # pytest_cmdline_main; without xdist (or with -p no:xdist) these options do not exist.
    if (config.getoption("dist", "no") != "no" and config.getoption("tx", None)
            and not config.getoption("collectonly", False)):
        return "controller"
    return "single"


def classify(rec: Record) -> None:
    """Turn a failure a known divergence explains (within its envelope) into ``known``, in place; one
    it matches but does not explain stays a failure that names the entry. Counts nothing (the search
    classifies every example this way, and writes only what it found)."""
    if rec.outcome in (Outcome.FAIL, Outcome.ERROR):
        row = dataclasses.asdict(rec)
        entry, within, why = known.explain(row)
        if entry is not None:
            bound = {"envelope": entry.bound(row), "within_envelope": why, "reason": entry.reason}
            if within:
                rec.outcome = Outcome.KNOWN
                rec.facts = {**rec.facts, "known": entry.key, "link": entry.link, **bound}
                rec.message = f"known divergence {entry.key} ({why}): {entry.reason} ({entry.link}); {rec.message}"
            else:  # a new failure where an old one is expected: the entry must not hide it
                rec.facts = {**rec.facts, "outside_known": entry.key, "link": entry.link, **bound}
                rec.message = f"outside known divergence {entry.key}'s envelope ({why}); {rec.message}"


class Recorder:
    """Writes the records of one pytest session to its results file.

    ``single``: records go straight to the results file, flushed one by one. ``worker``: the
    same, into the worker's part (``results.gw0.jsonl``). ``controller``: nothing until the
    session ends, then :meth:`merge` makes the results file from the parts.
    """

    def __init__(self, config: pytest.Config) -> None:
        # Loaded into every pytest run where normbench is installed: resolve adapters only
        # when asked for by name, or when a suite needs them.
        option = config.getoption("--adapters")
        self._modes = config.getoption("--modes")
        self._adapters = None
        if option or self._modes:
            try:
                self._adapters = registry.with_modes(registry.select(option or None), self._modes)
            except registry.UnknownAdapter as exc:
                raise pytest.UsageError(str(exc)) from None
        self.role = _role(config)
        path = config.workerinput.get(_RESULTS_INPUT) if self.role == "worker" else None
        path = path or config.getoption("--results")
        self.path = Path(path) if path else _default_results()
        target = self.path
        if self.role == "worker":
            target = records.part_path(self.path, config.workerinput["workerid"])
        if target.exists():
            raise pytest.UsageError(f"results file {target} already exists; not overwriting it")
        leftovers = records.parts_of(self.path) if self.role == "controller" else []
        if leftovers:
            raise pytest.UsageError(
                f"{leftovers[0]} is left from an earlier run with -n (pytest-xdist) into {self.path}, "
                "a results file of its own (normbench report reads it): move it away, or choose "
                "another results file"
            )
        self.file = ResultsFile(target, env=environment())
        self.count = 0
        self.exercised: dict[str, Record] = {}  # known divergence -> first record it covered
        self.reproduced: set[str] = set()
        self.stale_records: list[Record] = []
        self.notes: list[str] = []  # controller: what the merge kept aside, for the summary
        self.outcomes: dict[str, Counter] = {}  # adapter -> records written, by outcome
        self.lock = contextlib.ExitStack()  # the machine lock, while this session runs normbench suites

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
                "install": a.install_hint(), "class": registry.class_ref(a), "dtypes": sorted(a.dtypes),
                "features": sorted(a.features), "ops": sorted(a.ops),
                **({"mode": a.mode.name, "mode_settings": a.mode.how} if a.mode is not None else {}),
            }
        return out

    def classify(self, rec: Record) -> None:
        """Turn a failure a known divergence explains (within its envelope) into ``known``, and count it."""
        classify(rec)
        self.count_known(rec)

    def count_known(self, rec: Record) -> None:
        """Which known divergences a classified record exercised, and which it reproduced. A pass
        exercises every entry whose conditions it meets; a failure only the entry that explains it
        (another entry that also matches was not put to the test). A skip ran nothing (Keras on
        another backend, a missing feature), so it exercises nothing."""
        if rec.outcome == Outcome.KNOWN:
            self.exercised.setdefault(rec.facts["known"], rec)
            self.reproduced.add(rec.facts["known"])
        elif rec.suite == search.SUITE:  # a search's records are its own picks, not a matrix: besides
            return  # reproducing an entry, they never put one to the test (nor make it stale)
        elif rec.outcome == Outcome.PASS:
            for entry in known.matching(dataclasses.asdict(rec)):
                self.exercised.setdefault(entry.key, rec)
        elif rec.outcome in (Outcome.FAIL, Outcome.ERROR) and rec.facts.get("outside_known"):
            self.exercised.setdefault(rec.facts["outside_known"], rec)

    def stale(self) -> dict[str, Record]:
        """Known divergences this run exercised that never failed, as failing records."""
        out = {}
        for key, rec in self.exercised.items():
            if key not in self.reproduced:
                entry = next(k for k in known.KNOWN if k.key == key)
                out[key] = dataclasses.replace(
                    rec, check=Check.KNOWN_DIVERGENCE, outcome=Outcome.FAIL,
                    facts={"known": key, "link": entry.link, "reason": entry.reason},
                    message=f"known divergence {key} did not reproduce on {rec.adapter} {rec.framework_version}: "
                            f"fixed upstream? Update its entry in adapters/<framework>/known.py ({entry.link})",
                )
        return out

    def take_machine(self, exclusive: bool) -> None:
        """The machine lock for this session, unless ``normbench run`` holds it for this process;
        what was held and how long it took to get goes into the environment record."""
        def waiting() -> None:
            print(f"normbench: waiting for the machine: another normbench process holds it "
                  f"({'a benchmark runs alone' if exclusive else 'a benchmark is running'}; lock {lock.LOCK})",
                  file=sys.stderr, flush=True)

        held = self.lock.enter_context(lock.machine_unless_held(exclusive, waiting))
        self.file.extra_env["machine_lock"] = held

    def add(self, rec: Record) -> None:
        if not self.count:  # the environment record goes out with the first result
            self.file.extra_env.setdefault("adapters", self.inventory())
        self.file.add(rec)
        self.count += 1
        self.tally(rec.adapter, rec.outcome)

    def tally(self, adapter: str, outcome: Outcome) -> None:
        self.outcomes.setdefault(adapter, Counter())[outcome] += 1

    def mostly_skipped(self) -> list[str]:
        """A line for each adapter that skipped more checks than it ran: coverage lost, said aloud."""
        out = []
        for name, seen in self.outcomes.items():
            skipped = seen[Outcome.SKIP]
            if skipped > sum(seen.values()) - skipped:
                ref = next((a.ref or a.name for a in self._adapters or () if a.name == name), name)
                out.append(f"{name}: {skipped} of {sum(seen.values())} records are skips, more than ran; "
                           f"`normbench check-adapter {ref}` says what it declares and why each skips")
        return out

    def merge(self) -> list[Path]:
        """Controller: the workers' parts, in worker order, into the results file (the first
        worker's environment record, filled in from the others', then every check), counted
        for the known divergences. Returns the parts, to remove once the file is complete."""
        parts = records.parts_of(self.path)
        env: dict = {}
        rows: list[dict] = []
        for part in parts:
            part_env, checks, bad = records.read_part(part)
            for key, value in part_env.items():
                env.setdefault(key, value)
            rows += checks
            if bad:  # a worker died mid-line: keep those bytes beside, like normbench's runner does
                aside = part.with_name(part.name + ".partial")
                with open(aside, "x", encoding="utf-8", errors="surrogateescape") as fh:
                    fh.writelines(line if line.endswith("\n") else line + "\n" for _, line in bad)
                self.notes.append(f"{len(bad)} unreadable line(s) of {part.name} kept in {aside.name}: {bad[0][0]}")
        if not parts:
            return parts
        self.file = ResultsFile(self.path, extra_env=self.file.extra_env, env=env or environment())
        self.file.open()
        for row in rows:
            self.file.add_row(row)
            self.count += 1
            rec = Record.from_row(row)
            self.count_known(rec)
            self.tally(rec.adapter, rec.outcome)
        return parts


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: every worker writes its part of this run's results file."""
    node.workerinput[_RESULTS_INPUT] = str(node.config.stash[_KEY].path.absolute())


def shares_compile_cache(args: list[str], modules: Mapping[str, object] = sys.modules) -> bool:
    """Whether a session verifies with normbench's suites (``--pyargs normbench.suites…``) and no benchmark, while
    no compiler has read its cache variables yet: then it keeps its compiles in the user's cache as `verify` does."""
    ours = [a.split("::")[0] for a in args]
    return (bool(ours) and all(a == _SUITES or a.startswith(_SUITES + ".") for a in ours)
            and f"{_SUITES}.speed" not in ours and not any(m in modules for m in ("jax", "tensorflow", "torch")))


def pytest_configure(config: pytest.Config) -> None:
    # keras's TF backend calls np.array(tensor, copy=False) on every conversion; not ours to fix.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    )
    if shares_compile_cache(config.args):  # before the environment record below, and before any framework starts
        os.environ.update(compile_cache.environ(os.environ, compile_cache.default_folder()))
    config.stash[_KEY] = Recorder(config)


def pytest_sessionstart(session: pytest.Session) -> None:
    terminal.index_teardowns(session.config)  # once the terminal reporter is registered


def pytest_unconfigure(config: pytest.Config) -> None:
    recorder = config.stash.get(_KEY, None)
    if recorder is not None:
        recorder.file.close()
        recorder.lock.close()


def pytest_collection_finish(session: pytest.Session) -> None:
    """A session that runs normbench's suites takes the machine lock before its first test:
    exclusive when it times anything. Under xdist each worker takes it (shared: xdist never
    runs benchmarks), not the controller, which collects nothing itself."""
    recorder = session.config.stash.get(_KEY, None)
    if recorder is None or recorder.role == "controller":
        return
    ours = [item for item in session.items if "norm_adapter" in getattr(item, "fixturenames", ())]
    if ours:
        recorder.take_machine(exclusive=any("timed_benchmark" in item.fixturenames for item in ours))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """``--matrix short``: deselect every suite test but those on a case of the short matrix."""
    if config.getoption("--matrix", "full") != "short":
        return
    kept, dropped = [], []
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        case = params.get("case")
        ours = "norm_adapter" in getattr(item, "fixturenames", ())
        (dropped if ours and not (isinstance(case, Case) and in_short_matrix(case)) else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


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
            try:
                recorder.classify(rec)
            except Exception as exc:  # normbench's own fault: the record must still reach the file
                rec.outcome = Outcome.ERROR
                rec.message = (f"normbench could not match this record against its known divergences "
                               f"({type(exc).__name__}: {exc}); the check said: {rec.message}")
                rec.facts = {**rec.facts, "traceback": traceback.format_exc()}
            if rec.outcome in (Outcome.FAIL, Outcome.ERROR, Outcome.KNOWN):
                rec.rerun = rec.rerun or f"{rerun} --adapters '{norm_adapter.ref or norm_adapter.name}'"
                rec.message = f"{rec.message}; rerun: {rec.rerun}"
            recorder.add(rec)
        bad = [r for r in records if r.outcome in (Outcome.FAIL, Outcome.ERROR)]
        if bad:
            tracebacks = [r.facts["traceback"] for r in bad if r.facts.get("traceback")]
            pytest.fail("\n".join([f"{r.check} [{r.outcome}] {r.message}" for r in bad] + tracebacks[:1]),
                        pytrace=False)
        known = [r for r in records if r.outcome == Outcome.KNOWN]
        if known:  # pytrace=False: what an xfail shows is its reason; the traceback pytest.xfail() has formatted
            # for each one, which nothing shows, was an eighth of a keras[jax] suite run (403 known records)
            raise pytest.xfail.Exception(known[0].message, pytrace=False)
        if records and all(r.outcome == Outcome.SKIP for r in records):
            pytest.skip(records[0].message)
        return records

    return write


@pytest.hookimpl(trylast=True)  # under xdist: after the workers have been shut down
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Strict known divergences: one that was exercised but never failed makes the run fail.
    Under xdist the controller judges that over every worker's records, once merged."""
    recorder = session.config.stash.get(_KEY, None)
    if recorder is None or recorder.role == "worker":
        return
    try:
        parts = recorder.merge() if recorder.role == "controller" else []
    except OSError as exc:  # e.g. something created the results file meanwhile: the parts stay
        recorder.notes.append(f"could not merge the workers' parts into {recorder.path} ({exc}); "
                              "every record is still in the parts beside it")
        session.exitstatus = pytest.ExitCode.INTERNAL_ERROR
        return
    # A divergence not yet reproduced in a run cut short might have reproduced later in it.
    if session.exitstatus != pytest.ExitCode.INTERRUPTED:
        recorder.stale_records = list(recorder.stale().values())
    for rec in recorder.stale_records:
        recorder.add(rec)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    if parts:
        recorder.file.close()  # complete on disk: only now can the parts go
        for part in parts:
            part.unlink()


def pytest_terminal_summary(terminalreporter, config: pytest.Config) -> None:
    recorder = config.stash.get(_KEY, None)
    if recorder is None or recorder.role == "worker":
        return
    for note in recorder.notes + recorder.mostly_skipped():
        terminalreporter.write_line(f"normbench: {note}", yellow=True)
    for rec in recorder.stale_records:
        terminalreporter.write_line(f"XPASS(strict) {rec.message}", red=True)
    if recorder.count:
        terminalreporter.write_line(f"normbench: {recorder.count} records written to {recorder.path}")


_KEY = pytest.StashKey[Recorder]()


def results_path(config: pytest.Config) -> Path:
    """The results file this session writes (the controller's, under xdist)."""
    return config.stash[_KEY].path


def add_to_environment(config: pytest.Config, key: str, value) -> None:
    """Add a measurement (memory bandwidth) to the run's environment record, which is
    written with the first result."""
    config.stash[_KEY].file.extra_env[key] = value
