"""The Hypothesis settings every search runs under, and where its example database lives.

One registered profile, ``normbench-ci``: no deadline (a framework's first call on a new shape
compiles, which is not slowness worth failing over), eight examples, so that a search of every
installed adapter finishes in about three minutes on a 2-core CI machine, one failure per search
(the first bug found, shrunk), and no "explain" phase (it reruns the shrunk example many more
times only to annotate it). Searches take the profile as the parent of their own settings; it is
never loaded globally, so other Hypothesis tests in the same pytest session keep theirs.

Eight examples are a smoke test, not a search: a bug that one example in a hundred meets goes
unseen (tests/test_search.py plants one). So ``normbench search`` runs on a time budget by default
(``budget.DEFAULT_BUDGET_S`` per adapter): one Hypothesis run of ``ROUND_EXAMPLES`` after another,
each under a seed of its own (about half of each run generates, the rest hill-climbs the largest error /
tolerance, and the database's Pareto front carries the best examples into the next run), until the
search's share of the budget is spent; then the next example stops it (``explore``). The profile
stays what the project's own tests and ``pytest --pyargs normbench.suites.search`` run.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from pathlib import Path

from hypothesis import HealthCheck, Phase, settings
from hypothesis.database import DirectoryBasedExampleDatabase

PROFILE = "normbench-ci"
# Measured: `normbench search` over every installed adapter (numpy, torch, flax.linen, flax.nnx, the three
# Keras backends, tf_keras, onnxruntime; 49 adapter × op searches) took 1 min 22 s on 2 quiet cores and
# 2 min 21 s with other framework processes running (README); 10 examples took 2 min 56 s under load.
DEFAULT_MAX_EXAMPLES = 8
# A budgeted search's examples per Hypothesis run. Measured on the planted TailRows bug (tests/test_search.py), 30 s
# per seed: runs of 100 found it under 16 of 16 seeds (at most 422 examples, 11 s), of 300 under 16 of 16 (15.7 s),
# of 1000 under 12 of 16, one run of 10⁹ under 5 of 8: from 1000 examples on, Hypothesis hill-climbs for as long
# as the climb improves, and a climb on error / tolerance can hold a search on one region of shapes for minutes.
ROUND_EXAMPLES = 100
# Shrinking a failure stops improving it after this long (a JAX example compiles every new shape:
# Hypothesis's own limit, five minutes per failure, would be most of a CI budget).
SHRINK_SECONDS = 10.0
DATABASE = "search-db"  # the database folder's name under a run's output folder
PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)

settings.register_profile(
    PROFILE,
    deadline=None,
    max_examples=DEFAULT_MAX_EXAMPLES,
    phases=PHASES,
    report_multiple_bugs=False,
    print_blob=False,
    database=None,
    # A whole example is one framework call per check: slow by Hypothesis's standards, and some
    # draws (a long axis that makes InstanceNorm's input rank 2) are rejected on purpose.
    suppress_health_check=(HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large,
                           HealthCheck.large_base_example),
)


@dataclass(frozen=True)
class Options:
    """What a search run was asked for (``normbench search`` options, or pytest's --search-*)."""

    max_examples: int | None = None  # None: the profile's, or rounds of ROUND_EXAMPLES where there is a budget
    seed: int | None = None  # None: one drawn per search
    database: Path | None = None  # None: no database (nothing replayed, nothing kept)
    shrink_seconds: float = SHRINK_SECONDS
    budget_s: float | None = None  # seconds this one search may take (its share of its adapter's budget)

    @property
    def rounds(self) -> bool:
        """Whether the search is one Hypothesis run after another until its budget is spent."""
        return self.budget_s is not None and self.max_examples is None

    @property
    def examples(self) -> int:
        """The example count each Hypothesis run is given."""
        if self.max_examples is not None:
            return self.max_examples
        return ROUND_EXAMPLES if self.rounds else DEFAULT_MAX_EXAMPLES

    def described(self) -> dict:
        """How the search was asked to run, as its records say (``facts["search"]``)."""
        return {"seed": self.seed, "max_examples": None if self.rounds else self.examples, "budget_s": self.budget_s,
                "database": str(self.database)}

    def settings(self) -> settings:
        db = DirectoryBasedExampleDatabase(str(self.database)) if self.database else None
        return settings(settings.get_profile(PROFILE), max_examples=self.examples, database=db)

    def saved(self, key: bytes) -> int:
        """How many examples the database holds under ``key`` (past failures, replayed first)."""
        if not self.database or not Path(self.database).is_dir():
            return 0
        return sum(1 for _ in DirectoryBasedExampleDatabase(str(self.database)).fetch(key))

    def seed_for(self, adapter: str, op: str, round_: int = 0) -> int:
        """One run's seed, spread per adapter, op and round so no two Hypothesis runs draw in lockstep; a
        random one where the run has none (a search always runs under ``@seed``: stopped by its budget, an
        unseeded Hypothesis would print how to reproduce a "failure")."""
        if self.seed is None:
            return random.randrange(2**32)
        return zlib.crc32(f"{self.seed}:{adapter}:{op}".encode() + (f":{round_}".encode() if round_ else b""))


def database_key(adapter: str, op: str) -> bytes:
    """Where one adapter × op search keeps its examples in the database: named, not derived from
    the source of the function that runs them, so editing normbench keeps past failures."""
    return f"normbench-search:{adapter}:{op}".encode()
