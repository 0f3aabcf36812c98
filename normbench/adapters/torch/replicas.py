"""torch.nn.SyncBatchNorm under torch.distributed: one process per replica, torch's own collectives.

Ranks start with torch.multiprocessing.spawn and meet through a file:// store in a temp dir (no
network ports). Each builds the adapter's BatchNorm and converts it with
``SyncBatchNorm.convert_sync_batchnorm`` (how users get one), runs the job's training steps on its
shard (loss ⟨y_r, dy_r⟩), all-reduces γ/β gradients with SUM as DDP does, and pickles what it did
for the parent. ``NORMBENCH_TORCH_DEVICE=cuda`` puts rank r on cuda:(r % device_count), with NCCL
when there is a GPU per rank and gloo otherwise (NCCL refuses two ranks on one GPU); the default
is CPU, where torch refuses synchronized training: that refusal is measured once per replica
count and process, with torch's documented fallbacks checked against plain BatchNorm around it.
One replica runs in this process without a process group, SyncBatchNorm's fallback to batch_norm.

Gloo's TCP rendezvous on loopback can fail before anything is measured ("Gloo connectFullMesh
failed ... Connection closed by peer", seen once in a CI run under gVisor); such a start is retried
in a fresh store, up to RENDEZVOUS_ATTEMPTS times, and the record says how many it took.
"""

from __future__ import annotations

import dataclasses
import os
import pickle
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import numpy as np

from ..base import Refused, ReplicaJob, ReplicaRun, Unsupported
from .native import TorchLayer, _batch_norm, _numpy

DEVICE_VAR = "NORMBENCH_TORCH_DEVICE"
TIMEOUT = 120  # seconds a rank waits on its peers, and the parent on its ranks
RENDEZVOUS_ATTEMPTS = 3
_REFUSED: dict[tuple[str, int], Refused] = {}  # (device, replicas) -> the refusal measured in this process


def device() -> str:
    """Where ranks run: "cpu" (default) or "cuda" from NORMBENCH_TORCH_DEVICE; cuda without a
    CUDA device is a skip, an unknown value an error."""
    want = os.environ.get(DEVICE_VAR, "").strip().lower() or "cpu"
    if want not in ("cpu", "cuda"):
        raise ValueError(f"{DEVICE_VAR}={want!r}: expected cpu or cuda")
    if want == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise Unsupported(f"{DEVICE_VAR}=cuda, but torch {torch.__version__} sees no CUDA device "
                              "(torch.cuda.is_available() is False)")
    return want


def _sync_batch_norm(spec, shape, dtype):
    import torch

    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(_batch_norm(spec, shape, dtype))


class ReplicaLayer(TorchLayer):
    """A TorchLayer whose module and inputs live on one device (a rank's GPU, or the CPU)."""

    def __init__(self, spec, shape, dtype, native, dev="cpu"):
        super().__init__(spec, shape, dtype, native)
        self.device = dev
        self.module.to(dev)

    def _to_native(self, x):
        return super()._to_native(x).to(self.device)


def _loaded(job: ReplicaJob, native, dev: str) -> ReplicaLayer:
    """The job's layer (γ, β and running statistics loaded) built by ``native`` on ``dev``."""
    shape = (sum(len(s) for s in job.shards), *np.shape(job.shards[0])[1:])
    layer = ReplicaLayer(job.spec, shape, job.dtype, native, dev)
    if job.spec.affine:
        layer.set_params(job.gamma, job.beta)
    layer.set_running(job.running_mean, job.running_var)
    return layer


def _steps(layer: ReplicaLayer, job: ReplicaJob, rank: int) -> dict:
    """``job.steps`` forward+backward passes on shard ``rank``, then inference; under a process
    group the γ/β gradients are all-reduced (SUM) like DDP's, which SyncBatchNorm leaves to it."""
    import torch.distributed as dist

    m, x, dy = layer.module, layer._to_native(job.shards[rank]), layer._to_native(job.dys[rank])
    params = [getattr(m, "weight", None), getattr(m, "bias", None)]
    out: dict = {}
    m.train(True)
    for step in range(job.steps):
        m.zero_grad(set_to_none=True)
        t = x.detach().requires_grad_(True)
        y = layer._call(t)
        y.backward(dy)
        if dist.is_available() and dist.is_initialized():
            for p in params:
                if p is not None:
                    dist.all_reduce(p.grad, dist.ReduceOp.SUM)
        if step == 0:
            out.update(y=_numpy(y), dx=_numpy(t.grad),
                       dgamma=None if params[0] is None else _numpy(params[0].grad),
                       dbeta=None if params[1] is None else _numpy(params[1].grad))
    out["running_mean"], out["running_var"] = layer.running()
    out["y_eval"] = layer.forward(job.shards[rank], False)
    return out


def _diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)), initial=0.0))


def _backend(dev: str, replicas: int) -> str:
    import torch

    return "nccl" if dev == "cuda" and torch.cuda.device_count() >= replicas else "gloo"


def _rank(rank: int, job: ReplicaJob, dev: str, folder: str) -> None:
    """One replica's process: join the group, run the job (or note torch's refusal of it, and
    then check that eval mode under the group equals BatchNorm's), write the result."""
    import torch
    import torch.distributed as dist

    here = f"cuda:{rank % torch.cuda.device_count()}" if dev == "cuda" else "cpu"
    if dev == "cuda":
        torch.cuda.set_device(here)
    dist.init_process_group(_backend(dev, job.replicas), init_method=f"file://{folder}/store", rank=rank,
                            world_size=job.replicas, timeout=timedelta(seconds=TIMEOUT))
    out: dict = {"device": here, "backend": dist.get_backend()}
    try:
        try:
            out.update(_steps(_loaded(job, _sync_batch_norm, here), job, rank))
        except ValueError as exc:  # torch refusing the input; its message is the finding
            out["refused"] = f"{type(exc).__name__}: {exc}"
            sync, plain = (_loaded(job, n, here) for n in (_sync_batch_norm, _batch_norm))
            out["eval_diff"] = _diff(sync.forward(job.shards[rank], False), plain.forward(job.shards[rank], False))
    finally:
        dist.destroy_process_group()
    Path(folder, f"rank{rank}.pkl").write_bytes(pickle.dumps(out))


