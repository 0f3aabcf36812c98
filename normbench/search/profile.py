"""The Hypothesis settings every search runs under, and where its example database lives.

One registered profile, ``normbench-ci``: no deadline (a framework's first call on a new shape
compiles, which is not slowness worth failing over), the example budget sized so the default
search of every installed adapter finishes in about three minutes on a 2-core CI machine, one
failure per search (the first bug found, shrunk), and no "explain" phase (it reruns the shrunk
example many more times only to annotate it). Searches take the profile as the parent of their
own settings; it is never loaded globally, so other Hypothesis tests in the same pytest session
keep theirs.
"""

from __future__ import annotations

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

    max_examples: int = DEFAULT_MAX_EXAMPLES
    seed: int | None = None  # None: Hypothesis picks one per search
    database: Path | None = None  # None: no database (nothing replayed, nothing kept)
    shrink_seconds: float = SHRINK_SECONDS

    def settings(self) -> settings:
        db = DirectoryBasedExampleDatabase(str(self.database)) if self.database else None
        return settings(settings.get_profile(PROFILE), max_examples=self.max_examples, database=db)

    def saved(self, key: bytes) -> int:
        """How many examples the database holds under ``key`` (past failures, replayed first)."""
        if not self.database or not Path(self.database).is_dir():
            return 0
        return sum(1 for _ in DirectoryBasedExampleDatabase(str(self.database)).fetch(key))

    def seed_for(self, adapter: str, op: str) -> int | None:
        """One run's seed, spread per adapter and op so no two searches draw in lockstep."""
        return None if self.seed is None else zlib.crc32(f"{self.seed}:{adapter}:{op}".encode())


def database_key(adapter: str, op: str) -> bytes:
    """Where one adapter × op search keeps its examples in the database: named, not derived from
    the source of the function that runs them, so editing normbench keeps past failures."""
    return f"normbench-search:{adapter}:{op}".encode()
