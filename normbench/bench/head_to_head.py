"""Ratios between adapters timed head to head, with bootstrap intervals, and what they let us say.

Each contender (an adapter in a process, or in several processes one after the other) times
blocks of one case in rounds: every round, each contender times one block, in a shuffled
order, so the machine's speed at that moment touches every contender alike. A contender's
figure is the median of its block medians. The ratio of two contenders is the median of their
per-round ratios (block k of each ran next to each other, in the same pass of processes, so the
machine's drift cancels in each), with a 95 % bootstrap interval that resamples the passes, then
the rounds: it covers a process's own bias (a fresh process was ~3 % faster in the self-check)
as well as the noise between rounds. Two contenders are tied where the interval reaches within
``NEGLIGIBLE`` of 1: either the data cannot order them, or the difference is too small to be the
code's (two processes of one adapter under two interpreters measured 0.2 % apart, significantly).

A case too large for every contender to hold at once runs in heats (``bench.conductor``): subsets
of the field, each with the same anchor contender. There a contender's blocks are paired with the
anchor's of the same round, and two contenders are compared through it (``chained_standings``):
the ratio of their medians against the anchor, with an interval that resamples each side on its
own, so it is wider than a direct pairing would give.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 2000
LEVEL = 95.0
NEGLIGIBLE = 0.01  # a ratio within 1 % of 1 is no verdict, however narrow its interval


@dataclass(frozen=True)
class Ratio:
    """``value`` = median(a) / median(b), with its ``interval``; ``verdict`` as a reader needs it."""

    value: float
    interval: tuple[float, float]

    @property
    def verdict(self) -> str:
        lo, hi = self.interval
        return "slower" if lo > 1 + NEGLIGIBLE else "faster" if hi < 1 - NEGLIGIBLE else "tied"


def blocks_array(blocks: list[list[float]]) -> np.ndarray:
    """Block medians of one contender as [pass, round] (its process in each pass of processes);
    passes with fewer rounds are cut to the shortest."""
    n = min(len(p) for p in blocks)
    return np.array([p[:n] for p in blocks], dtype=float)


def figure(blocks: np.ndarray) -> float:
    """A contender's time: the median of its block medians, over every process and round."""
    return float(np.median(blocks))


def spread(blocks: np.ndarray, field: np.ndarray | None = None) -> float:
    """How far a contender's own blocks disagree: the interquartile range over the median of its
    blocks, each divided by the field's block of that round (the median over the other contenders), so
    the machine's drift, which moves the whole field, is not counted as the contender's."""
    if field is not None:
        passes, rounds = min(blocks.shape[0], field.shape[0]), min(blocks.shape[1], field.shape[1])
        blocks = blocks[:passes, :rounds] / field[:passes, :rounds]
    q1, q2, q3 = np.percentile(blocks, [25, 50, 75])
    return float((q3 - q1) / q2) if q2 > 0 else float("nan")


