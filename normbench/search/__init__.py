"""Property-based search for the worst input (``normbench search``), with Hypothesis.

``strategies`` draws ordinary :class:`~normbench.ops.case.Case` objects over every op's case space,
``explore`` runs the usual checks on each drawn case and steers Hypothesis toward the largest
error / tolerance, ``profile`` holds the settings, ``budget`` shares an adapter's seconds among its
op searches, ``coverage`` tallies what each search ran (``reports.search_summary`` says it in one line per
adapter), and ``case_ids`` turns a case id back into its case, so a failure found by search reruns from its
record alone.
"""

from ..results.kinds import Suite

SUITE = Suite.SEARCH  # the suite name search records carry
ROLES = ("failure", "worst_known", "worst_pass", "skipped")  # what a search writes (``replay`` is a rerun's)


def add_options(group) -> None:
    """The search suite's pytest options (``normbench search`` passes its own through them). Here,
    not in the suite, because pytest options come from plugins; imports nothing (no Hypothesis)."""
    group.addoption("--search-ops", default=None, help="search: comma-separated ops (default: every op)")
    group.addoption("--search-max-examples", type=int, default=None,
                    help="search: examples per adapter and op (default: the normbench-ci profile's 8, unless "
                         "--search-budget is given)")
    group.addoption("--search-budget", type=float, default=None,
                    help="search: seconds per adapter, shared by its ops; with --search-max-examples, whichever "
                         "ends first (default: none, the example count)")
    group.addoption("--search-seed", type=int, default=None, help="search: seed (default: random)")
    group.addoption("--search-database", default=None,
                    help="search: Hypothesis example database folder; past failures replay first "
                         "(default: search-db beside the results file)")
    group.addoption("--search-replay", default=None,
                    help="search: run the checks on these comma-separated case ids instead of searching")
