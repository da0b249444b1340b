"""What every report's header says about the run: feature preset, training recipe, architecture."""

from __future__ import annotations

from typing import Any


def run_meta(config: Any) -> dict[str, Any]:
    """Which feature preset and training recipe a run's config trains (a `RunConfig`)."""
    t = config.train
    return {
        "features": {"preset": config.features.preset, "dim": config.features.dim},
        "train": {
            "recipe": t.recipe,
            "max_epochs": t.max_epochs,
            "patience": t.patience,
            "scheduler": t.scheduler,
            "label_smoothing": t.label_smoothing,
        },
    }


def architecture(model: Any) -> str:
    """The MLP's widths, input first, e.g. "272-512-256-128-7"."""
    from serlaq.laq.layers import LayerSet

    shapes = [list(layer.weight.shape) for layer in LayerSet.of(model)]
    return f"{shapes[0][1]}-" + "-".join(str(s[0]) for s in shapes)
