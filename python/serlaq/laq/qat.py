"""Quantization-aware fine-tuning (QAT) at a fixed bit plan (beyond the paper).

After the bit search, the model trains a few more epochs with every quantizable weight
replaced in the forward pass by its quantized value at the plan's bits (the same
`quantize()` that exports the `.laq`, recomputed from the current weights each step), and
the gradient passed straight through to the float weights (straight-through estimator).
The float weights are what the optimizer updates; at the end they are quantized once
more and exported, so the file holds exactly what the last forward pass used.

It is a Lightning stage with the run's Trainer settings (accelerator, precision,
determinism, progress bar), a CSV log and checkpoints in `<folder>/qat/`, validation loss
and accuracy of the quantized model every epoch, and early stopping on that validation
loss when `laq.qat.patience` is set.

The loss is the run's own: cross-entropy with the training recipe's label smoothing (read
from the model's `recipe()`; 0.1 in `tuned`, 0 in `paper`). Fine-tuning a model that fits
its training clips with plain cross-entropy grows the logits for 30 more epochs: the
compressed model was measured 0.8-0.9 sure of itself on corpora it never heard, against
0.5 for the same network trained with the recipe's smoothing (docs/adapt.md).

Defaults: 30 epochs, cosine decay from the run's learning rate to 0, no early stopping,
keep the last epoch. They were chosen with `benchmarks/bench_laq.py --select` on inner
holdouts (20 seeds each of EMODB and EMODB-2s, test splits never used): running the whole
cosine schedule beat stopping early on validation loss (patience 10: 1.1 points lower on
both corpora) and beat ending on the lowest-val_loss epoch (about 2 points lower); a
~53-clip validation loss mostly measures noise, and stopping cuts the decay short before
the binary weights settle.
"""

from __future__ import annotations

import copy
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger
from torch import Tensor, nn
from torch.func import functional_call

