"""The bit search of the paper (eq. 5), fixed-bit baselines, and a budget search (beyond the paper).

These are plain functions: they see layer names, weight counts, importances and an
`evaluate(plan) -> score` callable (higher is better) and nothing of torch or Lightning.
A plan maps every quantizable layer name to its bits, in forward order.

Paper search (method notes):
- rank layers by importance, highest first; before the search every layer is at B bits;
- for layer l try b = 1..B lowest first, with searched layers at their chosen bits and
  the rest at B; accept the first b with baseline - score(plan) <= T_margin(l);
- T_margin(l) = T_margin * Imp(l) / Imp(l_prev) (ratio 1 for the first layer and where
  Imp(l_prev) = 0); l_prev is the previously searched layer.
- When no b meets the margin (even B can miss it: the baseline is fp32), the layer stays
  at B, the state it had before the search.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from serlaq.laq.importance import LayerImportance, average_bits, rank_by_importance

Plan = dict[str, int]
Evaluate = Callable[[Plan], float]


@dataclass
class Trial:
    bits: int
    score: float
    drop: float
    accepted: bool
    layer: str | None = None  # set by the budget search, whose rounds try several layers


@dataclass
class LayerTrace:
    name: str
    rank: int
    importance: float
    margin: float
    bits: int
    trials: list[Trial] = field(default_factory=list)


@dataclass
class SearchResult:
    """A bit plan and how it was found (every tried b and its score), for reports."""

    plan: Plan
    baseline: float
    score: float
    avg_bits: float
    trace: list[LayerTrace]
    evaluations: int
    seconds: float
    strategy: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def uniform_plan(names: Sequence[str], bits: int) -> Plan:
    """Every layer at `bits`: the fixed-bit baselines (b = 8..1) and the search's start."""
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    return {name: int(bits) for name in names}


def adaptive_margins(ranked: Sequence[LayerImportance], margin: float) -> list[float]:
    """Eq. 5: T_margin(l) = T_margin * Imp(l) / Imp(l_prev), in search order."""
    out = []
    prev: float | None = None
    for stat in ranked:
        ratio = 1.0 if prev is None or prev == 0 else stat.importance / prev
        out.append(margin * ratio)
        prev = stat.importance
    return out


def paper_search(
    stats: Sequence[LayerImportance],
    evaluate: Evaluate,
    baseline: float,
    margin: float = 0.01,
    reference_bits: int = 8,
) -> SearchResult:
    """The paper's layer-wise adaptive bit search (eq. 5); `stats` in forward order."""
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    start = time.perf_counter()
    names = [s.name for s in stats]
    plan = uniform_plan(names, reference_bits)
    ranked = rank_by_importance(stats)
    margins = adaptive_margins(ranked, margin)
    trace: list[LayerTrace] = []
    evaluations = 0
    for rank, (stat, t_l) in enumerate(zip(ranked, margins), start=1):
        entry = LayerTrace(stat.name, rank, stat.importance, t_l, reference_bits)
        for b in range(1, reference_bits + 1):
            trial_plan = {**plan, stat.name: b}
            score = float(evaluate(trial_plan))
            evaluations += 1
            drop = baseline - score
            # a tiny tolerance so a drop equal to the margin is not lost to float rounding
            ok = drop <= t_l + 1e-12
            entry.trials.append(Trial(b, score, drop, ok))
            if ok:
                entry.bits = b
                break
        plan[stat.name] = entry.bits
        trace.append(entry)
    final = float(evaluate(plan))
    evaluations += 1
    n_weights = {s.name: s.n_weights for s in stats}
    return SearchResult(
        plan=plan,
        baseline=baseline,
        score=final,
        avg_bits=average_bits(n_weights, plan),
        trace=trace,
        evaluations=evaluations,
        seconds=time.perf_counter() - start,
        strategy="paper",
    )


def budget_search(
    stats: Sequence[LayerImportance],
    evaluate: Evaluate,
    baseline: float,
    max_avg_bits: float | None = None,
    max_bytes: float | None = None,
    size_bytes: Callable[[Plan], float] | None = None,
    max_bits: int = 8,
) -> SearchResult:
    """The best-scoring plan within a budget of average bits and/or bytes (beyond the paper).

    Greedy from the bottom: start with every layer at 1 bit, then repeatedly raise the one
    layer (to any higher width that still fits) whose raise gains the most score per added
    weight-bit; stop when no raise that fits improves the score. Each round's candidates
    and scores are kept in the trace.
    """
    if max_avg_bits is None and max_bytes is None:
        raise ValueError("budget_search needs max_avg_bits or max_bytes")
    if max_bytes is not None and size_bytes is None:
        raise ValueError("a byte budget needs a size_bytes(plan) function")
    start = time.perf_counter()
    names = [s.name for s in stats]
    n_weights = {s.name: s.n_weights for s in stats}
    imp = {s.name: s.importance for s in stats}

    def fits(plan: Plan) -> bool:
        if max_avg_bits is not None and average_bits(n_weights, plan) > max_avg_bits + 1e-9:
            return False
        if max_bytes is not None and size_bytes is not None and size_bytes(plan) > max_bytes:
            return False
        return True

    plan = uniform_plan(names, 1)
    if not fits(plan):
        raise ValueError(
            "the budget is below the smallest model (every layer at 1 bit): "
            f"{average_bits(n_weights, plan):.3f} avg bits"
            + (f", {size_bytes(plan) / 1000:.1f} KB" if size_bytes is not None else "")
        )
    current = float(evaluate(plan))
    evaluations = 1
    rounds: list[LayerTrace] = []
    step = 0
    while True:
        step += 1
        best: tuple[float, str, int, float] | None = None
        entry = LayerTrace(f"round {step}", step, 0.0, 0.0, 0)
        for name in names:
            for b in range(plan[name] + 1, max_bits + 1):
                cand = {**plan, name: b}
                if not fits(cand):
                    break
                score = float(evaluate(cand))
                evaluations += 1
                gain = (score - current) / (n_weights[name] * (b - plan[name]))
                entry.trials.append(Trial(b, score, baseline - score, False, layer=name))
                if score > current and (best is None or gain > best[0]):
                    best = (gain, name, b, score)
        if best is None:
            break
        _, name, b, score = best
        for t in entry.trials:
            t.accepted = t.layer == name and t.bits == b
        entry.name, entry.bits, entry.importance = name, b, imp[name]
        rounds.append(entry)
        plan[name] = b
        current = score
    return SearchResult(
        plan=plan,
        baseline=baseline,
        score=current,
        avg_bits=average_bits(n_weights, plan),
        trace=rounds,
        evaluations=evaluations,
        seconds=time.perf_counter() - start,
        strategy="budget",
    )


def fixed_bit_scores(names: Sequence[str], evaluate: Evaluate, bits: Sequence[int] = range(8, 0, -1)) -> dict[int, float]:
    """Score of every uniform plan (the fixed-bit baselines), through the same quantizer."""
    return {int(b): float(evaluate(uniform_plan(names, b))) for b in bits}


def plan_in_order(plan: Mapping[str, int], names: Sequence[str]) -> Plan:
    """The plan with keys in forward order (what the `.laq` and reports use)."""
    return {n: int(plan[n]) for n in names}