def per_round(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b round by round ([pass, round]), cut to the passes and rounds both have."""
    passes, rounds = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
    return a[:passes, :rounds] / b[:passes, :rounds]


def ratio(a: np.ndarray, b: np.ndarray, resamples: int = RESAMPLES, seed: int = 0) -> Ratio:
    """a / b for two contenders' blocks ([pass, round]: block [i, k] of each ran in the same pass
    and round): the median of the per-round ratios, with a 95 % interval that draws passes with
    replacement, then rounds. With one pass it is the paired-rounds bootstrap."""
    paired = per_round(a, b)
    passes, rounds = paired.shape
    rng = np.random.default_rng(seed)
    p = rng.integers(0, passes, size=(resamples, passes))
    r = rng.integers(0, rounds, size=(resamples, rounds))
    drawn = paired[p[:, :, None], r[:, None, :]].reshape(resamples, -1)
    tail = (100 - LEVEL) / 2
    lo, hi = np.percentile(np.median(drawn, axis=1), [tail, 100 - tail])
    return Ratio(float(np.median(paired)), (float(lo), float(hi)))


def standings(blocks: dict[str, np.ndarray]) -> dict[str, dict]:
    """For each contender of one case: its figure, its spread, and its ratio to the fastest with
    the interval and verdict (the fastest itself: ratio 1, verdict "fastest"; one whose interval
    against the fastest includes 1: "tied")."""
    figures = {name: figure(b) for name, b in blocks.items()}
    fastest = _fastest(blocks, figures)
    passes, rounds = min(b.shape[0] for b in blocks.values()), min(b.shape[1] for b in blocks.values())
    out = {}
    for name, b in blocks.items():
        # the field without this contender: with an odd field, the median contender is the field's median
        # in every round, and its spread came out 0
        others = [o[:passes, :rounds] for other, o in blocks.items() if other != name]
        field = np.median(others, axis=0) if others else None
        row = {"median_s": figures[name], "block_spread": spread(b, field), "fastest": fastest,
               "processes": int(b.shape[0]), "rounds": int(b.shape[1])}
        if name == fastest:
            row.update(ratio=1.0, ratio_ci=[1.0, 1.0], verdict="fastest")
        else:
            r = ratio(b, blocks[fastest])
            row.update(ratio=r.value, ratio_ci=list(r.interval), verdict="tied" if r.verdict == "tied" else "slower")
        if base := default_of(name, blocks):  # a mode against its adapter's default, paired like any two
            row["versus_default"] = _versus_default(ratio(b, blocks[base]), base)
        out[name] = row
    return out


def _fastest(blocks: dict[str, np.ndarray], figures: dict[str, float]) -> str:
    """The contender the fewest others beat in paired rounds (their median per-round ratio to it is
    below 1), the lower figure between equals. The ratios shown are paired, so the one they are
    taken against must not be beaten by them: the lowest median of blocks can belong to a
    contender that lost most rounds, and every other ratio to it then read below 1."""
    def beaten(name: str) -> int:
        return sum(np.median(per_round(o, blocks[name])) < 1 for other, o in blocks.items() if other != name)
    return min(blocks, key=lambda name: (beaten(name), figures[name]))


def default_of(name: str, field: list[str] | dict) -> str | None:
    """The contender an adapter in a mode (``torch+inductor``) is compared with: its default mode
    (``torch``), where that is in the field."""
    base = name.rpartition("+")[0]
    return base if base and base in field else None


def _versus_default(ratio_: Ratio, base: str) -> dict:
    return {"default": base, "ratio": ratio_.value, "ratio_ci": list(ratio_.interval), "verdict": ratio_.verdict}


def _relative(passes: list[list[float]]) -> np.ndarray:
    """One contender's per-round ratios to the anchor as [pass, round], empty passes left out."""
    kept = [p for p in passes if p]
    return blocks_array(kept) if kept else np.empty((0, 0))


def _draw(rel: np.ndarray, rng: np.random.Generator, resamples: int) -> np.ndarray:
    """Medians of ``resamples`` bootstrap draws of one contender's ratios to the anchor: passes with
    replacement, then rounds."""
    passes, rounds = rel.shape
    p = rng.integers(0, passes, size=(resamples, passes))
    r = rng.integers(0, rounds, size=(resamples, rounds))
    return np.median(rel[p[:, :, None], r[:, None, :]].reshape(resamples, -1), axis=1)


def chained_standings(blocks: dict[str, np.ndarray], relative: dict[str, list[list[float]]], anchor: str,
                      versus: dict[str, list[list[float]]], resamples: int = RESAMPLES,
                      seed: int = 0) -> dict[str, dict]:
    """``standings`` for a case run in heats. ``relative``: each contender's blocks over the anchor's
    of the same round, per pass (the anchor's own are 1); ``versus``: its blocks over the median of
    the rest of its heat in that round, for its spread. The fastest is the lowest against the
    anchor; a ratio between two contenders is the ratio of their medians against the anchor. A
    contender never paired with the anchor (it was lost) has no standing."""
    rel = {name: _relative(relative.get(name, [])) for name in blocks}
    rel = {name: r for name, r in rel.items() if r.size or name == anchor}
    against = {name: (1.0 if name == anchor else float(np.median(r))) for name, r in rel.items()}
    fastest = min(against, key=against.get)
    rng = np.random.default_rng(seed)
    drawn = {name: (np.ones(resamples) if name == anchor else _draw(r, rng, resamples)) for name, r in rel.items()}
    tail = (100 - LEVEL) / 2
    out = {}
    for name in rel:
        b, own = blocks[name], _relative(versus.get(name, []))
        row = {"median_s": figure(b), "block_spread": spread(own) if own.size else float("nan"),
               "fastest": fastest, "processes": int(b.shape[0]), "rounds": int(b.shape[1]), "anchor": anchor}
        if name == fastest:
            row.update(ratio=1.0, ratio_ci=[1.0, 1.0], verdict="fastest")
        else:
            lo, hi = np.percentile(drawn[name] / drawn[fastest], [tail, 100 - tail])
            r = Ratio(against[name] / against[fastest], (float(lo), float(hi)))
            row.update(ratio=r.value, ratio_ci=list(r.interval), verdict="tied" if r.verdict == "tied" else "slower")
        if base := default_of(name, rel):
            lo, hi = np.percentile(drawn[name] / drawn[base], [tail, 100 - tail])
            row["versus_default"] = _versus_default(Ratio(against[name] / against[base], (float(lo), float(hi))), base)
        out[name] = row
    return out
