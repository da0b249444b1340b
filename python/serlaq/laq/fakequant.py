"""Run a torch model with its Linear weights replaced by their quantized values (fake quantization).

`PlanQuantizer` quantizes each (layer, bits) of a `LayerSet` once and caches it, so a
search that tries many plans costs one forward pass per plan. `make_evaluator` turns a
model, a split and a criterion into the `evaluate(plan) -> score` callable the search
functions take.

Criteria (higher score is better; the search compares `baseline - score` to its margin):
- "accuracy" (the paper): accuracy on the given split (the validation split);
  baseline = the fp32 model's accuracy there.
- "agreement" (beyond the paper): fraction of samples whose predicted class matches the
  fp32 model's; baseline 1. Needs no labels, so it can use train + val (less noisy).
- "kl" (beyond the paper): minus the mean KL(p_fp32 || p_quant) in nats; baseline 0.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from typing import Any, Literal

import torch
from torch import nn
from torch.func import functional_call

from serlaq import metrics
from serlaq.laq.layers import LayerSet, quantizable_layers
from serlaq.laq.quantize import QuantizedWeight, QuantScheme, quantize

Criterion = Literal["accuracy", "agreement", "kl"]
CRITERIA: tuple[str, ...] = ("accuracy", "agreement", "kl")

__all__ = [
    "CRITERIA",
    "PlanQuantizer",
    "accuracy",
    "fake_quantize",
    "logits_with",
    "make_evaluator",
    "quantizable_layers",
    "score_logits",
]


class PlanQuantizer:
    """Quantized weights of a model's layers for any bit plan, each (layer, bits) computed once.

    `layers` is a `LayerSet` (or what `LayerSet.of` takes: a model, (name, Linear) pairs).
    """

    def __init__(self, layers: Any, scheme: QuantScheme = QuantScheme()) -> None:
        self.layers = LayerSet.of(layers)
        self.scheme = scheme
        self.names = self.layers.names
        self.weights = self.layers.weights()
        self.biases = self.layers.biases()
        self._cache: dict[tuple[str, int], QuantizedWeight] = {}
        self._deq: dict[tuple[str, int], torch.Tensor] = {}

    def get(self, name: str, bits: int) -> QuantizedWeight:
        key = (name, int(bits))
        if key not in self._cache:
            self._cache[key] = quantize(self.weights[name], int(bits), self.scheme)
        return self._cache[key]

    def quantized(self, plan: Mapping[str, int]) -> dict[str, QuantizedWeight]:
        """Every layer at its plan bits, in forward order (what the `.laq` writer takes)."""
        self._check(plan)
        return {n: self.get(n, plan[n]) for n in self.names}

    def dequantized(self, name: str, bits: int) -> torch.Tensor:
        key = (name, int(bits))
        if key not in self._deq:
            self._deq[key] = self.get(name, bits).dequantize()
        return self._deq[key]

    def overrides(self, plan: Mapping[str, int]) -> dict[str, torch.Tensor]:
        """Parameter overrides for `torch.func.functional_call` ({"net.0.weight": W', ...})."""
        self._check(plan)
        return {f"{n}.weight": self.dequantized(n, plan[n]) for n in self.names}

    def _check(self, plan: Mapping[str, int]) -> None:
        missing = set(self.names) - set(plan)
        if missing:
            raise ValueError(f"bit plan has no bits for layer(s) {sorted(missing)}")


def fake_quantize(
    model: Any, plan: Mapping[str, int], scheme: QuantScheme = QuantScheme(), quantizer: PlanQuantizer | None = None
) -> nn.Module:
    """A copy of `model` (eval mode) whose quantizable weights are their dequantized values.

    `model` is a module or a `LayerSet`; `quantizer` (for the same weights) reuses its cache.
    """
    layers = LayerSet.of(model)
    if layers.model is None:
        raise ValueError("fake_quantize needs the model, not bare layers")
    pq = quantizer if quantizer is not None else PlanQuantizer(layers, scheme)
    clone = copy.deepcopy(layers.model).eval()
    with torch.no_grad():
        for name, layer in quantizable_layers(clone):
            layer.weight.copy_(pq.dequantized(name, plan[name]))
    return clone


@torch.no_grad()
def logits_with(model: nn.Module, x: torch.Tensor, overrides: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
    was_training = model.training
    model.eval()
    try:
        out = functional_call(model, dict(overrides), (x,)) if overrides else model(x)
    finally:
        model.train(was_training)
    return out


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, overrides: Mapping[str, torch.Tensor] | None = None) -> float:
    """Accuracy of `model` (with `overrides`, e.g. a plan's weights) on (x, y)."""
    return score_logits(logits_with(model, x, overrides), "accuracy", y, None)


def score_logits(logits: torch.Tensor, criterion: str, y: torch.Tensor | None, ref_logits: torch.Tensor | None) -> float:
    """The criterion's score of `logits` (see the module docstring)."""
    if criterion == "accuracy":
        if y is None:
            raise ValueError("criterion 'accuracy' needs labels")
        return metrics.accuracy(y.numpy(), logits.argmax(dim=1).numpy())
    if ref_logits is None:
        raise ValueError(f"criterion {criterion!r} needs the fp32 model's logits")
    if criterion == "agreement":
        return metrics.accuracy(ref_logits.argmax(dim=1).numpy(), logits.argmax(dim=1).numpy())
    if criterion == "kl":
        p_log = torch.log_softmax(ref_logits.double(), dim=1)
        q_log = torch.log_softmax(logits.double(), dim=1)
        return -float((p_log.exp() * (p_log - q_log)).sum(dim=1).mean())
    raise ValueError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")


def make_evaluator(
    model: nn.Module,
    quantizer: PlanQuantizer,
    x: torch.Tensor,
    y: torch.Tensor | None,
    criterion: str = "accuracy",
) -> tuple[Callable[[Mapping[str, int]], float], float]:
    """(evaluate(plan) -> score, fp32 baseline score) for `criterion` on inputs `x`."""
    if criterion not in CRITERIA:
        raise ValueError(f"unknown criterion {criterion!r}; choose one of {', '.join(CRITERIA)}")
    ref = logits_with(model, x)
    baseline = score_logits(ref, criterion, y, ref)

    def evaluate(plan: Mapping[str, int]) -> float:
        return score_logits(logits_with(model, x, quantizer.overrides(plan)), criterion, y, ref)

    return evaluate, baseline
