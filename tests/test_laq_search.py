"""The paper's bit search (eq. 5), fixed-bit baselines and the budget search."""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Mapping

import pytest
import torch
from torch import nn

from serlaq.laq.fakequant import PlanQuantizer, fake_quantize, make_evaluator, quantizable_layers
from serlaq.laq.importance import LayerImportance, layer_importance
from serlaq.laq.quantize import QuantScheme
from serlaq.laq.search import adaptive_margins, budget_search, fixed_bit_scores, paper_search, uniform_plan


def stat(name: str, n: int, importance: float) -> LayerImportance:
    return LayerImportance(name, n, 0.0, 0.0, 0.0, 0.0, 0.0, importance)


class Scripted:
    """evaluate(plan): accuracy = 1 - sum of per-layer losses at their bits; records every call."""

    def __init__(self, loss: Mapping[str, Mapping[int, float]]) -> None:
        self.loss = loss
        self.calls: list[dict[str, int]] = []

    def __call__(self, plan: Mapping[str, int]) -> float:
        self.calls.append(dict(plan))
        return 1.0 - sum(self.loss[n].get(b, 0.0) for n, b in plan.items())


def test_layers_are_searched_by_importance_lowest_bits_first() -> None:
    stats = [stat("a", 100, 0.5), stat("b", 300, 0.9), stat("c", 10, 0.7)]
    ev = Scripted({"a": {1: 0.2, 2: 0.05}, "b": {1: 0.5, 2: 0.1, 3: 0.005}, "c": {}})
    res = paper_search(stats, ev, baseline=1.0, margin=0.01)
    assert [t.name for t in res.trace] == ["b", "c", "a"]
    # before the search every layer is at 8 bits; searched layers keep their chosen bits
    assert ev.calls[0] == {"a": 8, "b": 1, "c": 8}
    assert [t.bits for t in res.trace[0].trials] == [1, 2, 3]
    assert ev.calls[3] == {"a": 8, "b": 3, "c": 1}
    assert res.plan == {"a": 3, "b": 3, "c": 1}
    assert list(res.plan) == ["a", "b", "c"]  # forward order
    assert res.avg_bits == pytest.approx((100 * 3 + 300 * 3 + 10 * 1) / 410)
    assert res.evaluations == len(ev.calls)
    assert res.score == pytest.approx(1.0 - 0.005)


def test_adaptive_margin_is_eq5() -> None:
    ranked = [stat("b", 1, 0.9), stat("c", 1, 0.6), stat("a", 1, 0.0), stat("d", 1, 0.3)]
    m = adaptive_margins(ranked, 0.02)
    assert m[0] == pytest.approx(0.02)  # first layer: ratio 1
    assert m[1] == pytest.approx(0.02 * 0.6 / 0.9)
    assert m[2] == pytest.approx(0.0)
    assert m[3] == pytest.approx(0.02)  # Importance(l_prev) = 0: ratio 1


def test_acceptance_uses_the_layer_margin_inclusively() -> None:
    stats = [stat("a", 1, 1.0), stat("b", 1, 0.5)]
    # b's margin is 0.02 * 0.5 = 0.01: a drop of exactly 0.01 is accepted, 0.0101 is not
    ev = Scripted({"a": {}, "b": {1: 0.0101, 2: 0.01}})
    res = paper_search(stats, ev, baseline=1.0, margin=0.02)
    assert res.plan == {"a": 1, "b": 2}
    b = res.trace[1]
    assert b.margin == pytest.approx(0.01)
    assert [(t.bits, t.accepted) for t in b.trials] == [(1, False), (2, True)]
    assert b.trials[0].drop == pytest.approx(0.0101)  # drop is against the fp32 baseline


def test_a_layer_that_never_meets_its_margin_stays_at_the_reference_bits() -> None:
    ev = Scripted({"a": {b: 0.5 for b in range(1, 9)}})
    res = paper_search([stat("a", 5, 1.0)], ev, baseline=1.0, margin=0.01)
    assert res.plan == {"a": 8}
    assert [t.bits for t in res.trace[0].trials] == list(range(1, 9))
    assert not any(t.accepted for t in res.trace[0].trials)


def test_zero_margin_with_a_lossless_model_goes_to_one_bit() -> None:
    res = paper_search([stat("a", 5, 1.0), stat("b", 5, 2.0)], Scripted({"a": {}, "b": {}}), 1.0, margin=0.0)
    assert res.plan == {"a": 1, "b": 1} and res.avg_bits == 1.0


def test_fixed_bit_baselines_cover_8_to_1() -> None:
    ev = Scripted({"a": {b: 0.01 * (9 - b) for b in range(1, 9)}})
    scores = fixed_bit_scores(["a"], ev)
    assert list(scores) == [8, 7, 6, 5, 4, 3, 2, 1]
    assert scores[1] == pytest.approx(0.92)
    assert uniform_plan(["x", "y"], 3) == {"x": 3, "y": 3}
    with pytest.raises(ValueError):
        uniform_plan(["x"], 0)


