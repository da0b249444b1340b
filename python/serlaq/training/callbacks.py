"""The Lightning callbacks of a training run: settle and save the final model, keep the RNG,
stop a diverged run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, ModelCheckpoint

from serlaq.errors import SerlaqError


class TrainingDiverged(SerlaqError):
    """The training loss became NaN or infinite: every later epoch would only repeat it."""

    def __init__(self, epoch: int, loss: float, kept: str = "nothing was kept") -> None:
        self.epoch = epoch
        self.loss = loss
        super().__init__(
            f"training diverged: the training loss is {loss} in epoch {epoch}; {kept} "
            "(try a lower train.lr, e.g. --set train.lr=1e-3, in a fresh run)"
        )


class StopOnNonFinite(Callback):
    """Stops training at the first batch whose loss is not finite.

    Without it a diverged run trains every epoch on NaN weights, then scores and writes
    NaN metrics; stopping before the epoch ends also keeps its NaN weights out of last.ckpt.
    """

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if isinstance(loss, torch.Tensor) and not bool(torch.isfinite(loss.detach()).all()):
            raise TrainingDiverged(trainer.current_epoch + 1, float(loss.detach().float().mean()))


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
