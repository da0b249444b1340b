"""The run itself: config → data → Trainer → model.ckpt → metrics.json → [LAQ stage]."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from serlaq.config import RunConfig, save_config
from serlaq.cpus import available_cpus
from serlaq.data.datamodule import SERDataModule
from serlaq.errors import ConfigError, SerlaqError
from serlaq.lightning_utils import progress_bar, quiet_lightning
from serlaq.model import SERClassifier
from serlaq.plots import plot_confusion
from serlaq.training.callbacks import RngCheckpoint, SaveModel, StopOnNonFinite, TrainingDiverged
from serlaq.training.run_folder import (
    BEST,
    CONFIG,
    CONFUSION_PNG,
    LAST,
    LOGS,
    METRICS,
    MODEL,
    RunResult,
    check_resumable,
    check_run_folder,
    check_writable,
    clear_laq_outputs,
    clear_run_outputs,
    laq_outputs,
    resolve_paths,
    write_metrics,
)
from serlaq.training.scoring import evaluate_run


class FitInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: the run folder keeps its last finished epoch."""

    def __init__(self, run_dir: Path, last_checkpoint: Path | None) -> None:
        self.run_dir = run_dir
        self.last_checkpoint = last_checkpoint
        if last_checkpoint is not None:
            message = (
                f"interrupted; the last good checkpoint is {last_checkpoint}; "
                f"continue with the same command plus --resume (or: serlaq fit --resume --out {run_dir})"
            )
        else:
            message = f"interrupted before the first epoch finished; nothing to resume in {run_dir}"
        super().__init__(message)


class CompressionInterrupted(FitInterrupted):
    """Ctrl-C during the LAQ stage: training is complete and written (model.ckpt, metrics.json)."""

    def __init__(self, result: RunResult) -> None:
        self.result = result
        self.run_dir = result.run_dir
        self.last_checkpoint = result.last_checkpoint
        KeyboardInterrupt.__init__(
            self,
            f"interrupted during the compression; training is complete and kept in {result.run_dir} "
            f"({MODEL}, {METRICS}); redo the compression with serlaq compress --checkpoint {result.checkpoint}",
        )


class CompressionError(SerlaqError):
    """The LAQ stage failed after training; the run folder (metrics.json included) is complete.

    `result` is the run without its compression; `__cause__` is the original error.
    """

    def __init__(self, result: RunResult, cause: BaseException) -> None:
        self.result = result
        detail = str(cause).splitlines()[0] if str(cause) else ""
        super().__init__(
            f"laq: compression failed after training ({type(cause).__name__}{': ' + detail if detail else ''}); "
            f"{result.run_dir / METRICS} is written; retry the compression with "
            f"serlaq compress --checkpoint {result.checkpoint}"
        )


def fit(
    config: RunConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    datamodule: SERDataModule | None = None,
) -> RunResult | None:
    """Train, stop on validation, test the final model, write the run folder, then compress.

    `datamodule` replaces the one built from `config.data` (e.g. with explicit splits).
    Returns None in the non-zero ranks of a multi-process run (only rank 0 writes results).
    Raises `FitInterrupted` on Ctrl-C, `ConfigError`/`DataError`/`AudioError` on bad input,
    `CompressionError` when the `laq:` stage fails (everything else is written by then).
    """
    with quiet_lightning():
        return _fit(config, resume, callbacks, datamodule)


