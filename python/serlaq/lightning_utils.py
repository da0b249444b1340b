"""What every Lightning stage of serlaq shares (training, QAT, reports): quiet logs and progress.

- `quiet_lightning()` hides Lightning's banner lines and its advice aimed at large data.
- `progress_bar()` is the progress callback for the terminal at hand: a live tqdm bar in
  a terminal, and outside one (CI, `make demo > log`) `SummaryProgress`, a few plain
  summary lines instead of one line per update.

Imports lightning; used by the model-side layers above it (laq, training, reports).
"""

from __future__ import annotations

import logging
import math
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ProgressBar, TQDMProgressBar
from lightning.pytorch.utilities.warnings import PossibleUserWarning


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Hide Lightning's banner lines and its advice aimed at large data (few batches per
    epoch, no loader workers): on a corpus of a few hundred clips they are noise."""
    loggers = [logging.getLogger(name) for name in ("lightning.pytorch", "lightning.fabric")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=PossibleUserWarning)
            warnings.filterwarnings("ignore", message=r".*exists and is not empty")
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


def interactive() -> bool:
    """True when progress goes to a terminal (stderr is a TTY)."""
    isatty = getattr(sys.stderr, "isatty", None)
    return bool(isatty and isatty())


def progress_bar(title: str = "training") -> ProgressBar:
    """tqdm in a terminal, `SummaryProgress` elsewhere.

    tqdm, not Lightning's default rich bar: rich allows one live display per console, and
    the LAQ stage may run a nested Trainer (QAT) while another one is still live.
    """
    return TQDMProgressBar() if interactive() else SummaryProgress(title)


class SummaryProgress(ProgressBar):
    """Progress for logs: one line per `every`-th epoch (about `lines` in all) and one at the end.

    Each line names the epoch and the epoch-level metrics (losses, validation accuracy);
    nothing is printed per batch or per validation pass.
    """

    def __init__(self, title: str = "training", lines: int = 10) -> None:
        super().__init__()
        self.title = title
        self.lines = lines
        self._enabled = True
        self._printed_epoch: int | None = None

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    def _say(self, trainer: L.Trainer, text: str) -> None:
        if self._enabled and trainer.is_global_zero:
            print(f"{self.title}: {text}", file=sys.stderr, flush=True)

    def _every(self, trainer: L.Trainer) -> int:
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else self.lines
        return max(1, math.ceil(max_epochs / self.lines))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._printed_epoch = None
        self._say(
            trainer,
            f"up to {trainer.max_epochs} epochs of {self.total_train_batches} batches from epoch {trainer.current_epoch + 1}",
        )

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch == 0 or (epoch + 1) % self._every(trainer) == 0:
            self._epoch_line(trainer, epoch)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        last = trainer.current_epoch - 1  # current_epoch counts the finished epochs here
        if last >= 0 and self._printed_epoch != last:
            self._epoch_line(trainer, last)
        self._say(trainer, f"done after {trainer.current_epoch} epochs")

    def _epoch_line(self, trainer: L.Trainer, epoch: int) -> None:
        self._printed_epoch = epoch
        values = " ".join(f"{k} {_scalar(v):.4f}" for k, v in sorted(trainer.callback_metrics.items()) if _is_scalar(v))
        self._say(trainer, f"epoch {epoch + 1}/{trainer.max_epochs} {values}".rstrip())


def _is_scalar(value: Any) -> bool:
    return getattr(value, "numel", lambda: 1)() == 1


def _scalar(value: Any) -> float:
    return float(value.item() if hasattr(value, "item") else value)
