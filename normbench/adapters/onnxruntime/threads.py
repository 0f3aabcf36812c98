"""ONNX Runtime sizes its pools per session: ``layers`` sets intra/inter_op_num_threads from
NORMBENCH_THREADS on every session, so only its import is watched for."""

from __future__ import annotations

MODULES = ("onnxruntime",)
ENV_VARS: tuple[str, ...] = ()