def _fit(
    config: RunConfig, resume: bool, callbacks: Sequence[Callback], datamodule: SERDataModule | None
) -> RunResult | None:
    started = time.perf_counter()
    check_trainer(config)  # before a previous run's outputs are cleared
    config = resolve_paths(config)
    run_dir = config.run_dir
    last_ckpt = run_dir / LAST
    # DDP workers re-run this function: the launcher alone checks and clears the folder
    fresh = not resume and _is_launcher_process()
    created = not run_dir.exists()
    check_writable(run_dir, "run folder (out_dir/name or --out)")
    try:
        check_writable(config.data.cache_dir, "feature cache (data.cache_dir or $SERLAQ_CACHE)")
        if resume:
            check_resumable(config, run_dir)
        elif fresh:
            check_run_folder(run_dir)

        L.seed_everything(config.seed, workers=True, verbose=False)
        # one intra-op pool for training and the QAT after it, sized to the CPUs this process has
        torch.set_num_threads(config.train.threads or available_cpus())

        if datamodule is None:
            datamodule = SERDataModule(config)
        datamodule.prepare_data()
        datamodule.setup("fit")
    except BaseException:
        if created:  # leave no empty folder behind a run that never started
            _remove_if_empty(run_dir)
        raise
    data_s = time.perf_counter() - started
    model = build_model(config, datamodule)
    # Only now, with the data read and the model built, is the new run sure to start: a
    # mistyped corpus or a bad clip has failed above and the previous run is still whole.
    new_laq = laq_outputs(config.laq.out if config.laq is not None else None)
    if fresh:
        clear_run_outputs(run_dir, new_laq)
    elif resume and _is_launcher_process():  # the model changes: its old .laq must not pass for the new one
        clear_laq_outputs(run_dir, new_laq)
    run_dir.mkdir(parents=True, exist_ok=True)
    checkpoint = ModelCheckpoint(
        dirpath=run_dir,
        filename=Path(BEST).stem,
        monitor=config.train.monitor,
        mode=_mode(config.train.monitor),
        save_top_k=1,
        enable_version_counter=False,
    )
    # A second, unmonitored checkpoint rewritten every epoch: Lightning's own `save_last`
    # only writes when the monitored metric improves, which is not "the last epoch".
    latest = ModelCheckpoint(dirpath=run_dir, filename=Path(LAST).stem, save_top_k=1, enable_version_counter=False)
    early_stopping = EarlyStopping(
        monitor=config.train.monitor, mode=_mode(config.train.monitor), patience=config.train.patience
    )
    save_model = SaveModel(run_dir / MODEL, checkpoint, config.train.restore_best)
    laq = laq_callback(config) if config.laq is not None else None
    trainer = build_trainer(
        config,
        run_dir,
        [StopOnNonFinite(), checkpoint, latest, early_stopping, RngCheckpoint(), save_model, *callbacks],
        resume,
    )
    if trainer.is_global_zero:
        save_config(config, run_dir / CONFIG)

    fit_started = time.perf_counter()
    try:
        trainer.fit(model, datamodule=datamodule, ckpt_path=str(last_ckpt) if resume else None)
    except (KeyboardInterrupt, SystemExit) as exc:
        # Lightning turns Ctrl-C into SystemExit after a graceful shutdown; other exits pass.
        if isinstance(exc, SystemExit) and trainer.state.status != "interrupted":
            raise
        signal.signal(signal.SIGINT, signal.default_int_handler)
        raise FitInterrupted(run_dir, last_ckpt if last_ckpt.exists() else None) from None
    except TrainingDiverged as exc:
        raise diverged(exc, config, fresh) from None
    fit_s = time.perf_counter() - fit_started
    if trainer.state.status == "interrupted":
        raise FitInterrupted(run_dir, last_ckpt if last_ckpt.exists() else None)
    if not trainer.is_global_zero:
        return None

    best_ckpt = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last_ckpt
    metrics = evaluate_run(config, datamodule, run_dir / MODEL, best_ckpt, trainer, early_stopping)
    metrics["timings"] = {
        "data_s": round(data_s, 3),
        "fit_s": round(fit_s, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }
    write_metrics(metrics, run_dir / METRICS)
    test = metrics["test"]["confusion_matrix"]
    plot_confusion(test, metrics["labels"], run_dir / CONFUSION_PNG, title=f"test: {_correct(test)} correct")
    result = RunResult(
        run_dir=run_dir,
        checkpoint=run_dir / MODEL,
        best_checkpoint=best_ckpt,
        last_checkpoint=last_ckpt,
        metrics=metrics,
    )
    if laq is not None:
        try:
            compress_after_fit(laq, trainer)
        except KeyboardInterrupt:  # the QAT's Trainer turns Ctrl-C into KeyboardInterrupt (laq/qat.py)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # Lightning left Ctrl-C ignored
            raise CompressionInterrupted(result) from None
        except Exception as exc:
            raise CompressionError(result, exc) from exc
        result.laq = json.loads(laq_report(config).read_text())
    return result


def laq_report(config: RunConfig) -> Path:
    """The report the LAQ stage writes next to its `.laq` (`laq.json`, or `<stem>.json`)."""
    from serlaq.laq.compress import summary_path

    assert config.laq is not None
    return summary_path(config.run_dir / config.laq.resolved().out)


def diverged(exc: TrainingDiverged, config: RunConfig, fresh: bool) -> TrainingDiverged:
    """A fresh run that diverged leaves nothing behind: its checkpoints (if an epoch ended
    before) continue a run that diverges, and train.lr cannot change on resume."""
    if fresh:
        clear_run_outputs(config.run_dir, laq_outputs(config.laq.out if config.laq is not None else None))
        _remove_if_empty(config.run_dir)
        return exc
    return TrainingDiverged(exc.epoch, exc.loss, kept=f"{config.run_dir / LAST} is the last finished epoch before it")


def build_model(config: RunConfig, datamodule: SERDataModule) -> SERClassifier:
    """The classifier for this data, carrying its standardization and the full run config."""
    model = SERClassifier(
        input_dim=datamodule.feature_dim,
        num_classes=len(datamodule.labels),
        hidden=config.model.hidden,
        dropout=config.model.dropout,
        lr=config.train.lr,
        labels=datamodule.labels,
        feature_config=config.features.model_dump(mode="json"),
        run_config=config.to_dict(),
    )
    model.set_normalization(datamodule.feature_mean, datamodule.feature_std)
    return model


def build_trainer(config: RunConfig, run_dir: Path, callbacks: Sequence[Callback], resume: bool) -> L.Trainer:
    """A Trainer from `config.trainer` (passed through) plus the run's callbacks and CSV log."""
    settings = config.trainer.model_dump(exclude_none=True)
    resumes = len(list((run_dir / LOGS).glob("resume-*"))) if resume else 0
    logger = CSVLogger(save_dir=run_dir, name=LOGS, version=f"resume-{resumes + 1}" if resume else "")
    callbacks = list(callbacks)
    if config.trainer.enable_progress_bar:
        callbacks.append(progress_bar("training"))
    return L.Trainer(
        **settings,
        max_epochs=config.train.max_epochs,
        callbacks=callbacks,
        logger=logger,
        default_root_dir=run_dir,
        num_sanity_val_steps=0,  # data are checked when features are extracted
    )


def check_trainer(config: RunConfig) -> None:
    """The `trainer:` settings tried on Lightning before any data is read or folder written:
    a GPU asked for on a machine without one, or a precision Lightning does not know, is one
    line naming the section, not a traceback after feature extraction."""
    from lightning.fabric.utilities.exceptions import MisconfigurationException

    settings = config.trainer.model_dump(exclude_none=True)
    try:
        L.Trainer(**{**settings, "logger": False, "enable_checkpointing": False, "enable_progress_bar": False})
    except (MisconfigurationException, ImportError, ValueError, TypeError, RuntimeError) as exc:
        given = ", ".join(f"{k}: {v}" for k, v in config.trainer.model_dump(exclude_defaults=True).items())
        detail = " ".join(str(exc).split()) or type(exc).__name__
        raise ConfigError(f"trainer{f' ({given})' if given else ''}: Lightning refuses these settings: {detail}") from None
    check_trains_and_validates(config)


def check_trains_and_validates(config: RunConfig) -> None:
    """Settings Lightning accepts but that leave no training or no validation: the run would
    train for nothing, then fail after the last epoch with no monitored score or checkpoint."""
    trainer = config.trainer
    for key, limit in (("limit_train_batches", trainer.limit_train_batches), ("limit_val_batches", trainer.limit_val_batches)):
        if limit is not None and limit <= 0:
            raise ConfigError(f"trainer.{key}: {limit} runs no {key.split('_')[1]} batches; leave it unset or give more than 0")
    if trainer.check_val_every_n_epoch > config.train.max_epochs:
        raise ConfigError(
            f"trainer.check_val_every_n_epoch: {trainer.check_val_every_n_epoch} is more than train.max_epochs "
            f"({config.train.max_epochs}), so the run would never validate; give at most {config.train.max_epochs}"
        )


def laq_callback(config: RunConfig) -> Callback:
    """The LAQ stage of `config.laq` (`serlaq.laq.callback.LAQCallback`)."""
    from serlaq.laq.callback import LAQCallback

    return LAQCallback(config.laq)


def compress_after_fit(laq: Callback, trainer: L.Trainer) -> None:
    """Rank 0 alone runs the LAQ stage on the final model, once training is over.

    The stage may fine-tune (QAT) with a nested single-process Trainer, and any collective
    it issues in a still-live process group would wait forever for ranks that have left;
    so a multi-process group is closed first.
    """
    if trainer.world_size > 1:
        import torch.distributed as dist

        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    laq.on_fit_end(trainer, trainer.lightning_module)


def _correct(confusion: Sequence[Sequence[int]]) -> str:
    total = sum(sum(row) for row in confusion)
    return f"{sum(confusion[i][i] for i in range(len(confusion)))}/{total}"


def _mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()
    except OSError:  # not empty, or gone
        pass


def _is_launcher_process() -> bool:
    """False in the worker processes a DDP launch starts (they must not clear the folder)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"
