"""The quantizable layers of a model, read off it once: what every LAQ stage works on.

`LayerSet.of(model)` walks the model one time and keeps, per layer in forward order, its
name, its `nn.Linear`, a float32 copy of the weight and bias (what every quantizer sees)
and the counts. Importance, search, QAT and export all take this one structure instead
of walking the model again.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from serlaq.laq.importance import LayerImportance, layer_importance


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """(qualified name, Linear) of the layers LAQ quantizes, in forward order.

    Uses the model's own `quantizable_layers()` when it has one (SERClassifier), else every
    `nn.Linear` in registration order (which is forward order for an `nn.Sequential` MLP).
    """
    names = {id(m): n for n, m in model.named_modules()}
    if hasattr(model, "quantizable_layers"):
        out = []
        for m in model.quantizable_layers():
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


@dataclass(frozen=True)
class Layer:
    """One quantizable layer: its module and a float32 snapshot of its parameters."""

    name: str
    module: nn.Linear
    weight: Tensor  # float32, detached copy
    bias: Tensor | None  # float32, detached copy

    @property
    def n_weights(self) -> int:
        return int(self.weight.numel())

    @property
    def in_features(self) -> int:
        return int(self.module.in_features)

    @property
    def out_features(self) -> int:
        return int(self.module.out_features)


class LayerSet(Sequence[Layer]):
    """The quantizable layers of one model (`model` is None when built from bare layers)."""

    def __init__(self, layers: Sequence[tuple[str, nn.Linear]], model: nn.Module | None = None) -> None:
        self.model = model
        self.layers = tuple(
            Layer(
                name,
                m,
                m.weight.detach().to(torch.float32).clone(),
                None if m.bias is None else m.bias.detach().to(torch.float32).clone(),
            )
            for name, m in layers
        )
        self.names = [layer.name for layer in self.layers]

    @classmethod
    def of(cls, source: Any) -> LayerSet:
        """The layers of a model, or `source` itself when it is a LayerSet already;
        a list of (name, Linear) pairs is taken as it is."""
        if isinstance(source, LayerSet):
            return source
        if isinstance(source, nn.Module):
            return cls(quantizable_layers(source), source)
        return cls(list(source))

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index: Any) -> Any:
        return self.layers[index]

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def pairs(self) -> list[tuple[str, nn.Linear]]:
        return [(layer.name, layer.module) for layer in self.layers]

    @property
    def input_dim(self) -> int:
        return self.layers[0].in_features

    def weights(self) -> dict[str, Tensor]:
        return {layer.name: layer.weight for layer in self.layers}

    def biases(self) -> dict[str, Tensor | None]:
        return {layer.name: layer.bias for layer in self.layers}

    def n_weights(self) -> dict[str, int]:
        return {layer.name: layer.n_weights for layer in self.layers}

    def importance(self, weights: Sequence[float], reference_bits: int) -> list[LayerImportance]:
        """Eq. 1-4 of every layer (`serlaq.laq.importance.layer_importance`)."""
        return layer_importance(self.weights(), weights, reference_bits)

    def architecture(self) -> dict[str, Any]:
        """The runtime's architecture record, read off the Linear layers."""
        return {
            "type": "mlp",
            "input_dim": self.input_dim,
            "hidden": [layer.out_features for layer in self.layers[:-1]],
            "activation": "relu",
            "num_classes": self.layers[-1].out_features,
        }
