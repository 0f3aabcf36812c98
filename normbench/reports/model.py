"""The data model of every report under one name: each table lives in the module named for its
section (``loading``, ``rows``, ``verdicts``, ``behaviour``, ``agreement``, ``divergences``,
``timing``, ``allocators``, ``environment``, ``timing_warnings``); this module re-exports them so
that ``model.behaviour(res)`` and notebooks written against it keep working.
"""

from __future__ import annotations

from .agreement import AGREEMENT_COLUMNS, agreement, agreement_cells, agreement_matrix, closest
from .allocators import (
    ALLOCATOR_CASE,
    ALLOCATOR_COLUMNS,
    allocator_meanings,
    allocator_note,
    allocator_text,
    allocators,
    self_check_text,
    self_checks,
    shape_label,
    stability,
    stability_text,
)
from .behaviour import (
    BEHAVIOUR_FACTS,
    EPS_CASE,
    behaviour,
    behaviour_matrices,
    running_conventions,
    running_var_mismatches,
)
from .divergences import KNOWN_COLUMNS, OUTSIDE_COLUMNS, failures, known, outside_known
from .environment import RUN_FIELDS, runs, split_runs
from .loading import Results, load, run_folder, run_name, run_of, tidy
from .rows import (
    DERIVATIVE_CHECKS,
    SEVERITY,
    derivative,
    mixed,
    op_rank,
    op_title,
    ordered_ops,
    run_labels,
    single_process,
    tally,
    verification,
    with_ratio,
    worst_of,
)
from .timing import (
    ALLOCATOR_ORDER,
    NOT_TIMINGS,
    SPEED_COLUMNS,
    SPREAD_NOTE,
    TIMED_KEY,
    allocator_meaning,
    allocator_order,
    allocator_rank,
    leads,
    primary_allocator,
    primary_speed,
    recompiles,
    speed,
    spread_note,
    standing,
    timed_rows,
)
from .timing_warnings import BANDWIDTH_SPREAD, WAIT_WARNING_S, report_warnings
from .verdicts import headline, headlines, unexpected, verdicts

__all__ = [
    "AGREEMENT_COLUMNS", "ALLOCATOR_CASE", "ALLOCATOR_COLUMNS", "ALLOCATOR_ORDER", "BANDWIDTH_SPREAD",
    "BEHAVIOUR_FACTS", "DERIVATIVE_CHECKS", "EPS_CASE", "KNOWN_COLUMNS", "NOT_TIMINGS", "OUTSIDE_COLUMNS",
    "RUN_FIELDS", "SEVERITY", "SPEED_COLUMNS", "SPREAD_NOTE", "TIMED_KEY", "WAIT_WARNING_S", "Results",
    "agreement", "agreement_cells", "agreement_matrix", "allocator_meaning", "allocator_meanings", "allocator_note",
    "allocator_order", "allocator_rank", "allocator_text", "allocators", "behaviour", "behaviour_matrices",
    "closest", "derivative", "failures", "headline", "headlines", "known", "leads", "load", "mixed", "op_rank",
    "op_title",
    "ordered_ops", "outside_known", "primary_allocator", "primary_speed", "recompiles", "report_warnings",
    "run_folder", "run_labels", "run_name", "run_of", "running_conventions", "running_var_mismatches", "runs",
    "self_check_text", "self_checks", "shape_label", "single_process", "spread_note", "speed", "split_runs", "standing",
    "stability", "stability_text", "tally", "tidy", "timed_rows", "unexpected", "verdicts", "verification",
    "with_ratio", "worst_of",
]
