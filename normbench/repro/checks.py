"""Each check as a script's ``main``: what it feeds the layer, what it calls, what it compares with.

A body transcribes its check in ``verify`` (``checks``, ``metamorphic``, ``behaviour``) for one record: the same
calls in the same order on the same arrays, the float64 expectation from the script's own oracle (or, for a
metamorphic relation, the layer's own output), judged against the record's tolerance. Where a check judges several
pieces and keeps the worst, the record's message names it (``y(slice(0, 1, None),)``, ``y[T=9]``, ``running_var:``)
and the script judges that piece: the tolerance is that piece's.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass, field

import numpy as np

from ..ops import inputs
from ..ops.case import Case
from ..results.kinds import Check, Outcome
from ..verify import behaviour
from ..verify.behaviour import STEPS


class Refused(Exception):
    """No standalone reproducer for this record; the message says why in one line."""


@dataclass(frozen=True)
class Body:
    """What one check's script runs: the Layer methods it calls, the arrays beyond x and the parameters, the
    oracle functions and the input shapes they see, and the statements of ``main`` after ``layer = Layer()``,
    which return the exit status."""

    needs: frozenset[str]
    code: str
    what: str  # one line for the docstring: what is compared with what
    oracle: tuple[str, ...] = ()
    arrays: dict[str, np.ndarray | None] = field(default_factory=dict)
    shapes: tuple[tuple[int, ...], ...] = ()


# What each check compares, for the docstring.
_WHAT = {
    Check.FORWARD_TRAIN: "the training-mode output (batch statistics)",
    Check.FORWARD_EVAL: "the inference-mode output",
    Check.GRAD_DX: "dx, the input's gradient of the training-mode output for the upstream gradient dy",
    Check.GRAD_DGAMMA: "dγ, the scale's gradient of the training-mode output for the upstream gradient dy",
    Check.GRAD_DBETA: "dβ, the bias's gradient of the training-mode output for the upstream gradient dy",
    Check.RUNNING_MEAN: "the running mean after one training step",
    Check.RUNNING_VAR: "the running variance after one training step",
    Check.JVP: "the forward-mode derivative along tangents (tx, tγ, tβ)",
    Check.SECOND_ORDER_DX: "∂<dx, v>/∂x, through the framework's own backward pass (grad of grad)",
    Check.SECOND_ORDER_DGAMMA: "∂<dx, v>/∂γ, through the framework's own backward pass (grad of grad)",
}
_GRADS = {Check.GRAD_DX: 0, Check.GRAD_DGAMMA: 1, Check.GRAD_DBETA: 2}
_SECOND = {Check.SECOND_ORDER_DX: (0, "d<dx,v>/dx"), Check.SECOND_ORDER_DGAMMA: (1, "d<dx,v>/dgamma")}
_STEPS = (Check.RUNNING_MEAN_STEPS, Check.RUNNING_VAR_STEPS, Check.EVAL_AFTER_TRAINING, Check.EVAL_KEEPS_RUNNING_STATS,
          Check.TRAIN_AFTER_EVAL)
# Checks that record a behaviour rather than judge one: nothing diverges, so nothing to reproduce.
FACTS = {
    Check.DEFAULTS: "it records a layer's default arguments, read from its constructor: no case ran",
    Check.TRAIN_ONE_VALUE_PER_CHANNEL: "it records what BatchNorm training does with one value per channel, "
                                       "judged by no tolerance",
    Check.PADDING_SHIFT: "it records how far padding moves unmasked statistics, judged by no tolerance",
}


def raised(row: dict) -> str | None:
    """The exception type the record recorded (an error, or a known divergence whose cause raises), if any."""
    facts = row.get("facts") or {}
    if facts.get("exception"):
        return str(facts["exception"])
    if row.get("outcome") != Outcome.ERROR:
        return None
    return str(row.get("message") or "").split(":", 1)[0].strip() or "Exception"


def _variances(declared: str | None) -> str:
    """The running-variance candidates a script compares with: the one the adapter declares, or both."""
    return repr((declared,) if declared else ("biased", "unbiased"))


def body(row: dict, case: Case, declared: str | None) -> Body:
    """The script body for ``row``'s check on ``case``; ``declared`` is the running variance its adapter
    declares it stores (None: either, judged by the closer)."""
    check = Check(row["check"])
    x, p = case.data()
    given = {"mask": p.mask}
    if check in (Check.FORWARD_TRAIN, Check.FORWARD_EVAL):
        if check == Check.FORWARD_TRAIN or not case.spec.has_running_stats:
            code = f"""
                y = layer.forward(x, {check == Check.FORWARD_TRAIN}, mask)
                return verdict("y", y, forward_ref(x, gamma, beta, mask))
                """
            return Body(frozenset({"forward"}), code, _WHAT[check], ("forward_ref",), given, (case.shape,))
        code = """
            rm, rv = layer.running()  # the running statistics as the layer holds them
            y = layer.forward(x, False, mask)
            return verdict("y", y, forward_eval_ref(x, gamma, beta, rm, rv))
            """
        return Body(frozenset({"forward", "running"}), code, _WHAT[check], ("forward_eval_ref",), given,
                    (case.shape,))
    if check in (Check.RUNNING_MEAN, Check.RUNNING_VAR):
        code = """
            rm0, rv0 = layer.running()
            layer.forward(x, True, mask)
            rm, rv = layer.running()
            """
        if check == Check.RUNNING_MEAN:
            code += """
            return verdict("running_mean", rm, update_running_ref(rm0, rv0, x, mask)[0])
            """
        else:
            code += f"""
            variances = {_variances(declared)}  # {'declared by the adapter' if declared else 'either: the closer'}
            want = {{k: update_running_ref(rm0, rv0, x, mask, unbiased=k == "unbiased")[1] for k in variances}}
            which = min(want, key=lambda k: errors(rv, want[k])[0].max())
            print(f"running variance compared with the {{which}} update")
            return verdict("running_var", rv, want[which])
            """
        return Body(frozenset({"forward", "running"}), code, _WHAT[check], ("update_running_ref",), given,
                    (case.shape,))
    if check in _GRADS:
        code = f"""
            got = layer.vjp(x, dy, mask)
            want = vjp_ref(x, gamma, dy, mask)
            return verdict({check.removeprefix('grad_')!r}, got[{_GRADS[check]}], want[{_GRADS[check]}])
            """
        return Body(frozenset({"vjp"}), code, _WHAT[check], ("vjp_ref",), {**given, "dy": p.dy}, (case.shape,))
    if check == Check.JVP:
        code = """
            got = layer.jvp(x, tx, tgamma, tbeta, mask)
            return verdict("jvp", got, jvp_ref(x, gamma, tx, tgamma, tbeta, mask))
            """
        arrays = {**given, "tx": p.tx, "tgamma": p.tgamma, "tbeta": p.tbeta}
        return Body(frozenset({"jvp"}), code, _WHAT[check], ("jvp_ref",), arrays, (case.shape,))
    if check in _SECOND:
        i, name = _SECOND[check]
        code = f"""
            got = layer.second_order(x, dy, v, mask)
            want = second_order_ref(x, gamma, dy, v, mask)
            return verdict({name!r}, got[{i}], want[{i}])
            """
        return Body(frozenset({"second_order"}), code, _WHAT[check], ("second_order_ref",),
                    {**given, "dy": p.dy, "v": p.v}, (case.shape,))
    if check == Check.SCALE_SHIFT_INVARIANCE:
        code = """
            # the layer against itself: y(a·x + b) must equal y(x), a > 0 and b constant over each normalized group
            y1 = layer.forward(x, True)
            y2 = layer.forward(x2, True)
            finite = np.isfinite(forward_ref(x, gamma, beta))  # there NaN against NaN is no agreement
            return verdict("y(a*x+b) vs y(x)", y2, y1, finite)
            """
        what = ("y(a·x + b) against y(x) (scale and shift invariance: a > 0 a power of two, b an integer, each "
                "constant over a normalized group; exact in the dtype)")
        return Body(frozenset({"forward"}), code, what, ("forward_ref",), {"x2": inputs.scaled_shifted(case, x)},
                    (case.shape,))
    if check in (Check.SAMPLE_INDEPENDENCE, Check.SEQUENCE_ALONE):
        return _pieces(row, case, check)
    if check == Check.TRAIN_EQUALS_EVAL:
        code = """
            train, infer = (np.asarray(layer.forward(x, t), np.float64) for t in (True, False))
            same = np.array_equal(train, infer, equal_nan=True)
            broken = int((np.isfinite(forward_ref(x, gamma, beta)) & ~np.isfinite(train)).sum())
            print(f"training and inference outputs {'are identical' if same else 'differ'}: max |difference| "
                  f"{float(np.max(np.abs(train - infer))):.6g}")
            if broken:
                print(f"{broken} outputs are non-finite where the float64 result is finite")
            return 0 if same and not broken else 1
            """
        what = "the training-mode output against the inference-mode output (a layer without state: bit-identical)"
        return Body(frozenset({"forward"}), code, what, ("forward_ref",), {}, (case.shape,))
    if check in _STEPS:
        return _steps(row, case, check, declared)
    if check == Check.VARYING_LENGTHS:
        return _lengths(row, case)
    if check in FACTS:
        raise Refused(f"check {check} has nothing to reproduce: {FACTS[check]}")
    raise Refused(f"check {check} compares no case's arrays with the oracle")


def _pieces(row: dict, case: Case, check: Check) -> Body:
    """Each piece of x normalized alone against the same piece of x normalized whole: the piece the record names."""
    x, p = case.data()
    found = re.search(r"\by\((slice\(.*?)\):", row.get("message") or "")
    named = tuple(slice(int(a), int(b)) for a, b in re.findall(r"slice\((\d+), (\d+), None\)", found.group(1))) \
        if found else ()
    if not named and raised(row):
        named = (slice(0, 1),) if check == Check.SAMPLE_INDEPENDENCE else (slice(0, 1), slice(0, case.shape[1]))
    if not named:
        raise Refused(f"the record's message names no piece to compare ({check} keeps its worst piece's tolerance)")
    index = ", ".join(f"slice({s.start}, {s.stop})" for s in named) + ("," if len(named) == 1 else "")
    code = f"""
        # the layer against itself: a piece of x normalized alone must equal that piece of x normalized whole
        whole = np.asarray(layer.forward(x, True))
        finite = np.isfinite(forward_ref(x, gamma, beta))  # there NaN against NaN is no agreement
        piece = ({index})  # the piece the record found furthest off
        alone = layer.forward(np.ascontiguousarray(x[piece]), True)
        return verdict(f"y{{piece}}", alone, whole[piece], finite[piece])
        """
    what = ("one sample normalized alone against its row of the batch" if check == Check.SAMPLE_INDEPENDENCE else
            "one padded sequence's valid tokens normalized alone against the same tokens of the batch")
    return Body(frozenset({"forward"}), code, what, ("forward_ref",), {}, (case.shape,))


def _steps(row: dict, case: Case, check: Check, declared: str | None) -> Body:
    """``behaviour.train_steps`` up to ``check``: training steps on fresh batches, then inference, then training."""
    batches = [inputs.make(case.input, case.shape, case.dtype, case.seed + k, case.spec.stats_view(case.shape))
               for k in range(STEPS)]
    arrays = {"batches": np.stack(batches)}
    code = f"""
        variances = {_variances(declared)}  # {'declared by the adapter' if declared else 'either: the closer'}
        rm0, rv0 = layer.running()
        seen = []
        for batch in batches:  # {STEPS} training steps, each on a fresh batch
            layer.forward(batch, True)
            seen.append(layer.running())
        trajectories = {{}}
        for k in variances:  # what the running statistics should be after each step
            rm, rv, states = rm0, rv0, []
            for batch in batches:
                rm, rv = update_running_ref(rm, rv, batch, unbiased=k == "unbiased")
                states.append((rm, rv))
            trajectories[k] = states
        which = min(variances, key=lambda k: errors(np.stack([s[1] for s in seen]),
                                                    np.stack([s[1] for s in trajectories[k]]))[0].max())
        """
    oracle = ("update_running_ref",)
    if check in (Check.RUNNING_MEAN_STEPS, Check.RUNNING_VAR_STEPS):
        i, name = (0, "running_mean") if check == Check.RUNNING_MEAN_STEPS else (1, "running_var")
        code += f"""
        print(f"step by step against momentum {{MOMENTUM}} as the new batch's weight and the {{which}} variance")
        got = np.stack([s[{i}] for s in seen])
        return verdict("{name} (step, channel)", got, np.stack([s[{i}] for s in trajectories[which]]))
        """
        return Body(frozenset({"forward", "running"}), code, _steps_what(check), oracle, arrays, (case.shape,))
    code += """
        rm, rv = layer.running()
        y = layer.forward(x, False)  # inference from the running statistics
        """
    oracle += ("forward_eval_ref",)
    if check == Check.EVAL_AFTER_TRAINING:
        code += """
        return verdict("y", y, forward_eval_ref(x, gamma, beta, rm, rv))
        """
    elif check == Check.EVAL_KEEPS_RUNNING_STATS:
        code += """
        after = layer.running()
        same = all(np.array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64), equal_nan=True)
                   for a, b in zip((rm, rv), after))
        print("inference left the running statistics unchanged" if same else
              "an inference-mode call changed the running statistics")
        return 0 if same else 1
        """
    else:
        named = re.findall(r"\b(running_mean|running_var): max", row.get("message") or "")
        name = named[-1] if named else "running_mean"
        code += f"""
        layer.forward(x, True)  # training resumes from where it was
        rm2, rv2 = layer.running()
        want = update_running_ref(rm, rv, x, unbiased=which == "unbiased")
        return verdict("{name}", {'rv2' if name == 'running_var' else 'rm2'}, want[{int(name == 'running_var')}])
        """
    return Body(frozenset({"forward", "running"}), code, _steps_what(check), oracle, arrays, (case.shape,))


def _steps_what(check: Check) -> str:
    return {
        Check.RUNNING_MEAN_STEPS: f"the running mean after each of {STEPS} training steps",
        Check.RUNNING_VAR_STEPS: f"the running variance after each of {STEPS} training steps",
        Check.EVAL_AFTER_TRAINING: f"the inference output after {STEPS} training steps",
        Check.EVAL_KEEPS_RUNNING_STATS: "the running statistics before and after an inference-mode call",
        Check.TRAIN_AFTER_EVAL: "the running statistics of a training step after an inference-mode call",
    }[check]


def _lengths(row: dict, case: Case) -> Body:
    """``behaviour.varying_lengths``: one layer called on (B, T, C) batches whose T changes call to call."""
    lengths = tuple((row.get("facts") or {}).get("lengths") or ())
    found = re.search(r"\by\[T=(\d+)\]", row.get("message") or "")
    if raised(row):  # it raised before judging any length: the check's own lengths, any of them
        lengths = lengths or inspect.signature(behaviour.varying_lengths).parameters["lengths"].default
        worst = lengths[0]
    elif not lengths or not found:
        raise Refused("the record names no sequence lengths (facts.lengths) or no worst length (its message)")
    else:
        worst = int(found.group(1))
    shapes = tuple((case.shape[0], t, *case.shape[2:]) for t in lengths)
    arrays = {f"x_{k}": inputs.make(case.input, s, case.dtype, case.seed + k, case.spec.stats_view(s))
              for k, s in enumerate(shapes)}
    calls = ", ".join(f"({t}, x_{k})" for k, t in enumerate(lengths))
    code = f"""
        statuses = []
        for t, xt in ({calls}):  # one layer, the length changing from call to call
            y = layer.forward(xt, True)
            if t == {worst}:  # the length the record found furthest off
                statuses.append(verdict(f"y[T={{t}}]", y, forward_ref(xt, gamma, beta)))
        return max(statuses)
        """
    what = f"the training-mode output of one layer called with sequence lengths {', '.join(map(str, lengths))}"
    return Body(frozenset({"forward"}), code, what, ("forward_ref",), arrays, tuple(dict.fromkeys(shapes)))
