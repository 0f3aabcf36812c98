"""pytest's failure summary in linear time.

For each failed test, pytest's terminal reporter looks up that test's teardown reports by
scanning every report of the session (``TerminalReporter._get_teardown_reports``), so a run
with F failures among R reports spends O(F·R) after its last test: 30–50 s of a suite run with
1,700 failures (a broken kernel, or the meta-tests' planted bugs), longer than the tests
themselves. Upstream: https://github.com/pytest-dev/pytest/issues/13360. The lookup is replaced
by an index built once per change of the report list; what it returns, and so the output, is
the same. A pytest without that method keeps its own.
"""

from __future__ import annotations

from collections import defaultdict

import pytest


def index_teardowns(config: pytest.Config) -> None:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not callable(getattr(reporter, "_get_teardown_reports", None)):
        return
    cache: dict[str, object] = {"size": None, "by_id": {}}

    def teardown_reports(node_id: str) -> list:
        reports = reporter.stats.get("", [])
        if cache["size"] != len(reports):
            by_id = defaultdict(list)
            for report in reporter.getreports(""):
                if report.when == "teardown":  # pytest 9 passes the structured ``id``, older pytest the string
                    for key in {report.nodeid, getattr(report, "id", report.nodeid)}:
                        by_id[key].append(report)
            cache.update(size=len(reports), by_id=by_id)
        return list(cache["by_id"].get(node_id, ()))

    reporter._get_teardown_reports = teardown_reports