def rendezvous_failed(message: str) -> bool:
    """Whether a rank's traceback ends in joining the process group, before any measurement:
    a transport failure to retry, not a finding."""
    return "in init_process_group" in message


def _spawn(job: ReplicaJob, dev: str) -> tuple[list[dict], int]:
    """Every rank's result and the attempts it took; a rank that raises after joining, a
    rendezvous failing RENDEZVOUS_ATTEMPTS times, or ranks still running after TIMEOUT raise here."""
    from torch.multiprocessing import ProcessRaisedException

    for attempt in range(1, RENDEZVOUS_ATTEMPTS + 1):
        try:
            return _spawn_once(job, dev), attempt
        except ProcessRaisedException as exc:
            if not rendezvous_failed(str(exc)):
                raise
            last = exc
    raise RuntimeError(f"torch.distributed rendezvous of {job.replicas} ranks failed {RENDEZVOUS_ATTEMPTS} "
                       f"times; the last: {str(last).strip().splitlines()[-1]}") from last


def _spawn_once(job: ReplicaJob, dev: str) -> list[dict]:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory(prefix="normbench-torch-") as folder:
        ctx = mp.spawn(_rank, args=(job, dev, folder), nprocs=job.replicas, join=False)
        deadline = time.monotonic() + TIMEOUT
        try:
            while not ctx.join(timeout=max(0.0, deadline - time.monotonic()), grace_period=5):
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"{job.replicas} torch ranks still running after {TIMEOUT} s")
        finally:
            for p in ctx.processes:
                if p.is_alive():
                    p.kill()
                    p.join()
        return [pickle.loads(Path(folder, f"rank{r}.pkl").read_bytes()) for r in range(job.replicas)]


def _no_group(job: ReplicaJob, dev: str) -> dict[str, float]:
    """Max |SyncBatchNorm − BatchNorm| over the whole batch in this process, with no process
    group: torch documents that SyncBatchNorm then falls back to plain batch_norm."""
    whole = dataclasses.replace(job, shards=[np.concatenate(job.shards)], dys=[np.concatenate(job.dys)])
    sync, plain = (_steps(_loaded(whole, n, dev), whole, 0) for n in (_sync_batch_norm, _batch_norm))
    return {k: _diff(v, plain[k]) for k, v in sync.items() if v is not None}


def _refusal(job: ReplicaJob, dev: str, ranks: list[dict], attempts: int) -> Refused:
    """The ranks' common refusal, with both documented fallbacks measured (exact equality: both
    paths call the same batch_norm)."""
    messages = sorted({r.get("refused") or "ran" for r in ranks})
    if messages != [ranks[0].get("refused")]:
        raise RuntimeError(f"torch ranks disagree on refusing synchronized BatchNorm: {messages}")
    backend = ranks[0]["backend"]
    eval_diff = max(r["eval_diff"] for r in ranks)
    no_group = _no_group(job, dev)
    facts = {"engine": f"torch.distributed {backend}, {job.replicas} processes, SyncBatchNorm on {dev}",
             "devices": [r["device"] for r in ranks], "backend": backend, "measured_with": job.replicas,
             "eval_under_group_max_abs_diff": eval_diff, "no_group_max_abs_diff": no_group,
             "rendezvous_attempts": attempts}
    fallbacks = {"eval mode under a process group": eval_diff == 0.0,
                 "no process group": all(v == 0.0 for v in no_group.values())}
    return Refused(messages[0], facts, fallbacks)


def run(job: ReplicaJob, dev: str) -> ReplicaRun:
    """``job`` on ``dev``: one process per replica under torch.distributed, or this process for one."""
    if job.replicas == 1:
        here = "cuda:0" if dev == "cuda" else "cpu"
        out = _steps(_loaded(job, _sync_batch_norm, here), job, 0)
        return ReplicaRun([out["y"]], [out["dx"]], out["dgamma"], out["dbeta"], out["running_mean"],
                          out["running_var"], [out["y_eval"]], {
                              "engine": f"torch SyncBatchNorm in one process on {here}, no process group "
                                        "(its documented fallback to batch_norm)",
                              "devices": [here], "backend": None, "replicas_agree": True})
    key = (dev, job.replicas)
    if key not in _REFUSED:
        ranks, attempts = _spawn(job, dev)
        if not any("refused" in r for r in ranks):
            r0 = ranks[0]
            agree = all(np.array_equal(r[k], r0[k]) for r in ranks for k in ("running_mean", "running_var"))
            return ReplicaRun([r["y"] for r in ranks], [r["dx"] for r in ranks], r0["dgamma"], r0["dbeta"],
                              r0["running_mean"], r0["running_var"], [r["y_eval"] for r in ranks], {
                                  "engine": f"torch.distributed {r0['backend']}, {job.replicas} processes, "
                                            f"SyncBatchNorm on {dev}",
                                  "devices": [r["device"] for r in ranks], "backend": r0["backend"],
                                  "replicas_agree": agree, "rendezvous_attempts": attempts})
        _REFUSED[key] = _refusal(job, dev, ranks, attempts)
    measured = _REFUSED[key]
    raise Refused(str(measured), measured.facts, measured.fallbacks)
