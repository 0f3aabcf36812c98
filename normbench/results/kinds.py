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
    PROCESS = "process"  # a record about a whole child process (it crashed, hung, or never started)


VERIFY_SUITES = (Suite.AGREEMENT, Suite.TRAIN_EVAL, Suite.BATCH_SIZE_ONE, Suite.SEQUENCE_LENGTHS)
RUN_SUITES = (*VERIFY_SUITES, Suite.SYNCHRONIZED, Suite.SPEED)  # what `normbench run --suites` takes


class Check(StrEnum):
    """What one record checked: the names reports and known divergences match on."""

    # agreement with the oracle (every verification suite)
    FORWARD_TRAIN = "forward_train"
    FORWARD_EVAL = "forward_eval"
    GRAD_DX = "grad_dx"
    GRAD_DGAMMA = "grad_dgamma"
    GRAD_DBETA = "grad_dbeta"
    RUNNING_MEAN = "running_mean"
    RUNNING_VAR = "running_var"
    JVP = "jvp"
    SECOND_ORDER_DX = "second_order_dx"
    SECOND_ORDER_DGAMMA = "second_order_dgamma"
    # metamorphic relations, which need no reference
    SCALE_SHIFT_INVARIANCE = "scale_shift_invariance"
    SAMPLE_INDEPENDENCE = "sample_independence"
    SEQUENCE_ALONE = "sequence_alone"
    # behaviour: train vs eval, batch size one, padded sequences
    DEFAULTS = "defaults"
    TRAIN_EQUALS_EVAL = "train_equals_eval"
    EVAL_AFTER_TRAINING = "eval_after_training"
    TRAIN_AFTER_EVAL = "train_after_eval"
    EVAL_KEEPS_RUNNING_STATS = "eval_keeps_running_stats"
    RUNNING_MEAN_STEPS = "running_mean_steps"
    RUNNING_VAR_STEPS = "running_var_steps"
    TRAIN_ONE_VALUE_PER_CHANNEL = "train_one_value_per_channel"
    VARYING_LENGTHS = "varying_lengths"
    PADDING_SHIFT = "padding_shift"
    # one per adapter: does the framework's own data-parallel engine run?
    SYNCHRONIZED = "synchronized"
    # timings (suite speed): one per mode, and two that time no case
    FORWARD = "forward"
    FORWARD_BACKWARD = "forward_backward"
    TRAIN = "train"
    EVAL = "eval"
    RECOMPILES = "recompiles"
    SELF_CHECK = "self_check"
    PEAK_MEMORY = "peak_memory"  # a head-to-head process's peak resident memory
    # about the run rather than a case: process records are f"{phase}_process"
    KNOWN_DIVERGENCE = "known_divergence"  # a strict known divergence that never reproduced
    VERIFY_PROCESS = "verify_process"
    SYNC_PROCESS = "sync_process"
    BENCH_PROCESS = "bench_process"
    SEARCH_PROCESS = "search_process"
    ALLOCATOR_PROCESS = "allocator_process"
    SELF_CHECK_PROCESS = "self_check_process"


DERIVATIVE_CHECKS = (Check.JVP, Check.SECOND_ORDER_DX, Check.SECOND_ORDER_DGAMMA)  # forward mode and second order
# speed-suite checks that time no case: never a timing
NOT_TIMINGS = (Check.RECOMPILES, Check.SELF_CHECK, Check.PEAK_MEMORY)


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
