"""Synchronized BatchNorm: the global-batch oracle, the suite's cases, and meta-tests that the
suite catches the two classic cross-replica bugs (an unweighted mean, no synchronization)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from normbench.adapters.torch import replicas as torch_replicas
from normbench.numerics import reference, replicas
from normbench.ops.case import Case
from normbench.ops.spec import NormSpec
from normbench.results import records
from normbench.verify import synchronized
from normbench.verify.cases import replica_cases

from . import meta_replicas as m
from .helpers import ROOT, run_cli, run_python

LAST = NormSpec("batch_norm", layout="channels_last")
SPLITS = [(8,), (4, 4), (2, 6), (1, 3, 4, 8), (1, 1, 1, 1, 12)]


def _case(split, **kw) -> Case:
    return Case(LAST, (sum(split), 3, 5), "float64", replicas=split, **kw)


@pytest.mark.parametrize("split", SPLITS, ids=str)
@pytest.mark.parametrize("inputs", ["normal", "offset1e4"])
def test_chan_merge_equals_the_statistics_of_the_concatenated_batch(split, inputs):
    case = _case(split, input=inputs)
    x, _ = case.data()
    got = replicas.merged(LAST, case.split(x))
    want = reference.channel_moments(LAST, x)
    assert np.allclose(got.count, want.count, rtol=0, atol=0)
    assert np.allclose(got.mean, want.mean, rtol=1e-13, atol=1e-13)
    assert np.allclose(got.var, want.var, rtol=1e-9, atol=0)


@pytest.mark.parametrize("split", SPLITS, ids=str)
@pytest.mark.parametrize("masked", [False, True])
def test_the_global_reference_is_batchnorm_of_the_concatenated_batch(split, masked):
    case = Case(LAST, (sum(split), 6, 5), "float64", masked=masked, replicas=split)
    x, p = case.data()
    xs, dys, masks = case.split(x), case.split(p.dy), case.split(p.mask) if masked else None
    y = replicas.concatenated(replicas.forward(LAST, xs, p.gamma, p.beta, masks))
    assert np.allclose(y, reference.forward(LAST, x, p.gamma, p.beta, p.mask), rtol=0, atol=1e-12)
    dx, dgamma, dbeta = replicas.vjp(LAST, xs, p.gamma, dys, masks)
    want = reference.vjp(LAST, x, p.gamma, p.dy, p.mask)
    assert np.allclose(replicas.concatenated(dx), want.dx, rtol=0, atol=1e-12)
    assert np.allclose(dgamma, want.dgamma, atol=1e-11) and np.allclose(dbeta, want.dbeta, atol=1e-12)
    for unbiased in (False, True):
        got = replicas.update_running(LAST, p.running_mean, p.running_var, xs, masks, unbiased=unbiased)
        ref = reference.update_running(LAST, p.running_mean, p.running_var, x, p.mask, unbiased=unbiased)
        assert np.allclose(got, ref, rtol=1e-13, atol=0)


def test_running_statistics_after_k_steps_are_k_single_steps():
    case = _case((2, 6))
    x, p = case.data()
    state = (p.running_mean, p.running_var)
    for _ in range(3):
        state = replicas.update_running(LAST, *state, case.split(x), unbiased=True)
    three = replicas.update_running(LAST, p.running_mean, p.running_var, case.split(x), unbiased=True, steps=3)
    assert np.allclose(three, state, rtol=1e-14, atol=0)


@pytest.mark.parametrize("kind", replicas.KINDS)
def test_each_kind_of_statistics_has_the_gradient_finite_differences_give(kind):
    case = Case(LAST, (6, 2, 3), "float64", masked=True, replicas=(2, 4))
    x, p = case.data()
    masks = case.split(p.mask)

    def loss(a):
        ys = replicas.forward(LAST, case.split(a), p.gamma, p.beta, masks, kind)
        return sum(float((y * d).sum()) for y, d in zip(ys, case.split(p.dy), strict=True))

    dx, dgamma, _ = replicas.vjp(LAST, case.split(x), p.gamma, case.split(p.dy), masks, kind)
    h, fd = 1e-6, np.zeros_like(x)
    for i in np.ndindex(x.shape):
        e = np.zeros_like(x)
        e[i] = h
        fd[i] = (loss(x + e) - loss(x - e)) / (2 * h)
    assert np.allclose(replicas.concatenated(dx), fd, rtol=1e-6, atol=1e-7)


def test_unweighted_and_local_statistics_differ_from_the_global_ones_only_where_they_should():
    even, uneven = _case((4, 4)), _case((1, 3, 4, 8))
    for case, same in ((even, True), (uneven, False)):
        x, p = case.data()
        g, u = (replicas.forward(LAST, case.split(x), p.gamma, p.beta, None, k) for k in ("global", "unweighted"))
        assert np.allclose(replicas.concatenated(g), replicas.concatenated(u), atol=1e-12) == same
    x, p = even.data()
    local = replicas.forward(LAST, even.split(x), p.gamma, p.beta, None, "local")
    assert np.allclose(local[1], reference.forward(LAST, even.split(x)[1], p.gamma, p.beta), atol=1e-12)


def test_a_replica_case_names_its_split_and_rebuilds_from_its_record():
    case = Case(LAST, (16, 3, 4, 5), replicas=(1, 3, 4, 8))
    assert case.id == "batch_norm-16x3x4x5-float32-normal-channels_last-replicas1+3+4+8"
    row = {**case.describe(), "check": "forward_train"}
    assert row["params"]["replicas"] == [1, 3, 4, 8]
    assert Case.from_record(row) == case
    assert "replicas" not in Case(LAST, (16, 3, 4, 5)).params()  # records of other suites are unchanged
    assert [len(s) for s in case.split(case.data()[0])] == [1, 3, 4, 8]


@pytest.mark.parametrize(("op", "shape", "split", "message"), [
    ("batch_norm", (8, 6), (4, 3), "replica batches (4, 3) must be positive and add up to the batch 8"),
    ("batch_norm", (8, 6), (8, 0), "must be positive"),
    ("layer_norm", (8, 6), (4, 4), "layer_norm never mixes samples: replicas have nothing to synchronize"),
])
def test_a_bad_replica_split_names_itself(op, shape, split, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Case(NormSpec(op), shape, replicas=split)


def test_the_cases_cover_two_and_four_replicas_even_uneven_single_samples_offsets_and_masks():
    cases = replica_cases()
    assert {len(c.replicas) for c in cases} == {1, 2, 4}
    assert any(len(set(c.replicas)) > 1 for c in cases if len(c.replicas) == 2)
    assert any(len(set(c.replicas)) > 1 and 1 in c.replicas for c in cases if len(c.replicas) == 4)
    assert any(set(c.replicas) == {1} and len(c.replicas) == 4 for c in cases)
    assert any(c.input == "offset1e4" for c in cases) and any(c.masked for c in cases)
    assert synchronized.max_replicas() == 4


def test_jax_is_asked_for_enough_host_devices_and_other_flags_are_kept():
    """First: XLA ignores every flag after a token without "--", such as a user's copy of the folk
    recipe "intra_op_parallelism_threads=N" (normbench no longer writes it)."""
    threads = "--xla_cpu_multi_thread_eigen=true intra_op_parallelism_threads=2"
    env = synchronized.with_host_devices({"XLA_FLAGS": threads})
    assert env["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=4 {threads}"
    assert synchronized.with_host_devices(env, 2) == env  # enough already
    more = synchronized.with_host_devices({"XLA_FLAGS": f"{threads} --xla_force_host_platform_device_count=8"})
    assert more["XLA_FLAGS"] == f"--xla_force_host_platform_device_count=4 {threads}"
    proc = run_python("import jax; print(len(jax.devices('cpu')))", env=env)
    assert proc.stdout.split()[-1] == "4", proc.stderr[-2000:]


# ---- meta-tests: the suite catches planted cross-replica bugs ----

@pytest.fixture(scope="module")
def meta(tmp_path_factory):
    out = tmp_path_factory.mktemp("sync-meta") / "r"
    refs = ",".join(f"tests.meta_replicas:{a.__name__}" for a in (m.Independent, *m.BROKEN))
    proc = run_cli("verify", "--suites", "synchronized", "--adapters", refs, "-o", str(out), "--no-report", cwd=ROOT)
    if not (out / "results.jsonl").exists():
        pytest.fail(f"no results written:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc, records.read(out / "results.jsonl")[1]


def _of(rows, adapter, outcome=None):
    return [r for r in rows if r["adapter"] == adapter.name and (outcome is None or r["outcome"] == outcome)]


def test_an_independent_replicated_batchnorm_passes_every_synchronized_check(meta):
    proc, rows = meta
    assert proc.returncode == 1  # the planted ones fail
    mine = _of(rows, m.Independent)
    assert len(mine) == len(replica_cases()) * 7 + 1 and {r["outcome"] for r in mine} == {"pass"}
    support = next(r for r in mine if r["check"] == "synchronized")
    assert support["facts"]["synchronized"] == "runs"


def _uneven_or_masked(r) -> bool:
    split = r["params"]["replicas"]
    return len(set(split)) > 1 or r["params"]["masked"]


@pytest.mark.parametrize(("adapter", "kind", "shows"), [
    (m.UnweightedMean, "unweighted", _uneven_or_masked),
    (m.LocalOnly, "local", lambda r: len(r["params"]["replicas"]) > 1),
], ids=["unweighted-mean", "local-only"])
def test_a_planted_cross_replica_bug_is_caught_wherever_it_can_show(meta, adapter, kind, shows):
    _, rows = meta
    mine = [r for r in _of(rows, adapter) if r["check"] != "synchronized"]
    failed = [r for r in mine if r["outcome"] == "fail"]
    assert {r["outcome"] for r in mine} <= {"pass", "fail"}
    shown = {r["case"] for r in mine if shows(r)}
    assert {r["case"] for r in failed} == shown  # caught on every case it can show on, and only there
    for r in failed:
        if r["check"] == "forward_train":
            assert r["facts"]["statistics_match"] == [kind], r["case"]  # and named for what it is
            assert re.search(r"\by: max \|err\|", r["message"]) and "rerun: pytest '" in r["message"]
    assert {r["check"] for r in failed} >= {"forward_train", "grad_dx", "running_mean", "running_var"}


# ---- the frameworks' own engines, as `normbench run --suites synchronized` runs them ----

FOUR = ("flax.linen", "flax.nnx", "keras[tensorflow]", "tf_keras")  # whose engines run on host CPUs


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    out = tmp_path_factory.mktemp("sync-run") / "r"
    proc = run_cli("run", "--suites", "synchronized", "-o", str(out), cwd=ROOT, timeout=900)
    rows = [r for f in sorted((out / "sync").rglob("*.jsonl")) for r in records.read(f)[1]]
    return proc, rows


def _rows(rows, adapter, check=None):
    return [r for r in rows if r["adapter"] == adapter and (check is None or r["check"] == check)]


def test_the_synchronized_run_exits_0_with_every_divergence_declared(engines):
    proc, rows = engines
    errors = "\n".join(f"{r['adapter']} {r['case']}: {r['message'][-600:]}" for r in rows
                       if r["outcome"] not in ("pass", "known", "skip"))
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:] + errors
    assert rows and {r["outcome"] for r in rows} <= {"pass", "known", "skip"}
    assert {r["suite"] for r in rows} == {"synchronized"}


@pytest.mark.parametrize("adapter", FOUR)
def test_each_engine_runs_two_and_four_replicas_equal_and_uneven(engines, adapter):
    _, rows = engines
    support = _rows(rows, adapter, "synchronized")[0]
    assert support["outcome"] == "pass" and support["facts"]["synchronized"] == "runs"
    ran = [r for r in _rows(rows, adapter, "forward_train") if r["outcome"] in ("pass", "known")]
    layouts = {(len(r["params"]["replicas"]), len(set(r["params"]["replicas"])) > 1) for r in ran}
    assert layouts >= {(2, False), (2, True), (4, False), (4, True)}
    assert all(r["facts"]["devices"] == len(r["params"]["replicas"]) for r in ran)
    checks = {r["check"] for r in _rows(rows, adapter) if r["outcome"] == "pass"}
    assert checks >= {"forward_train", "grad_dx", "grad_dgamma", "grad_dbeta", "running_mean", "running_var",
                      "forward_eval"}


@pytest.mark.parametrize(("adapter", "uneven", "masked"), [
    ("flax.linen", ["unweighted"], ["unweighted"]),
    ("flax.nnx", ["unweighted"], ["unweighted"]),
    ("keras[tensorflow]", ["global"], ["local"]),
    ("tf_keras", ["global"], ["global"]),
])
def test_which_statistics_each_engine_uses_is_measured(engines, adapter, uneven, masked):
    """Count weighting shows on uneven shards, mask handling under synchronization on masked ones."""
    _, rows = engines
    forward = [r for r in _rows(rows, adapter, "forward_train") if r["input"] == "normal"]
    for r in forward:
        split = r["params"]["replicas"]
        if r["params"]["masked"]:
            assert r["facts"]["statistics_match"] == masked, r["case"]
        elif len(set(split)) > 1:
            assert r["facts"]["statistics_match"] == uneven, r["case"]
        elif len(split) > 1:  # equal shards: the global and unweighted statistics coincide
            assert r["facts"]["statistics_match"] == ["global", "unweighted"], r["case"]


@pytest.mark.parametrize(("adapter", "key", "where"), [
    ("flax.linen", "flax-sync-unweighted-mean", lambda r: r["input"] == "normal"),
    ("flax.linen", "flax-fast-variance", lambda r: r["input"] == "offset1e4"),
    ("keras[tensorflow]", "keras-sync-one-pass-moments", lambda r: r["input"] == "offset1e4"),
    ("keras[tensorflow]", "keras-sync-mask-local", lambda r: r["params"]["masked"]),
    ("tf_keras", "keras-sync-one-pass-moments", lambda r: r["input"] == "offset1e4"),
])
def test_upstream_defects_are_known_divergences_within_their_envelopes(engines, adapter, key, where):
    _, rows = engines
    known = [r for r in _rows(rows, adapter) if r["outcome"] == "known" and r["facts"]["known"] == key]
    assert known and all(where(r) for r in known)
    assert all(r["facts"]["within_envelope"] and r["facts"]["envelope"] >= r["max_abs_err"] / r["tolerance"]
               for r in known)


def test_torch_refuses_cpu_tensors_and_its_documented_fallbacks_hold(engines):
    _, rows = engines
    support = _rows(rows, "torch", "synchronized")[0]
    assert support["outcome"] == "pass" and support["facts"]["synchronized"] == "refused"
    assert support["facts"]["refusal"].startswith("ValueError: SyncBatchNorm expected input tensor to be on GPU")
    assert support["facts"]["fallbacks"] == {"eval mode under a process group": True, "no process group": True}
    assert 1 <= support["facts"]["rendezvous_attempts"] <= torch_replicas.RENDEZVOUS_ATTEMPTS
    one = [r for r in _rows(rows, "torch") if r["params"]["replicas"] == [8]]
    assert len(one) == 7 and {r["outcome"] for r in one} == {"pass"}  # no process group: plain batch_norm
    several = [r for r in _rows(rows, "torch") if len(r["params"]["replicas"]) > 1 and r["check"] != "synchronized"]
    assert several and all(r["outcome"] == "skip" and ("SyncBatchNorm expected input tensor" in r["message"]
                                                       or "does not support mask" in r["message"]) for r in several)


@pytest.mark.parametrize("adapter", ["keras[jax]", "keras[torch]"])
def test_keras_on_other_backends_refuses_synchronized(engines, adapter):
    _, rows = engines
    support = _rows(rows, adapter, "synchronized")[0]
    assert support["outcome"] == "pass" and support["facts"]["synchronized"] == "refused"
    assert support["facts"]["refusal"].endswith(
        "raises ValueError: Argument synchronized=True is only supported with the TensorFlow backend.")
    assert {r["outcome"] for r in _rows(rows, adapter) if r["check"] != "synchronized"} == {"skip"}


def test_torch_runs_sync_batchnorm_on_cuda_where_there_is_a_gpu(tmp_path):
    """NORMBENCH_TORCH_DEVICE=cuda: one process per replica on the GPUs (NCCL, or gloo where
    replicas outnumber GPUs). Without CUDA every case is a skip that says so."""
    out = tmp_path / "cuda"
    proc = run_cli("verify", "--suites", "synchronized", "--adapters", "torch", "-o", str(out),
                   env={"NORMBENCH_TORCH_DEVICE": "cuda"}, timeout=900)
    rows = records.read(out / "results.jsonl")[1]
    import torch

    if not torch.cuda.is_available():
        assert proc.returncode == 0 and {r["outcome"] for r in rows} == {"skip"}
        assert all("torch.cuda.is_available() is False" in r["message"] or "does not support mask" in r["message"]
                   for r in rows)
        pytest.skip("no CUDA device: the multi-process SyncBatchNorm path runs only on a GPU machine")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ran = [r for r in rows if r["check"] == "forward_train" and r["outcome"] == "pass"]
    assert {len(r["params"]["replicas"]) for r in ran} >= {2, 4} and all(r["device"] == "cuda" for r in ran)


# What a CI run under gVisor printed when gloo's loopback rendezvous broke (abridged to its frames).
_GLOO_RENDEZVOUS = """-- Process 0 terminated with the following error:
Traceback (most recent call last):
  File "/v/torch/multiprocessing/spawn.py", line 87, in _wrap
    fn(i, *args)
  File "/w/normbench/adapters/torch/replicas.py", line 123, in _rank
    dist.init_process_group(_backend(dev, job.replicas), init_method=f"file://{folder}/store", rank=rank,
  File "/v/torch/distributed/c10d_logger.py", line 83, in wrapper
    return func(*args, **kwargs)
  File "/v/torch/distributed/distributed_c10d.py", line 1899, in init_process_group
    default_pg, _ = _new_process_group_helper(
  File "/v/torch/distributed/distributed_c10d.py", line 2169, in _new_process_group_helper
    backend_class = ProcessGroupGloo(
RuntimeError: Gloo connectFullMesh failed with [gloo/transport/tcp/pair.cc:553] Connection closed by peer"""

_AFTER_JOINING = """-- Process 1 terminated with the following error:
Traceback (most recent call last):
  File "/v/torch/multiprocessing/spawn.py", line 87, in _wrap
    fn(i, *args)
  File "/w/normbench/adapters/torch/replicas.py", line 127, in _rank
    out.update(_steps(_loaded(job, _sync_batch_norm, here), job, rank))
  File "/w/normbench/adapters/torch/replicas.py", line 90, in _steps
    dist.all_reduce(p.grad, dist.ReduceOp.SUM)
RuntimeError: [gloo/transport/tcp/pair.cc:534] Connection closed by peer"""


def test_only_a_failed_rendezvous_is_retried_not_a_failure_after_joining():
    """A start that never joined measured nothing, so a fresh one is honest; once the ranks have
    joined, a failure is the run's result and is reported, not retried away."""
    assert torch_replicas.rendezvous_failed(_GLOO_RENDEZVOUS)
    assert not torch_replicas.rendezvous_failed(_AFTER_JOINING)
    assert not torch_replicas.rendezvous_failed("ValueError: SyncBatchNorm expected input tensor to be on GPU")
