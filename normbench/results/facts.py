"""The facts a record carries: measured behaviour, not pass/fail, declared per check family.

Every key a check writes into ``Record.facts`` is declared here with its type, so a report or a
notebook reads a known schema instead of guessing at keys (tests hold every key a run writes to
this list). Sets travel as sorted lists: a running-variance convention is ``["biased",
"unbiased"]`` where both fit, ``[]`` where neither does — never the text "biased or unbiased".
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypedDict

Convention = str  # "biased" or "unbiased"


class PrecisionFacts(TypedDict, total=False):
    """Dtypes a check saw, and for mixed precision what the framework documents it computes in."""

    output_dtype: str
    grad_dtype: str
    running_dtype: str
    precision: str
    compute_documented: str
    precision_link: str


class RunningVarFacts(TypedDict, total=False):
    """Which running variance an adapter stores (``running_var``, ``running_*_steps``)."""

    running_var: list[Convention]  # every convention the stored value matches, sorted
    declared_running_var: Convention | None
    err_vs_biased: float
    err_vs_unbiased: float
    running_var_nonfinite: int  # how many stored values are inf or NaN: the update overflowed
    steps: int
    momentum_applied_as: str
    momentum_convention: str


class KnownFacts(TypedDict, total=False):
    """Written by the classification against the known-divergence registry."""

    known: str  # the entry that explains the record
    outside_known: str  # the entry that matched but did not explain it
    link: str
    reason: str  # the entry's reason, so a report of these records needs no registry
    envelope: float | None
    within_envelope: str


class RaisedFacts(TypedDict, total=False):
    """A framework's own exception (an ``error`` or a measured refusal)."""

    exception: str  # the type that was raised, or the one a wrapper re-raised (TF's StagingError)
    raised_as: str  # the wrapper's type, where there was one
    traceback: str
    where: str  # the adapter's own line that led to it


class BehaviourFacts(TypedDict, total=False):
    """Train/eval, batch-of-one and padded-sequence behaviour."""

    identical: bool  # train_equals_eval
    unchanged: bool  # eval_keeps_running_stats
    behaviour: str  # train_one_value_per_channel
    running_var_after: list[float]
    lengths: list[int]
    mean_shift_std: float
    valid_fraction: float
    valid_output_deviation: float


class ReplicaFacts(TypedDict, total=False):
    """The synchronized suite: the framework's data-parallel engine and what it measurably did."""

    synchronized: str  # "runs" or "refused"
    refusal: str
    fallbacks: dict[str, Any]
    engine: str
    backend: str | None
    devices: int | list[str]
    replicas: list[int]
    replicas_agree: bool
    replica_max_abs_err: list[float]
    statistics_match: list[str]  # global / unweighted / local
    err_vs: dict[str, float]
    cross_device_ops: str
    execution: str
    moving_statistics: str
    shards: str
    uneven: str
    mask: str
    traces: int | list[int]
    running_spread: float
    eval_under_group_max_abs_diff: float
    no_group_max_abs_diff: dict[str, float]
    measured_with: int
    rendezvous_attempts: int


class TimingFacts(TypedDict, total=False):
    """Speed records that time no case: recompiles and the harness self-check."""

    first_call_s: list[float]
    recompiles: int | None
    lengths: list[int]
    traces: int | list[int]
    family: str
    allocator: str
    harness_median_s: float
    bare_median_s: float
    case_median_s: float
    ratio: float
    ratio_ci: list[float]
    fresh_bare_median_s: float  # `bench --self-check`: a bare loop in a fresh process took turns too
    fresh_ratio: float
    fresh_ratio_ci: list[float]
    blocks: int
    rounds_per_block: int
    iterations: int
    other_load: float
    bandwidth_before_gbps: float
    bandwidth_after_gbps: float


class ProcessFacts(TypedDict, total=False):
    """A record about a whole child process (it crashed, hung, or never started)."""

    status: str
    returncode: int | None
    elapsed_s: float


FAMILIES = (PrecisionFacts, RunningVarFacts, KnownFacts, RaisedFacts, BehaviourFacts, ReplicaFacts, TimingFacts,
            ProcessFacts)
DEFAULT_PREFIX = "default_"  # train_eval's `defaults` check: one key per documented default, named by the adapter


def declared() -> frozenset[str]:
    """Every fact key a record may carry (besides ``default_*``)."""
    return frozenset(key for family in FAMILIES for key in family.__annotations__)


def undeclared(keys: Iterable[str]) -> list[str]:
    """The keys of ``keys`` no family declares: what a new check must add here first."""
    known = declared()
    return sorted(k for k in keys if k not in known and not k.startswith(DEFAULT_PREFIX))


def conventions(value: Any) -> frozenset[Convention]:
    """The running-variance conventions a ``running_var`` fact names, from this format (a list) or
    an older one ("biased or unbiased", "neither")."""
    if value is None:
        return frozenset()
    if isinstance(value, str):
        return frozenset(value.split(" or ")) - {"neither"}
    return frozenset(value)


def says(found: Iterable[Convention]) -> str:
    """A set of conventions in words: "biased or unbiased", "neither"."""
    return " or ".join(sorted(found)) or "neither"
