"""`fit(config)` end to end on a tiny synthetic corpus: run folder, checkpoint contents,
determinism, Ctrl-C and resume."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch.callbacks import Callback

from conftest import tiny_config as shared_tiny_config

from serlaq.config import RunConfig
from serlaq.data.datamodule import SERDataModule
from serlaq.feature_config import FeatureConfig
from serlaq.errors import ConfigError
from serlaq.model import SERClassifier
from serlaq.training import CompressionError, FitInterrupted, RunResult, check_resumable, fit

# conftest.TINY_RUN: 7 emotions x 10 clips of 0.5 s = 56 / 7 / 7 clips, one per class in val and in test
TRAIN = {"train.patience": 3, "laq": None}  # compression has its own tests


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("serlaq-cache")


def tiny_config(out_dir: Path, cache_dir: Path, name: str = "tiny", **overrides: Any) -> RunConfig:
    return shared_tiny_config(out_dir, cache_dir, name, **{**TRAIN, **overrides})


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> RunResult:
    result = fit(tiny_config(tmp_path_factory.mktemp("runs"), cache_dir))
    assert result is not None
    return result


def test_fit_writes_the_run_folder(tiny_run: RunResult) -> None:
    run_dir = tiny_run.run_dir
    for name in ("model.ckpt", "best.ckpt", "last.ckpt", "config.yaml", "metrics.json", "confusion_matrix.png", "logs/metrics.csv"):
        assert (run_dir / name).is_file(), name
    assert (run_dir / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(run_dir.glob(".*.tmp")) and not list(run_dir.glob("*-v1.ckpt"))

    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics == tiny_run.metrics
    labels = ["angry", "boredom", "disgust", "fear", "happy", "neutral", "sad"]
    assert metrics["labels"] == labels
    assert metrics["split_sizes"] == {"train": 56, "val": 7, "test": 7}
    assert metrics["seed"] == 0 and metrics["world_size"] == 1
    assert metrics["parameters"] == (248 * 64 + 64) + (64 * 32 + 32) + (32 * 7 + 7)  # the default preset: 248-d
    assert metrics["data"]["clips_used"] == 70 and metrics["data"]["clips_skipped"] == 0
    assert 0 <= metrics["best_epoch"] < metrics["epochs"] <= 6
    assert metrics["checkpoint"] == "model.ckpt" and metrics["monitor"] == "val_acc"
    assert metrics["model_epoch"] == metrics["epochs"] - 1  # restore_best: false keeps the final weights
    # last.ckpt is the latest epoch even when the monitored metric did not improve in it
    assert torch.load(run_dir / "last.ckpt", map_location="cpu", weights_only=True)["epoch"] == metrics["epochs"] - 1
    for split in ("val", "test"):
        scores = metrics[split]
        confusion = np.array(scores["confusion_matrix"])
        assert confusion.shape == (7, 7) and confusion.sum() == metrics["split_sizes"][split]
        assert scores["accuracy"] == pytest.approx(np.trace(confusion) / confusion.sum())
        assert set(scores["per_class_accuracy"]) == set(labels)
        assert 0.0 <= scores["macro_f1"] <= 1.0
    assert set(metrics["timings"]) == {"data_s", "fit_s", "total_s"}

    rows = (run_dir / "logs" / "metrics.csv").read_text().splitlines()
    assert {"epoch", "train_loss", "val_loss", "val_acc", "val_f1"} <= set(rows[0].split(","))
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert saved["model"]["hidden"] == [64, 32] and Path(saved["data"]["cache_dir"]).is_absolute()


def test_checkpoint_alone_rebuilds_model_and_data(tiny_run: RunResult) -> None:
    model = SERClassifier.load_from_checkpoint(tiny_run.checkpoint, map_location="cpu")
    assert model.hparams.labels == tiny_run.metrics["labels"]
    assert model.hparams.feature_config["sample_rate"] == FeatureConfig().sample_rate  # the default preset's
    assert model.hparams.run_config["model"]["hidden"] == [64, 32]

    datamodule = SERDataModule.from_model(model)
    x_train, _ = datamodule.split_tensors("train")
    # standardization fitted on the training split only, and carried by the checkpoint
    assert torch.allclose(model.feature_mean, x_train.double().mean(0).float())
    std = x_train.double().std(0, unbiased=False).float()
    # a constant feature (portable's MFCC-0 mean is 0 by definition) keeps std 1
    assert torch.allclose(model.feature_std, torch.where(std > 0, std, torch.ones_like(std)))
    x_all = torch.cat([datamodule.split_tensors(s)[0] for s in ("train", "val", "test")])
    assert not torch.allclose(model.feature_mean, x_all.mean(0))

    assert sum(len(datamodule.split_clips(s)) for s in ("train", "val", "test")) == 70
    assert model.evaluate(*datamodule.split_tensors("test"))["accuracy"] == tiny_run.test_accuracy
    assert model.evaluate(*datamodule.split_tensors("val"))["accuracy"] == tiny_run.val_accuracy


def test_same_seed_same_split_and_scores(tmp_path: Path, cache_dir: Path, tiny_run: RunResult) -> None:
    again = fit(tiny_config(tmp_path, cache_dir))
    assert again is not None
    for key in ("val", "test", "best_epoch", "epochs", "split_sizes"):
        assert again.metrics[key] == tiny_run.metrics[key], key
    first = torch.load(tiny_run.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    second = torch.load(again.checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_seed_changes_the_split(cache_dir: Path, tmp_path: Path) -> None:
    def test_clips(seed: int) -> list[Path]:
        datamodule = SERDataModule(tiny_config(tmp_path, cache_dir, seed=seed))
        datamodule.setup()
        return [clip.path for clip in datamodule.split_clips("test")]

    assert test_clips(0) == test_clips(0)
    assert test_clips(0) != test_clips(1)


class InterruptAt(Callback):
    """Raises KeyboardInterrupt (what Ctrl-C does) at the end of one training epoch."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if trainer.current_epoch == self.epoch:
            raise KeyboardInterrupt


