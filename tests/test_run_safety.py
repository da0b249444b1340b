"""What `fit` refuses or keeps so that a run never destroys what it should not: the previous
run on bad data, a user's folder, the checkpoint under a custom `.laq` name; what a resumed
run may change; Ctrl-C during the compression; a diverged run; unwritable paths; duplicated
YAML keys; trainer settings that skip training or validation.

Every run is the tiny demo config for 1-2 epochs (seconds each)."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from conftest import DEMO_CONFIG, run_serlaq, tiny_set_args
from conftest import tiny_config as shared_tiny_config

from serlaq.config import RunConfig, load_config, save_config
from serlaq.errors import ConfigError, SerlaqError
from serlaq.laq_config import LaqConfig
from serlaq.training import CompressionError, RunResult, check_resumable, fit
from serlaq.training.callbacks import TrainingDiverged
from serlaq.training.run_folder import check_run_folder, resolve_paths, write_metrics

FAST = {"train.max_epochs": 2, "train.patience": 5, "laq": None}


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("safety-cache")


def tiny_config(out_dir: Path, cache_dir: Path, name: str = "tiny", **overrides: Any) -> RunConfig:
    return shared_tiny_config(out_dir, cache_dir, name, **{**FAST, **overrides})


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, cache_dir: Path) -> RunResult:
    result = fit(tiny_config(tmp_path_factory.mktemp("runs"), cache_dir, name="done"))
    assert result is not None
    return result


def outputs(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in run_dir.iterdir() if p.is_file()}


# 1. bad data fails before the previous run is cleared


def test_a_missing_corpus_leaves_the_previous_run_whole(finished_run: RunResult, cache_dir: Path) -> None:
    run_dir = finished_run.run_dir
    before = outputs(run_dir)
    assert {"model.ckpt", "metrics.json", "config.yaml", "last.ckpt"} <= set(before)
    bad = tiny_config(
        run_dir.parent, cache_dir, name=run_dir.name,
        **{"data.dataset": "folder", "data.data_dir": str(run_dir.parent / "no-such-corpus")},
    )  # fmt: skip
    with pytest.raises(SerlaqError, match="no-such-corpus"):
        fit(bad)
    assert outputs(run_dir) == before and (run_dir / "logs").is_dir()


# 2. a folder that is not a run folder is not cleared


def test_a_folder_that_is_not_a_run_folder_is_refused(tmp_path: Path, cache_dir: Path) -> None:
    mine = tmp_path / "mine"
    (mine / "logs").mkdir(parents=True)
    (mine / "logs" / "notes.txt").write_text("mine")
    (mine / "config.yaml").write_text("my: settings\n")
    with pytest.raises(ConfigError, match=rf"^{mine}: the folder exists and is not a serlaq run folder"):
        fit(tiny_config(tmp_path, cache_dir, name="mine"))
    assert (mine / "logs" / "notes.txt").read_text() == "mine"
    assert (mine / "config.yaml").read_text() == "my: settings\n"


def test_an_empty_folder_or_a_run_interrupted_before_its_first_epoch_is_a_run_folder(tmp_path: Path, cache_dir: Path) -> None:
    check_run_folder(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    check_run_folder(tmp_path / "empty")
    # what a run holds before its first epoch ends: its saved config.yaml and logs/
    config = resolve_paths(tiny_config(tmp_path, cache_dir, name="early"))
    config.run_dir.mkdir()
    save_config(config, config.run_dir / "config.yaml")
    (config.run_dir / "logs").mkdir()
    check_run_folder(config.run_dir)


def test_the_run_folders_own_config_as_config_is_refused(
    finished_run: RunResult, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = finished_run.run_dir / "config.yaml"
    before = saved.read_bytes()
    code, _, err = run_serlaq(["fit", "--config", str(saved), "--out", str(finished_run.run_dir)], capsys)
    assert code == 1 and len(err.strip().splitlines()) == 1, err
    assert f"--config {saved}: is the run folder's own config.yaml" in err
    assert saved.read_bytes() == before


# 3. laq.out names


@pytest.mark.parametrize("name", ["model.ckpt", "laq.json", "config.yaml", "small", ".laq", "metrics.laq", "laq.laq"])
def test_laq_out_must_be_a_laq_name_that_writes_over_no_run_file(name: str) -> None:
    with pytest.raises(ValueError, match="out"):
        LaqConfig(out=name)
    assert LaqConfig(out="small.laq").resolved().out == "small.laq"


def test_a_custom_laq_name_is_reported_and_a_stale_one_removed(tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(tmp_path, cache_dir, name="custom", **{"train.max_epochs": 1, "laq": {"mode": "paper", "out": "small.laq"}})
    result = fit(config)
    assert result is not None and result.laq is not None
    assert result.laq["laq_file"] == "small.laq"
    assert json.loads((config.run_dir / "small.json").read_text()) == result.laq
    from serlaq.training.summary import _laq_line

    assert _laq_line(result.laq).endswith("details in small.json")  # the report it wrote
    assert not (config.run_dir / "laq.json").exists() and not (config.run_dir / "model.laq").exists()
    # a resumed run replaces the model: if its compression fails, the old small.laq is gone
    import serlaq.laq.pipeline

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("search exploded")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(serlaq.laq.pipeline, "compress_model", broken)
        with pytest.raises(CompressionError):
            fit(config, resume=True)
    assert not (config.run_dir / "small.laq").exists() and not (config.run_dir / "small.json").exists()
    assert fit(config, resume=True) is not None and (config.run_dir / "small.laq").is_file()
    # a later run in the same folder that compresses nothing leaves no stale small.laq behind
    again = fit(tiny_config(tmp_path, cache_dir, name="custom", **{"train.max_epochs": 1}))
    assert again is not None and again.laq is None
    assert not (config.run_dir / "small.laq").exists() and not (config.run_dir / "small.json").exists()


# 4. resume keeps the run's own train section


def test_resume_refuses_changed_train_settings(finished_run: RunResult, cache_dir: Path, tmp_path: Path) -> None:
    run_dir = finished_run.run_dir

    def config(**changes: Any) -> RunConfig:
        return resolve_paths(tiny_config(run_dir.parent, cache_dir, name=run_dir.name, **changes))

    with pytest.raises(ConfigError, match=r"cannot resume: train\.lr, train\.max_epochs differ .*start a fresh run"):
        check_resumable(config(**{"train.lr": 0.5, "train.max_epochs": 9}), run_dir)
    with pytest.raises(ConfigError, match=r"cannot resume: train\.patience differs"):
        check_resumable(config(**{"train.patience": 9}), run_dir)
    check_resumable(config(**{"train.threads": 2}), run_dir)  # the speed, not the training


# 5. Ctrl-C during the compression


def test_ctrl_c_during_qat_keeps_the_trained_run_and_says_how_to_compress(
    tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serlaq.laq.qat import QATModule

    def ctrl_c(*args: Any, **kwargs: Any) -> Any:
        raise KeyboardInterrupt

    run_dir = tmp_path / "qat-cut"
    settings = tiny_set_args(**{"train.max_epochs": 2, "data.cache_dir": str(cache_dir), "laq.qat.epochs": 1})
    monkeypatch.setattr(QATModule, "training_step", ctrl_c)
    try:
        code, out, err = run_serlaq(["fit", "--config", str(DEMO_CONFIG), "--out", str(run_dir), *settings], capsys)
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works again
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    assert code == 130, err
    assert "Traceback" not in err
    expected = f"redo the compression with serlaq compress --checkpoint {run_dir / 'model.ckpt'}"
    assert err.strip().splitlines()[-1].startswith("serlaq: interrupted during the compression") and expected in err
    assert "run folder" in out  # the training's summary
    assert (run_dir / "metrics.json").is_file() and (run_dir / "model.ckpt").is_file()
    assert not (run_dir / "model.laq").exists()

    monkeypatch.undo()
    code, _, err = run_serlaq(["compress", "--checkpoint", str(run_dir / "model.ckpt")], capsys)
    assert code == 0, err
    assert (run_dir / "model.laq").is_file() and (run_dir / "laq.json").is_file()


# 6. divergence


def test_a_diverged_run_stops_at_the_first_nan_loss_and_keeps_nothing(tmp_path: Path, cache_dir: Path) -> None:
    config = tiny_config(tmp_path, cache_dir, name="diverged", **{"train.lr": 1e30, "train.max_epochs": 3})
    with pytest.raises(TrainingDiverged, match=r"training loss is nan in epoch 1; nothing was kept .*lower train\.lr"):
        fit(config)
    assert not config.run_dir.exists() or not any(config.run_dir.iterdir())


def test_metrics_json_is_written_with_nan_as_null(tmp_path: Path) -> None:
    write_metrics({"val": {"loss": float("nan"), "scores": [1.0, float("inf")]}}, tmp_path / "metrics.json")
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"val": {"loss": None, "scores": [1.0, None]}}


# 7. unwritable output and cache paths


def test_a_run_folder_or_cache_that_cannot_be_made_is_one_line(tmp_path: Path, cache_dir: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("")
    with pytest.raises(ConfigError, match=rf"^run folder .*{afile / 'x'}: cannot make the folder \(a file is on the way\)$"):
        fit(tiny_config(afile, cache_dir, name="x"))
    with pytest.raises(ConfigError, match=rf"^run folder .*{afile}: is a file, not a folder$"):
        fit(tiny_config(tmp_path, cache_dir, name="afile"))
    with pytest.raises(ConfigError, match=rf"^feature cache .*{afile / 'cache'}: cannot make the folder"):
        fit(tiny_config(tmp_path, afile / "cache", name="nocache"))
    assert not (tmp_path / "nocache").exists()  # no empty run folder left behind


# 8. duplicated YAML keys


def test_a_duplicated_yaml_key_is_refused_with_its_line(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text("seed: 1\ntrain:\n  lr: 0.1\n  max_epochs: 3\n  lr: 0.2\n")
    with pytest.raises(ConfigError, match=rf"^{path}: line 5: duplicate key 'lr' \(first given on line 3\)$"):
        load_config(path)
    path.write_text("seed: 1\nseed: 2\n")
    with pytest.raises(ConfigError, match=r"line 2: duplicate key 'seed'"):
        load_config(path)
    # a merge key (<<) is not a duplicate: its keys may be overridden
    path.write_text("train:\n  <<: {lr: 0.1, max_epochs: 3}\n  lr: 0.2\n")
    assert load_config(path).train.lr == 0.2


# 9. trainer settings that skip training or validation


@pytest.mark.parametrize(
    "key, value",
    [("trainer.limit_train_batches", 0), ("trainer.limit_val_batches", 0), ("trainer.limit_val_batches", 0.0),
     ("trainer.check_val_every_n_epoch", 3)],
)  # fmt: skip
def test_trainer_settings_that_skip_training_or_validation_are_refused_early(
    finished_run: RunResult, cache_dir: Path, key: str, value: Any
) -> None:
    before = outputs(finished_run.run_dir)
    config = tiny_config(finished_run.run_dir.parent, cache_dir, name=finished_run.run_dir.name, **{key: value})
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        fit(config)
    assert outputs(finished_run.run_dir) == before