from serlaq.laq.layers import quantizable_layers
from serlaq.laq.quantize import QuantScheme, quantize
from serlaq.lightning_utils import progress_bar, quiet_lightning


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantized weight exactly; backward: the gradient passed to the float weight."""

    @staticmethod
    def forward(ctx: Any, w: Tensor, q: Tensor) -> Tensor:
        return q

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


class QATModule(L.LightningModule):
    """Wraps a classifier; its forward runs the weights fake-quantized at `plan` (STE)."""

    def __init__(
        self,
        model: nn.Module,
        plan: Mapping[str, int] | None,
        scheme: QuantScheme,
        lr: float,
        epochs: int,
        schedule: str = "cosine",
        label_smoothing: float = 0.0,
    ) -> None:
        super().__init__()
        self.model = model
        self.label_smoothing = label_smoothing
        # plan None: the same fine-tuning in fp32 (the control row: is a QAT gain just longer training?)
        self.plan = None if plan is None else dict(plan)
        self.scheme = scheme
        self.lr = lr
        self.epochs = epochs
        self.schedule = schedule
        self._layers = quantizable_layers(model)  # the modules train in place: read once
        self._names = [n for n, _ in self._layers]
        self.best_val_loss: float | None = None
        self.best_state: dict[str, Tensor] | None = None
        missing = set() if self.plan is None else set(self._names) - set(self.plan)
        if missing:
            raise ValueError(f"bit plan has no bits for layer(s) {sorted(missing)}")

    def fake_quant_weights(self) -> dict[str, Tensor]:
        """{"net.0.weight": Q(w), ...} with the identity gradient to w (straight-through)."""
        assert self.plan is not None
        out = {}
        for name, layer in self._layers:
            w = layer.weight
            q = quantize(w.detach().float().cpu(), self.plan[name], self.scheme).dequantize().to(w.device, w.dtype)
            out[f"{name}.weight"] = _StraightThrough.apply(w, q)
        return out

    def forward(self, x: Tensor) -> Tensor:
        if self.plan is None:
            return self.model(x)
        return functional_call(self.model, self.fake_quant_weights(), (x,))

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        loss = F.cross_entropy(self(x), y, label_smoothing=self.label_smoothing)
        self.log("qat_train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True, batch_size=len(y))
        self.log("val_acc", (logits.argmax(dim=1) == y).float().mean(), prog_bar=True, batch_size=len(y))

    def on_validation_epoch_end(self) -> None:
        # the lowest-val_loss weights, kept in memory for `restore_best`
        loss = self.trainer.callback_metrics.get("val_loss")
        if loss is not None and (self.best_val_loss is None or float(loss) < self.best_val_loss):
            self.best_val_loss = float(loss)
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def configure_optimizers(self) -> Any:
        opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        if self.schedule == "constant":
            return opt
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=self.epochs)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}


@dataclass
class QatResult:
    model: nn.Module  # the fine-tuned float weights (quantize them with the plan to deploy)
    epochs: int
    stopped_early: bool
    best_val_loss: float | None
    seconds: float
    folder: Path | None
    label_smoothing: float = 0.0  # the loss it fine-tuned with

    def as_dict(self) -> dict[str, Any]:
        return {
            "epochs": self.epochs,
            "label_smoothing": self.label_smoothing,
            "stopped_early": self.stopped_early,
            "best_val_loss": self.best_val_loss,
            "seconds": round(self.seconds, 3),
            "folder": None if self.folder is None else str(self.folder),
        }


def finetune(
    model: nn.Module,
    plan: Mapping[str, int] | None,
    scheme: QuantScheme,
    datamodule: L.LightningDataModule,
    *,
    epochs: int = 30,
    lr: float = 1e-3,
    schedule: str = "cosine",
    patience: int | None = None,
    restore_best: bool = False,
    label_smoothing: float | None = None,
    trainer_settings: Mapping[str, Any] | None = None,
    folder: str | Path | None = None,
    seed: int = 0,
) -> QatResult:
    """Fine-tune a copy of `model` at `plan` (None: in fp32); the original is not modified.

    `trainer_settings` are `lightning.Trainer` keyword arguments (the run's `trainer:`
    section); multi-process settings are reduced to one process, since QAT runs where the
    search ran (rank 0). `folder` receives `qat/` with the CSV log and checkpoints.
    `label_smoothing` None = the model's training recipe's (`model.recipe()`).
    """
    started = time.perf_counter()
    student = copy.deepcopy(model).cpu().train()
    if label_smoothing is None:  # the run's own loss
        recipe = model.recipe() if callable(getattr(model, "recipe", None)) else {}
        label_smoothing = float(recipe.get("label_smoothing", 0.0))
    module = QATModule(student, plan, scheme, lr=lr, epochs=epochs, schedule=schedule, label_smoothing=label_smoothing)
    settings = dict(trainer_settings or {})
    for key in ("devices", "num_nodes", "strategy"):
        settings.pop(key, None)
    settings.pop("max_epochs", None)
    settings.setdefault("enable_model_summary", False)
    callbacks: list[Any] = [progress_bar("QAT")] if settings.get("enable_progress_bar", True) else []
    stopper = None
    if patience is not None:
        stopper = EarlyStopping(monitor="val_loss", mode="min", patience=patience)
        callbacks.append(stopper)
    qat_dir = None if folder is None else Path(folder) / "qat"
    checkpoint = None
    if qat_dir is not None:
        checkpoint = ModelCheckpoint(
            dirpath=qat_dir,
            filename="best",
            monitor="val_loss",
            mode="min",
            save_top_k=1,
            save_last=True,
            enable_version_counter=False,
            save_weights_only=True,
        )
        callbacks.append(checkpoint)
    if qat_dir is not None and qat_dir.is_dir():
        shutil.rmtree(qat_dir)  # a previous QAT's checkpoints must not mix with this one's
    logger: Any = CSVLogger(save_dir=qat_dir, name="logs", version="") if qat_dir is not None else False
    L.seed_everything(seed, workers=True, verbose=False)
    with quiet_lightning():
        trainer = _trainer(settings, epochs, callbacks, logger, checkpoint is not None, qat_dir)
        try:
            trainer.fit(module, datamodule=datamodule)
        except SystemExit:
            # Lightning answers Ctrl-C with a graceful shutdown and SystemExit(1), which no
            # caller can tell from a real exit: hand the Ctrl-C on as what it is.
            if trainer.state.status == "interrupted":
                raise KeyboardInterrupt from None
            raise
    if restore_best and module.best_state is not None:
        student.load_state_dict(module.best_state)
    student.eval()
    return QatResult(
        model=student,
        epochs=int(trainer.current_epoch),
        stopped_early=bool(stopper is not None and stopper.stopped_epoch),
        best_val_loss=module.best_val_loss,
        seconds=time.perf_counter() - started,
        folder=qat_dir,
        label_smoothing=label_smoothing,
    )


def _trainer(settings: Mapping[str, Any], epochs: int, callbacks: list[Any], logger: Any, checkpointing: bool, root: Path | None) -> L.Trainer:
    return L.Trainer(
        **settings,
        devices=1,
        num_nodes=1,
        max_epochs=epochs,
        callbacks=callbacks,
        logger=logger,
        enable_checkpointing=checkpointing,
        default_root_dir=root,
        num_sanity_val_steps=0,
    )