def test_interrupt_keeps_last_checkpoint_and_resume_finishes_the_same_run(
    tmp_path: Path, cache_dir: Path
) -> None:
    settings = {"train.patience": 50, "train.max_epochs": 6}
    straight = fit(tiny_config(tmp_path, cache_dir, name="straight", **settings))
    assert straight is not None

    config = tiny_config(tmp_path, cache_dir, name="cut", **settings)
    with pytest.raises(FitInterrupted) as info:
        fit(config, callbacks=[InterruptAt(epoch=2)])
    assert "--resume" in str(info.value)
    assert info.value.last_checkpoint == config.run_dir / "last.ckpt"
    interrupted_at = torch.load(config.run_dir / "last.ckpt", map_location="cpu", weights_only=True)["epoch"]
    assert interrupted_at < 5
    assert not (config.run_dir / "metrics.json").exists()

    resumed = fit(config, resume=True)
    assert resumed is not None
    assert resumed.metrics["epochs"] == straight.metrics["epochs"] == 6
    # the shuffling order and the dropout RNG are restored: the same weights as never stopping
    a = torch.load(straight.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    b = torch.load(resumed.last_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.metrics["test"] == straight.metrics["test"]
    assert (config.run_dir / "logs" / "resume-1" / "metrics.csv").is_file()


def test_resume_refuses_a_different_run(tmp_path: Path, cache_dir: Path, tiny_run: RunResult) -> None:
    with pytest.raises(ConfigError, match=r"nothing to resume"):
        fit(tiny_config(tmp_path, cache_dir, name="never-started"), resume=True)
    changed = tiny_config(tiny_run.run_dir.parent, cache_dir, name=tiny_run.run_dir.name, **{"model.hidden": [32, 32]})
    with pytest.raises(ConfigError, match=r"cannot resume: model.hidden differs"):
        fit(changed, resume=True)


def test_resume_allows_data_keys_that_do_not_change_the_data(tmp_path: Path, cache_dir: Path, tiny_run: RunResult) -> None:
    run_dir = tiny_run.run_dir

    def config(**changes: Any) -> RunConfig:
        return tiny_config(run_dir.parent, cache_dir, name=run_dir.name, **changes)

    # extraction processes, cache location and the unreadable-file policy: the same data
    check_resumable(config(**{"data.workers": 2, "data.on_error": "skip", "data.cache_dir": str(tmp_path)}), run_dir)
    # what the data are: refused, naming the key
    with pytest.raises(ConfigError, match=r"cannot resume: data\.split differs"):
        check_resumable(config(**{"data.split": [0.6, 0.2, 0.2]}), run_dir)
    with pytest.raises(ConfigError, match=r"cannot resume: data\.synthetic\.seed differs"):
        check_resumable(config(**{"data.synthetic.seed": 5}), run_dir)


def test_a_failed_laq_stage_keeps_the_scores(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import serlaq.laq.pipeline

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("search exploded")

    monkeypatch.setattr(serlaq.laq.pipeline, "compress_model", broken)
    config = tiny_config(tmp_path, cache_dir, name="laq-fails", **{"train.max_epochs": 2, "laq": {"mode": "paper"}})
    with pytest.raises(CompressionError) as info:
        fit(config)
    message = str(info.value)
    assert "laq: compression failed after training (RuntimeError: search exploded)" in message
    assert f"serlaq compress --checkpoint {config.run_dir / 'model.ckpt'}" in message
    assert isinstance(info.value.__cause__, RuntimeError)
    metrics = json.loads((config.run_dir / "metrics.json").read_text())
    assert metrics == info.value.result.metrics and metrics["epochs"] == 2
    assert (config.run_dir / "confusion_matrix.png").is_file() and not (config.run_dir / "model.laq").exists()


def test_an_import_error_in_the_laq_code_is_not_hidden(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from serlaq.training.run import laq_callback

    monkeypatch.setitem(sys.modules, "serlaq.laq.callback", None)  # a broken module: import raises ImportError
    with pytest.raises(ImportError, match=r"serlaq\.laq\.callback"):
        laq_callback(tiny_config(tmp_path, cache_dir, **{"laq": {}}))


def test_progress_outside_a_terminal_is_a_few_summary_lines(
    tmp_path: Path, cache_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tiny_config(
        tmp_path, cache_dir, name="log", **{"trainer.enable_progress_bar": True, "train.max_epochs": 20, "train.patience": 50}
    )
    capsys.readouterr()
    result = fit(config)
    assert result is not None and result.metrics["epochs"] == 20
    err = capsys.readouterr().err
    assert "Validation DataLoader" not in err and "Epoch 1:" not in err
    lines = [line for line in err.splitlines() if line.startswith("training: ")]
    # pytest's capture is not a terminal: a start line, epochs 1, 2, 4, ..., 20 (every 2nd), an end line
    assert lines[0].startswith("training: up to 20 epochs of ")
    assert [line.split()[2] for line in lines[1:-1]] == ["1/20", *(f"{e}/20" for e in range(2, 21, 2))]
    assert "val_acc" in lines[1] and "train_loss" in lines[-2]
    assert lines[-1] == "training: done after 20 epochs"


def test_fresh_run_replaces_previous_outputs(tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(tmp_path, cache_dir, name="again", **{"train.max_epochs": 2})
    fit(config)
    (config.run_dir / "notes.txt").write_text("mine")
    result = fit(config.model_copy(update={"seed": 3}))
    assert result is not None and result.metrics["seed"] == 3
    assert sorted(p.name for p in config.run_dir.glob("*.ckpt")) == ["best.ckpt", "last.ckpt", "model.ckpt"]
    assert (config.run_dir / "notes.txt").read_text() == "mine"  # only the run's own outputs are replaced


def test_trainer_settings_lightning_refuses_fail_before_the_previous_run_is_touched(
    tmp_path: Path, cache_dir: Path, tiny_run: RunResult
) -> None:
    """A GPU on a machine without one, or an unknown precision, was a Lightning traceback
    after feature extraction and after the run folder's previous outputs were cleared."""
    previous = tiny_run.run_dir / "metrics.json"
    before = previous.read_bytes()
    config = tiny_config(tiny_run.run_dir.parent, cache_dir, name=tiny_run.run_dir.name)
    for key, value, said in [
        ("trainer.precision", 7, "Precision 7 is invalid"),
        ("trainer.strategy", "bogus", "invalid strategy name"),
    ]:
        bad = config.model_copy(update={"trainer": config.trainer.model_copy(update={key.split(".")[1]: value})})
        with pytest.raises(ConfigError, match=rf"^trainer \(.*{key.split('.')[1]}: {value}.*\): Lightning refuses these settings: .*{said}"):
            fit(bad)
    assert previous.read_bytes() == before


def weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.parametrize("restore_best", [False, True])
def test_final_model_is_the_stopping_point_or_the_best_epoch(
    tmp_path: Path, cache_dir: Path, restore_best: bool
) -> None:
    config = tiny_config(
        tmp_path, cache_dir, **{"train.restore_best": restore_best, "train.monitor": "val_loss", "train.max_epochs": 8}
    )
    result = fit(config)
    assert result is not None
    model, chosen = weights(result.checkpoint), weights(result.best_checkpoint if restore_best else result.last_checkpoint)
    assert all(torch.equal(model[k], chosen[k]) for k in chosen)
    epoch = torch.load(result.best_checkpoint, map_location="cpu", weights_only=True)["epoch"]
    assert result.metrics["best_epoch"] == epoch
    assert result.metrics["model_epoch"] == (epoch if restore_best else result.metrics["epochs"] - 1)
    # model.ckpt holds weights and hparams only (no optimizer state), and loads on its own
    assert "optimizer_states" not in torch.load(result.checkpoint, map_location="cpu", weights_only=True)
    assert SERClassifier.load_from_checkpoint(result.checkpoint).hparams.run_config["train"]["restore_best"] is restore_best


def test_explicit_splits(tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(tmp_path, cache_dir, **{"train.max_epochs": 1})
    splits = {"train": list(range(0, 70, 2)), "val": list(range(1, 70, 4)), "test": list(range(3, 70, 4))}
    result = fit(config, datamodule=SERDataModule(config, splits=splits))
    assert result is not None and result.metrics["split_sizes"] == {"train": 35, "val": 18, "test": 17}
    with pytest.raises(Exception, match=r"splits.val: index 0"):
        SERDataModule(config, splits={**splits, "val": [0]}).setup()


def test_laq_section_compresses_the_final_model(tmp_path: Path, cache_dir: Path) -> None:
    from serlaq.training import format_summary

    result = fit(tiny_config(tmp_path, cache_dir, **{"laq": {}, "train.max_epochs": 3}))
    assert result is not None and result.laq is not None
    assert (result.run_dir / "model.laq").is_file()
    assert result.laq["accuracy"]["fp32_test"] == pytest.approx(result.test_accuracy)  # model.ckpt is what was compressed
    assert "compressed   model.laq" in format_summary(result)
