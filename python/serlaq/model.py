"""The paper's classifier: an MLP over standardized 180-d clip features (paper 4.4, Table 2).

`SERClassifier` is the LightningModule that trains it. It carries everything inference
needs inside the checkpoint: the train-split standardization as buffers, and the labels,
feature config and full run config in its hyperparameters, so a checkpoint alone rebuilds
both the model and its data pipeline.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from serlaq import metrics
from serlaq.errors import ConfigError
from serlaq.presets import DEFAULT_PRESET, PRESETS  # torch-free: config validation reads them


def resolve_hidden(hidden: str | Sequence[int]) -> list[int]:
    """Hidden widths from a Table-2 preset name ("3HL") or an explicit list of widths."""
    if isinstance(hidden, str):
        key = hidden.strip().upper()
        if key not in PRESETS:
            raise ConfigError(f"model.hidden: unknown preset {hidden!r} (choose one of {', '.join(PRESETS)} or a list of widths)")
        return list(PRESETS[key])
    widths = [int(w) for w in hidden]
    if not widths or any(w <= 0 for w in widths):
        raise ConfigError(f"model.hidden: widths must be a non-empty list of positive integers, got {list(hidden)}")
    return widths


class MLP(nn.Sequential):
    """Linear → ReLU → Dropout for each hidden width, then a Linear to the class logits.

    Dropout is the identity at inference, so the deployed network is exactly
    Linear/ReLU/.../Linear: the layer order the `.laq` runtime replays.
    """

    def __init__(self, input_dim: int, hidden: Sequence[int], num_classes: int, dropout: float = 0.1) -> None:
        layers: list[nn.Module] = []
        width_in = input_dim
        for width in hidden:
            layers += [nn.Linear(width_in, width), nn.ReLU(), nn.Dropout(dropout)]
            width_in = width
        layers.append(nn.Linear(width_in, num_classes))
        super().__init__(*layers)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def classification_metrics(logits: Tensor, target: Tensor, labels: Sequence[str]) -> dict[str, Any]:
    """Accuracy, macro-F1, UAR, per-class accuracy (recall) and confusion matrix of one split.

    A plain function (no metric state) so a saved checkpoint can be scored exactly once per
    sample, whatever strategy trained it. The scores are `serlaq.metrics` (float64 from the
    confusion counts), so the JSON holds exact ratios such as 50/54.
    """
    preds = logits.argmax(dim=-1)
    s = metrics.label_scores(target.numpy(), preds.numpy(), labels)
    conf = metrics.confidence_scores(torch.softmax(logits.double(), dim=-1).numpy(), target.numpy())
    return {
        "ece": conf["ece"],  # 15 equal-width bins (serlaq.metrics), softmax of the fp32 logits
        "mean_confidence": conf["mean_confidence"],
        "accuracy": s.accuracy,
        "macro_f1": s.macro_f1,
        "uar": s.uar,
        "per_class_accuracy": {c.label: (c.recall if c.support > 0 else None) for c in s.per_class},
        "per_class_f1": {c.label: c.f1 for c in s.per_class},
        "support": {c.label: c.support for c in s.per_class},
        "confusion_matrix": s.confusion.tolist(),
        "loss": float(F.cross_entropy(logits.double(), target)),
        "count": s.count,
    }


class SERClassifier(L.LightningModule):
    """The MLP with its train-split standardization, trained with Adam and cross-entropy."""

    def __init__(
        self,
        input_dim: int,
        num_classes: int,
        hidden: str | Sequence[int] = DEFAULT_PRESET,
        dropout: float = 0.1,
        lr: float = 1e-3,
        labels: Sequence[str] | None = None,
        feature_config: Mapping[str, Any] | None = None,
        run_config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__()
        labels = list(labels) if labels is not None else [str(i) for i in range(num_classes)]
        if len(labels) != num_classes:
            raise ConfigError(f"labels: {len(labels)} labels for {num_classes} classes")
        hidden = resolve_hidden(hidden)
        self.save_hyperparameters(
            {
                "input_dim": input_dim,
                "num_classes": num_classes,
                "hidden": hidden,
                "dropout": dropout,
                "lr": lr,
                "labels": labels,
                "feature_config": dict(feature_config) if feature_config is not None else None,
                "run_config": dict(run_config) if run_config is not None else None,
            }
        )
        self.labels = labels
        self.net = MLP(input_dim, hidden, num_classes, dropout)
        # Identity until the datamodule's train-split statistics are installed.
        self.register_buffer("feature_mean", torch.zeros(input_dim))
        self.register_buffer("feature_std", torch.ones(input_dim))
        metrics = MetricCollection(
            {
                "acc": MulticlassAccuracy(num_classes, average="micro"),
                "f1": MulticlassF1Score(num_classes, average="macro"),
            }
        )
        self.val_metrics = metrics.clone(prefix="val_")
        self.test_metrics = metrics.clone(prefix="test_")
        self.test_confusion = MulticlassConfusionMatrix(num_classes)

    # --- the model -------------------------------------------------------------------

    def set_normalization(self, mean: Tensor, std: Tensor) -> None:
        """Install the train-split feature statistics (saved with every checkpoint)."""
        self.feature_mean.copy_(torch.as_tensor(mean, dtype=self.feature_mean.dtype))
        self.feature_std.copy_(torch.as_tensor(std, dtype=self.feature_std.dtype))

    def standardize(self, x_raw: Tensor) -> Tensor:
        return (x_raw - self.feature_mean) / self.feature_std

    def forward(self, x_raw: Tensor) -> Tensor:
        """Class logits of raw (unstandardized) feature vectors."""
        return self.net(self.standardize(x_raw))

    def quantizable_layers(self) -> list[tuple[str, nn.Linear]]:
        """The Linear layers in forward order, named as in `state_dict` (e.g. "net.0")."""
        return [(f"net.{name}", layer) for name, layer in self.net.named_children() if isinstance(layer, nn.Linear)]

    @torch.no_grad()
    def predict_labels(self, x_raw: Tensor) -> list[str]:
        return [self.labels[i] for i in self(x_raw).argmax(dim=-1).tolist()]

    @torch.no_grad()
    def evaluate(self, x_raw: Tensor, target: Tensor) -> dict[str, Any]:
        """Metrics of this model on one split, every sample counted once (eval mode)."""
        was_training = self.training
        self.eval()
        try:
            logits = self(x_raw.to(self.device)).float().cpu()
        finally:
            self.train(was_training)
        return classification_metrics(logits, target.cpu(), self.labels)

    # --- training ----------------------------------------------------------------------

    def recipe(self) -> dict[str, Any]:
        """The run config's `train` recipe options (label smoothing, weight decay, schedule, noise)."""
        train = dict((self.hparams.get("run_config") or {}).get("train") or {})
        return {
            "label_smoothing": float(train.get("label_smoothing", 0.0)),
            "weight_decay": float(train.get("weight_decay", 0.0)),
            "scheduler": str(train.get("scheduler", "none")),
            "feature_noise": float(train.get("feature_noise", 0.0)),
            "max_epochs": int(train.get("max_epochs", 200)),
        }

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        x, y = batch
        recipe = self.recipe()
        z = self.standardize(x)
        if recipe["feature_noise"] > 0:
            z = z + recipe["feature_noise"] * torch.randn_like(z)
        loss = F.cross_entropy(self.net(z), y, label_smoothing=recipe["label_smoothing"])
        self.log("train_loss", loss, on_step=False, on_epoch=True, batch_size=len(y))
        return loss

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("val_loss", F.cross_entropy(logits, y), prog_bar=True, batch_size=len(y), sync_dist=True)
        self.val_metrics.update(logits, y)
        self.log_dict(self.val_metrics, prog_bar=True, batch_size=len(y))

    def test_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        x, y = batch
        logits = self(x)
        self.log("test_loss", F.cross_entropy(logits, y), batch_size=len(y), sync_dist=True)
        self.test_metrics.update(logits, y)
        self.test_confusion.update(logits, y)
        self.log_dict(self.test_metrics, batch_size=len(y))

    def on_test_epoch_end(self) -> None:
        # Kept on the module for callers of `trainer.test`; not a scalar, so not logged.
        self.test_confusion_matrix = self.test_confusion.compute().cpu()
        self.test_confusion.reset()

    def configure_optimizers(self) -> Any:
        recipe = self.recipe()
        if recipe["weight_decay"] > 0:
            opt: torch.optim.Optimizer = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=recipe["weight_decay"])
        else:
            opt = torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
        if recipe["scheduler"] == "cosine":
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, recipe["max_epochs"]))
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "epoch"}}
        return opt
