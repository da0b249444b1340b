"""`fit(config)`: one run from a config to an evaluated model in a run folder.

The run folder (`out_dir/name`, or `--out DIR`) holds:

    model.ckpt             the trained model (weights + hparams): what metrics.json scores,
                           what `laq:` compresses and what `SERClassifier.load_from_checkpoint` reads
    best.ckpt              the epoch with the best `train.monitor` value
    last.ckpt              the latest finished epoch, with optimizer state: what `--resume` continues
    config.yaml            the resolved config (every default filled in, paths absolute)
    metrics.json           val/test accuracy, macro-F1, per-class accuracy, confusion
                           matrices, parameter count, seed, split sizes, labels, timings
    confusion_matrix.png   the test confusion matrix
    logs/metrics.csv       the per-epoch training log (logs/resume-N/ after each resume)
    model.laq, laq.json    with a `laq:` section: the compressed model (serlaq.laq.callback)

Training follows the paper (Adam 1e-3, batch 32, dropout 0.1, early stopping with patience
5). Two details the paper leaves open were chosen on validation data only, never on a test
split (`benchmarks/bench_fit.py --select`: each seed's test split is set aside and the rest
is split again into inner train / val / holdout; 40 seeds on EMODB-2s, inner holdout
accuracy in %):

    monitor    final model                 inner val   inner holdout
    val_loss   best epoch (restored)       66.0        64.3
    val_acc    best epoch (restored)       70.4        65.3
    val_loss   where training stopped      66.6        66.8
    val_acc    where training stopped      67.3        67.7   <- default

So early stopping watches validation accuracy (the loss starts rising from overconfidence
while accuracy still improves), and the final model is the one where training stopped
(`train.restore_best: false`): picking the single best epoch on 54 validation clips
mostly picks validation noise (70.4 on the clips that chose it, 65.3 on fresh ones).

The final scores are computed once per sample on model.ckpt in the main process, so they
are exact whatever strategy trained the model (DDP pads uneven shards).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import signal
import time
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Callback, EarlyStopping, ModelCheckpoint, TQDMProgressBar
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from serlaq import __version__
from serlaq.config import RunConfig, atomic_write_bytes, save_config
from serlaq.data.datamodule import SERDataModule
from serlaq.errors import ConfigError
from serlaq.model import SERClassifier, count_parameters

MODEL = "model.ckpt"
BEST = "best.ckpt"
LAST = "last.ckpt"
CONFIG = "config.yaml"
METRICS = "metrics.json"
CONFUSION_PNG = "confusion_matrix.png"
LOGS = "logs"
# What a fresh (non-resumed) run replaces in an existing run folder; nothing else is touched.
LAQ_REPORT = "laq.json"  # written by serlaq.laq.callback.LAQCallback when `laq:` is set
RUN_OUTPUTS = (MODEL, BEST, LAST, CONFIG, METRICS, CONFUSION_PNG, LOGS, LAQ_REPORT, "model.laq", "qat")
# Config sections a resumed run must share with the run it continues.
RESUME_MUST_MATCH = ("seed", "data", "features", "model")


@dataclass
class RunResult:
    """What `fit` produced; `metrics` is the content of `metrics.json`.

    `checkpoint` (model.ckpt) is the trained model: what was tested and what to compress.
    """

    run_dir: Path
    checkpoint: Path
    best_checkpoint: Path
    last_checkpoint: Path
    metrics: dict[str, Any]
    laq: dict[str, Any] | None = None  # laq.json of the LAQ compression, when `laq:` is set

    @property
    def val_accuracy(self) -> float:
        return float(self.metrics["val"]["accuracy"])

    @property
    def test_accuracy(self) -> float:
        return float(self.metrics["test"]["accuracy"])


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


class SaveModel(Callback):
    """At the end of fit, settle the final model and save it (weights + hparams) as model.ckpt.

    With `restore_best` the weights of the best-monitored epoch are loaded back first.
    Runs before any later `on_fit_end` callback (the LAQ search), which therefore sees the
    final model in memory.
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


# --- the run ----------------------------------------------------------------------------


def fit(
    config: RunConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[Callback] = (),
    datamodule: SERDataModule | None = None,
) -> RunResult | None:
    """Train, stop on validation, test the final model, and write the run folder.

    `datamodule` replaces the one built from `config.data` (e.g. with explicit splits).
    Returns None in the non-zero ranks of a multi-process run (only rank 0 writes results).
    Raises `FitInterrupted` on Ctrl-C, `ConfigError`/`DataError`/`AudioError` on bad input.
    """
    with quiet_lightning():
        return _fit(config, resume, callbacks, datamodule)


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


