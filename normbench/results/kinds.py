"""The closed vocabularies a record and a job use, as string enums.

They are ``StrEnum``s so that a value read back from a results file (a plain string) compares
equal to its member, and a member written with ``json`` is its plain string: the file format does
not change, only the code stops spelling the words out.
"""

from __future__ import annotations

from enum import StrEnum


class Outcome(StrEnum):
    """How one check went."""

    PASS = "pass"
    FAIL = "fail"
    KNOWN = "known"  # a declared upstream divergence, inside its envelope (a strict xfail)
    ERROR = "error"
    SKIP = "skip"


class Suite(StrEnum):
    """The suites a record can come from (``search`` writes records of the agreement kind)."""

    AGREEMENT = "agreement"
    TRAIN_EVAL = "train_eval"
    BATCH_SIZE_ONE = "batch_size_one"
    SEQUENCE_LENGTHS = "sequence_lengths"
    SYNCHRONIZED = "synchronized"
    SPEED = "speed"
    SEARCH = "search"
    PROCESS = "process"  # a supervised process's own record: it crashed, hung or was not installed


VERIFY_SUITES = (Suite.AGREEMENT, Suite.TRAIN_EVAL, Suite.BATCH_SIZE_ONE, Suite.SEQUENCE_LENGTHS)
RUN_SUITES = (*VERIFY_SUITES, Suite.SYNCHRONIZED, Suite.SPEED)  # what `normbench run --suites` takes


class JobStatus(StrEnum):
    """Where one supervised child process stands, or how it ended."""

    WAITING = "waiting"
    WAITING_FOR_MACHINE = "waiting for the machine"
    RUNNING = "running"
    DONE = "done"
    NOT_INSTALLED = "not installed"
    CRASHED = "crashed"
    TIMEOUT = "timeout"
    FAILED_TO_START = "failed to start"
    INTERRUPTED = "interrupted"

    @property
    def finished(self) -> bool:
        return self not in (JobStatus.WAITING, JobStatus.WAITING_FOR_MACHINE, JobStatus.RUNNING)

    @property
    def failed(self) -> bool:
        return self.finished and self not in (JobStatus.DONE, JobStatus.NOT_INSTALLED)