def test_budget_search_spends_bits_where_they_buy_score() -> None:
    stats = [stat("big", 1000, 0.1), stat("small", 10, 0.1)]
    ev = Scripted({"big": {1: 0.01}, "small": {1: 0.3, 2: 0.2, 3: 0.1, 4: 0.0}})
    res = budget_search(stats, ev, baseline=1.0, max_avg_bits=1.1)
    assert res.plan == {"big": 1, "small": 4}  # 4 bits on the small layer cost 0.03 avg bits
    assert res.avg_bits <= 1.1
    res2 = budget_search(stats, ev, baseline=1.0, max_avg_bits=2.05)
    assert res2.plan == {"big": 2, "small": 4} and res2.avg_bits <= 2.05
    with pytest.raises(ValueError, match="budget"):
        budget_search(stats, ev, 1.0, max_avg_bits=0.5)


def test_budget_search_by_bytes() -> None:
    stats = [stat("big", 1000, 0.1), stat("small", 10, 0.1)]
    ev = Scripted({"big": {1: 0.01, 2: 0.005}, "small": {1: 0.3}})
    size = lambda plan: sum(n * plan[k] / 8 for k, n in (("big", 1000), ("small", 10)))  # noqa: E731
    res = budget_search(stats, ev, 1.0, max_bytes=140.0, size_bytes=size)
    assert size(res.plan) <= 140.0
    assert res.plan["small"] >= 2


# --- on a real (tiny) torch model --------------------------------------------


@functools.lru_cache(maxsize=1)
def _trained() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    centers = torch.randn(4, 12, generator=g)
    y = torch.randint(0, 4, (300,), generator=g)
    x = centers[y] + 1.2 * torch.randn(300, 12, generator=g)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 48), nn.ReLU(), nn.Linear(48, 24), nn.ReLU(), nn.Linear(24, 4))
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(150):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[:200]), y[:200]).backward()
        opt.step()
    return model.eval(), x, y


def tiny_model_and_data() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    """A small MLP trained on 4 Gaussian classes (a fresh copy each call), inputs and labels."""
    model, x, y = _trained()
    return copy.deepcopy(model), x, y


def test_search_on_a_torch_model_evaluates_the_fake_quantized_network() -> None:
    model, x, y = tiny_model_and_data()
    layers = quantizable_layers(model)
    assert [n for n, _ in layers] == ["0", "2", "4"]
    stats = layer_importance({n: m.weight for n, m in layers})
    pq = PlanQuantizer(layers, QuantScheme())
    evaluate, baseline = make_evaluator(model, pq, x[200:250], y[200:250], "accuracy")
    assert baseline == pytest.approx(float((model(x[200:250]).argmax(1) == y[200:250]).float().mean()))
    res = paper_search(stats, evaluate, baseline, margin=0.0)
    # margin 0: every layer takes the lowest b whose plan scores at least the fp32 baseline,
    # trying b = 1, 2, ... in turn; a layer where no b does stays at 8
    accepted = []
    for layer in res.trace:
        assert [t.bits for t in layer.trials] == list(range(1, len(layer.trials) + 1))
        assert all(not t.accepted and t.score < baseline for t in layer.trials[:-1])
        last = layer.trials[-1]
        if last.accepted:
            assert last.score >= baseline and layer.bits == last.bits
            accepted.append(last)
        else:
            assert len(layer.trials) == 8 and last.score < baseline and layer.bits == 8
    assert res.plan == {layer.name: layer.bits for layer in res.trace}
    # the reported score is that of the final plan: the last accepted trial's plan
    assert accepted and res.score == accepted[-1].score == evaluate(res.plan) >= baseline
    # the score the search reports is the accuracy of the fake-quantized copy
    fq = fake_quantize(model, res.plan)
    acc = float((fq(x[200:250]).argmax(1) == y[200:250]).float().mean())
    assert res.score == pytest.approx(acc)
    # the original model is untouched
    assert torch.equal(model(x).argmax(1), tiny_model_and_data()[0](x).argmax(1))
    scores = fixed_bit_scores(pq.names, evaluate)
    # every fixed-bit score is the accuracy of the model with all layers at b bits
    xv, yv = x[200:250], y[200:250]
    for b in range(1, 9):
        fixed = fake_quantize(model, uniform_plan(pq.names, b))
        assert scores[b] == float((fixed(xv).argmax(1) == yv).double().mean())
    # 8 bits keep every fp32 prediction of this model
    assert torch.equal(fake_quantize(model, uniform_plan(pq.names, 8))(xv).argmax(1), model(xv).argmax(1))
    assert scores[8] == baseline


def test_agreement_and_kl_criteria_have_their_baselines() -> None:
    model, x, y = tiny_model_and_data()
    pq = PlanQuantizer(quantizable_layers(model), QuantScheme())
    ev_a, base_a = make_evaluator(model, pq, x, None, "agreement")
    ev_k, base_k = make_evaluator(model, pq, x, None, "kl")
    assert base_a == 1.0 and base_k == 0.0
    eight, one = uniform_plan(pq.names, 8), uniform_plan(pq.names, 1)
    assert ev_a(eight) >= ev_a(one)
    assert 0.0 >= ev_k(eight) > ev_k(one)
    assert math.isfinite(ev_k(one))
    with pytest.raises(ValueError, match="criterion"):
        make_evaluator(model, pq, x, y, "loss")
