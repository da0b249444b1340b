"""Helpers the benchmark scripts share (run as `python benchmarks/<script>.py`, so this folder is on sys.path)."""

from __future__ import annotations

from typing import Any


def inner_splits(config: Any, seed: int) -> dict[str, list[int]]:
    """Train / val / holdout clip indices carved from the outer train+val of `config`'s split.

    Model-selection benchmarks choose on these inner splits so the outer test split is never
    seen; the inner holdout has the size of the outer test split, stratified by label.
    """
    import numpy as np

    from serlaq.data.datamodule import SERDataModule
    from serlaq.data.splits import split_indices

    outer = SERDataModule(config)
    outer.setup()
    label_at = {
        i: clip.label
        for split in ("train", "val")  # the outer test split is set aside
        for i, clip in zip(outer.split_indices(split), outer.split_clips(split))
    }
    kept = np.array(sorted(label_at))
    labels = [label_at[i] for i in kept]
    fraction = len(outer.split_indices("test")) / len(kept)
    inner = split_indices(labels, seed=10_000 + seed, fractions=(1 - 2 * fraction, fraction, fraction))
    return {name: kept[idx].tolist() for name, idx in zip(("train", "val", "test"), inner)}
