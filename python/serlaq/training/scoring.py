"""The content of metrics.json: the final model (model.ckpt) scored on val and test."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping

from serlaq.version import __version__
from serlaq.config import RunConfig
from serlaq.data.datamodule import SERDataModule
from serlaq.model import SERClassifier, count_parameters
from serlaq.training.run_folder import MODEL


def evaluate_run(
    config: RunConfig,
    datamodule: SERDataModule,
    model_ckpt: Path,
    best_ckpt: Path,
    trainer: L.Trainer,
    early_stopping: EarlyStopping,
) -> dict[str, Any]:
    """Every sample of val and test scored once on model.ckpt, plus what the run was."""
    model = SERClassifier.load_from_checkpoint(model_ckpt, map_location="cpu", weights_only=True)
    best_epoch = int(torch.load(best_ckpt, map_location="cpu", weights_only=True)["epoch"])
    scores = {split: model.evaluate(*datamodule.split_tensors(split)) for split in ("val", "test")}
    return {
        "serlaq_version": __version__,
        "run_dir": str(config.run_dir),
        "checkpoint": MODEL,
        "seed": config.seed,
        "dataset": config.data.dataset,
        "labels": list(model.labels),
        "input_dim": model.hparams.input_dim,
        "hidden": list(model.hparams.hidden),
        "parameters": count_parameters(model.net),
        "fp32_bytes": 4 * count_parameters(model.net),
        "split_sizes": datamodule.split_sizes,
        "data": datamodule.summary,
        "monitor": config.train.monitor,
        "restore_best": config.train.restore_best,
        "best_epoch": best_epoch,
        "model_epoch": best_epoch if config.train.restore_best else trainer.current_epoch - 1,
        "epochs": trainer.current_epoch,
        "stopped_early": bool(early_stopping.stopped_epoch),
        "world_size": trainer.world_size,
        "val": scores["val"],
        "test": scores["test"],
    }
