"""Helpers the benchmark scripts share (run as `python benchmarks/<script>.py`, so this folder is on sys.path)."""

from __future__ import annotations

from pathlib import Path
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


def fit_compressed(config_path: Path, overrides: list[str], seed: int, laq_path: Path) -> tuple[Any, Any, Any, Any]:
    """Train the run of `config_path` + `overrides` and compress it as `serlaq fit` does,
    the `.laq` written to `laq_path`: (the fit result, the LAQ outcome, the file's size in
    bytes, the datamodule)."""
    from serlaq.config import load_config
    from serlaq.data.datamodule import SERDataModule
    from serlaq.laq.compress import load_checkpoint
    from serlaq.laq.pipeline import compress_model, splits_of
    from serlaq.laq_config import LaqConfig
    from serlaq.training import fit, quiet_lightning

    config = load_config(config_path, overrides)
    settings = (config.laq if config.laq is not None else LaqConfig()).resolved()
    config = config.model_copy(update={"laq": None})
    datamodule = SERDataModule(config)
    result = fit(config, datamodule=datamodule)
    assert result is not None
    model = load_checkpoint(result.checkpoint).eval()
    with quiet_lightning():
        out = compress_model(
            model, splits_of(datamodule), settings, datamodule=datamodule,
            trainer_settings=config.trainer.model_dump(exclude_none=True), lr=config.train.lr, seed=seed,
        )  # fmt: skip
    return result, out, out.write(laq_path), datamodule