def _fit(
    config: RunConfig, resume: bool, callbacks: Sequence[Callback], datamodule: SERDataModule | None
) -> RunResult | None:
    started = time.perf_counter()
    config = resolve_paths(config)
    run_dir = config.run_dir
    last_ckpt = run_dir / LAST
    if resume:
        check_resumable(config, run_dir)
    elif _is_launcher_process():
        clear_run_outputs(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    L.seed_everything(config.seed, workers=True, verbose=False)
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)

    if datamodule is None:
        datamodule = SERDataModule(config)
    datamodule.prepare_data()
    datamodule.setup("fit")
    data_s = time.perf_counter() - started

    model = build_model(config, datamodule)
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
        config, run_dir, [checkpoint, latest, early_stopping, RngCheckpoint(), save_model, *callbacks], resume
    )
    if laq is not None and trainer.world_size == 1:
        trainer.callbacks.append(laq)  # after SaveModel: it compresses the final model
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
    fit_s = time.perf_counter() - fit_started
    if trainer.state.status == "interrupted":
        raise FitInterrupted(run_dir, last_ckpt if last_ckpt.exists() else None)
    if not trainer.is_global_zero:
        return None
    if laq is not None and trainer.world_size > 1:
        compress_after_distributed_fit(laq, trainer)

    best_ckpt = Path(checkpoint.best_model_path) if checkpoint.best_model_path else last_ckpt
    metrics = evaluate_run(config, datamodule, run_dir / MODEL, best_ckpt, trainer, early_stopping)
    metrics["timings"] = {
        "data_s": round(data_s, 3),
        "fit_s": round(fit_s, 3),
        "total_s": round(time.perf_counter() - started, 3),
    }
    write_metrics(metrics, run_dir / METRICS)
    plot_confusion(metrics["test"]["confusion_matrix"], metrics["labels"], run_dir / CONFUSION_PNG)
    laq_report = json.loads((run_dir / LAQ_REPORT).read_text()) if config.laq is not None else None
    return RunResult(
        run_dir=run_dir,
        checkpoint=run_dir / MODEL,
        best_checkpoint=best_ckpt,
        last_checkpoint=last_ckpt,
        metrics=metrics,
        laq=laq_report,
    )


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
        # tqdm, not Lightning's default rich bar: rich allows one live display per console,
        # and the LAQ stage may run a nested Trainer (QAT) while this one is still live.
        callbacks.append(TQDMProgressBar())
    return L.Trainer(
        **settings,
        max_epochs=config.train.max_epochs,
        callbacks=callbacks,
        logger=logger,
        default_root_dir=run_dir,
        num_sanity_val_steps=0,  # data are checked when features are extracted
    )


def laq_callback(config: RunConfig) -> Callback:
    """The LAQ search after fit (issue: LAQ helper's `serlaq.laq.callback.LAQCallback`)."""
    try:
        from serlaq.laq.callback import LAQCallback
    except ImportError as exc:
        raise ConfigError(
            f"laq: the LAQ compression callback is not available in this build ({exc}); remove the laq section"
        ) from None
    return LAQCallback(config.laq)


