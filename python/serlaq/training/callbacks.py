"""The Lightning callbacks of a training run: settle and save the final model, keep the RNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint


class SaveModel(Callback):
    """At the end of fit, settle the final model and save it (weights + hparams) as model.ckpt.

    With `restore_best` the weights of the best-monitored epoch are loaded back first.
    The LAQ stage runs after fit and therefore sees the final model in memory.
    """

    def __init__(self, path: Path, checkpoint: ModelCheckpoint, restore_best: bool) -> None:
        self.path = path
        self.checkpoint = checkpoint
        self.restore_best = restore_best

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if self.restore_best and self.checkpoint.best_model_path:
            trainer.strategy.barrier("serlaq-best-written")
            state = torch.load(self.checkpoint.best_model_path, map_location=pl_module.device, weights_only=True)
            pl_module.load_state_dict(state["state_dict"])
        trainer.save_checkpoint(self.path, weights_only=True)


class RngCheckpoint(Callback):
    """Saves the global torch RNG (dropout draws) in checkpoints and restores it on resume,
    so an interrupted and resumed run repeats an uninterrupted one exactly."""

    def state_dict(self) -> dict[str, Any]:
        return {"torch": torch.get_rng_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        torch.set_rng_state(state_dict["torch"])
