"""Run a torch model with its Linear weights replaced by their quantized values (fake quantization).

`PlanQuantizer` quantizes each (layer, bits) once and caches it, so a search that tries
many plans costs one forward pass per plan. `make_evaluator` turns a model, a split and a
criterion into the `evaluate(plan) -> score` callable the search functions take.

Criteria (higher score is better; the search compares `baseline - score` to its margin):
- "accuracy" (the paper): accuracy on the given split (the validation split);
  baseline = the fp32 model's accuracy there.
- "agreement" (beyond the paper): fraction of samples whose predicted class matches the
  fp32 model's; baseline 1. Needs no labels, so it can use train + val (less noisy).
- "kl" (beyond the paper): minus the mean KL(p_fp32 || p_quant) in nats; baseline 0.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
from torch import nn
from torch.func import functional_call

from serlaq.laq.quantize import QuantizedWeight, QuantScheme, quantize

Criterion = Literal["accuracy", "agreement", "kl"]
CRITERIA: tuple[str, ...] = ("accuracy", "agreement", "kl")


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """(qualified name, Linear) of the layers LAQ quantizes, in forward order.

    Uses the model's own `quantizable_layers()` when it has one (SERClassifier), else every
    `nn.Linear` in registration order (which is forward order for an `nn.Sequential` MLP).
    """
    names = {id(m): n for n, m in model.named_modules()}
    if hasattr(model, "quantizable_layers"):
        mods = list(model.quantizable_layers())
        out = []
        for m in mods:
            if isinstance(m, tuple):  # tolerate (name, module) pairs
                m = m[1]
            if id(m) not in names:
                raise ValueError("quantizable_layers() returned a module that is not part of the model")
            out.append((names[id(m)], m))
    else:
        out = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.Linear)]
    if not out:
        raise ValueError("the model has no Linear layers to quantize")
    return out


class PlanQuantizer:
    """Quantized weights of a model's layers for any bit plan, each (layer, bits) computed once."""

    def __init__(self, layers: Sequence[tuple[str, nn.Linear]], scheme: QuantScheme = QuantScheme()) -> None:
        self.scheme = scheme
        self.names = [n for n, _ in layers]
        self.weights = {n: m.weight.detach().to(torch.float32).clone() for n, m in layers}
        self.biases = {n: (None if m.bias is None else m.bias.detach().to(torch.float32).clone()) for n, m in layers}
        self._cache: dict[tuple[str, int], QuantizedWeight] = {}
        self._deq: dict[tuple[str, int], torch.Tensor] = {}

    def get(self, name: str, bits: int) -> QuantizedWeight:
        key = (name, int(bits))
        if key not in self._cache:
            self._cache[key] = quantize(self.weights[name], int(bits), self.scheme)
        return self._cache[key]

    def dequantized(self, name: str, bits: int) -> torch.Tensor:
        key = (name, int(bits))
        if key not in self._deq:
            self._deq[key] = self.get(name, bits).dequantize()
        return self._deq[key]

    def overrides(self, plan: Mapping[str, int]) -> dict[str, torch.Tensor]:
        """Parameter overrides for `torch.func.functional_call` ({"net.0.weight": W', ...})."""
        missing = set(self.names) - set(plan)
        if missing:
            raise ValueError(f"bit plan has no bits for layer(s) {sorted(missing)}")
        return {f"{n}.weight": self.dequantized(n, plan[n]) for n in self.names}


def fake_quantize(model: nn.Module, plan: Mapping[str, int], scheme: QuantScheme = QuantScheme()) -> nn.Module:
    """A copy of `model` (eval mode) whose quantizable weights are their dequantized values."""
    clone = copy.deepcopy(model).eval()
    pq = PlanQuantizer(quantizable_layers(clone), scheme)
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


def score_logits(logits: torch.Tensor, criterion: str, y: torch.Tensor | None, ref_logits: torch.Tensor | None) -> float:
    """The criterion's score of `logits` (see the module docstring)."""
    if criterion == "accuracy":
        if y is None:
            raise ValueError("criterion 'accuracy' needs labels")
        return float((logits.argmax(dim=1) == y).to(torch.float64).mean())
    if ref_logits is None:
        raise ValueError(f"criterion {criterion!r} needs the fp32 model's logits")
    if criterion == "agreement":
        return float((logits.argmax(dim=1) == ref_logits.argmax(dim=1)).to(torch.float64).mean())
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