def compress_after_distributed_fit(laq: Callback, trainer: L.Trainer) -> None:
    """Rank 0 alone runs the LAQ stage once the other processes are done.

    The stage may fine-tune (QAT) with a nested single-process Trainer, and any collective
    it issues in a still-live process group would wait forever for ranks that have left;
    so the group is closed first.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    laq.on_fit_end(trainer, trainer.lightning_module)


def evaluate_run(
    config: RunConfig,
    datamodule: SERDataModule,
    model_ckpt: Path,
    best_ckpt: Path,
    trainer: L.Trainer,
    early_stopping: EarlyStopping,
) -> dict[str, Any]:
    """The content of metrics.json: the final model (model.ckpt) scored on val and test."""
    model = SERClassifier.load_from_checkpoint(model_ckpt, map_location="cpu")
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


def format_summary(result: RunResult) -> str:
    """A few lines for the terminal: where the run is and how it scored."""
    m = result.metrics
    sizes = m["split_sizes"]
    lines = [
        f"run folder   {result.run_dir}",
        f"data         {m['dataset']}: {sizes['train']} train / {sizes['val']} val / {sizes['test']} test clips, "
        f"{len(m['labels'])} classes",
        f"model        MLP {m['input_dim']}-{'-'.join(map(str, m['hidden']))}-{len(m['labels'])}, "
        f"{m['parameters']:,} parameters ({m['fp32_bytes'] / 1000:.0f} KB fp32)",
        f"epochs       {m['epochs']} (best {m['monitor']} at epoch {m['best_epoch'] + 1}; "
        f"model = epoch {m['model_epoch'] + 1}{', restored' if m['restore_best'] else ', where training stopped'})",
        f"val          accuracy {100 * m['val']['accuracy']:.2f}%  macro-F1 {100 * m['val']['macro_f1']:.2f}%",
        f"test         accuracy {100 * m['test']['accuracy']:.2f}%  macro-F1 {100 * m['test']['macro_f1']:.2f}%",
        f"time         {m['timings']['total_s']:.1f} s (data {m['timings']['data_s']:.1f} s, "
        f"training {m['timings']['fit_s']:.1f} s)",
        f"wrote        {MODEL}, {METRICS}, {CONFUSION_PNG}, {LOGS}/, {CONFIG} (+ {BEST}, {LAST})",
    ]
    if result.laq is not None:
        lines.append(_laq_line(result.laq))
    return "\n".join(lines)


def _laq_line(report: dict[str, Any]) -> str:
    try:
        sizes, accuracy = report["sizes"], report["accuracy"]
        return (
            f"compressed   {report['laq_file']}: {report['avg_bits']:.2f} average bits, {sizes['file_kb']:.1f} KB "
            f"(fp32 {sizes['fp32_kb']:.0f} KB), test accuracy {100 * accuracy['laq_test']:.2f}% "
            f"(fp32 {100 * accuracy['fp32_test']:.2f}%), details in {LAQ_REPORT}"
        )
    except (KeyError, TypeError, ValueError):
        return f"compressed   see {LAQ_REPORT}"


# --- run folder -------------------------------------------------------------------------


def resolve_paths(config: RunConfig) -> RunConfig:
    """Absolute data/cache/output paths, so the saved config works from any directory."""
    data = config.data.model_copy(
        update={
            "data_dir": config.data.data_dir.resolve() if config.data.data_dir else None,
            "manifest": config.data.manifest.resolve() if config.data.manifest else None,
            "cache_dir": config.data.cache_dir.resolve(),
        }
    )
    return config.model_copy(update={"data": data, "out_dir": config.out_dir.resolve()})


def check_resumable(config: RunConfig, run_dir: Path) -> None:
    """A resumed run continues the same data, features and model, from its last.ckpt."""
    if not (run_dir / LAST).is_file():
        raise ConfigError(f"{run_dir}: nothing to resume (no {LAST}); run without --resume to start it")
    saved_path = run_dir / CONFIG
    if not saved_path.is_file():
        return
    from serlaq.config import load_config

    saved = resolve_paths(load_config(saved_path)).to_dict()
    current = config.to_dict()
    for section in RESUME_MUST_MATCH:
        key = _first_difference(saved.get(section), current.get(section), section)
        if key is not None:
            raise ConfigError(
                f"{saved_path}: cannot resume: {key} differs from this run's config "
                "(resume with the config the run started with, or start a new run without --resume)"
            )


def clear_run_outputs(run_dir: Path) -> None:
    """Remove a previous run's outputs so a fresh run never mixes with them."""
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()


def write_metrics(metrics: dict[str, Any], path: Path) -> None:
    atomic_write_bytes(path, (json.dumps(metrics, indent=2, allow_nan=False) + "\n").encode("utf-8"))


def plot_confusion(
    confusion: Sequence[Sequence[int]],
    labels: Sequence[str],
    path: Path,
    title: str | None = None,
    cells: str = "counts",
) -> None:
    """Row-normalized confusion matrix; the cells show the clip counts or (cells="rates") the row fractions.

    The default title is the test score ("test: correct/total correct"); serlaq report passes its own.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    counts = np.asarray(confusion, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = 1.0 + 0.7 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title if title is not None else f"test: {int(np.trace(counts))}/{int(counts.sum())} correct")
    for (row, col), count in np.ndenumerate(counts):
        text = f"{rates[row, col]:.2f}" if cells == "rates" else str(int(count))
        color = "white" if rates[row, col] > 0.5 else "black"
        ax.text(col, row, text, ha="center", va="center", color=color, fontsize=8 if cells == "rates" else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())


def _mode(monitor: str) -> str:
    return "min" if monitor.endswith("loss") else "max"


def _is_launcher_process() -> bool:
    """False in the worker processes a DDP launch starts (they must not clear the folder)."""
    return os.environ.get("LOCAL_RANK", "0") == "0" and os.environ.get("NODE_RANK", "0") == "0"


def _first_difference(a: Any, b: Any, key: str) -> str | None:
    if isinstance(a, dict) and isinstance(b, dict):
        for sub in sorted(set(a) | set(b)):
            found = _first_difference(a.get(sub), b.get(sub), f"{key}.{sub}")
            if found is not None:
                return found
        return None
    return None if a == b else key
