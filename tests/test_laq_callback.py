"""`serlaq fit` with a `laq:` section ends with a `.laq` file of the best checkpoint."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import fit_tiny, tiny_config

from serlaq.data.datamodule import SERDataModule
from serlaq.laq.callback import LAQCallback
from serlaq.laq.compress import compress
from serlaq.laq_config import LaqConfig
from serlaq.laq.fakequant import fake_quantize
from serlaq.laq.quantize import QuantScheme
from serlaq.model import SERClassifier
from serlaq.runtime import LaqModel
from serlaq.training import RunResult

TRAIN = {"train.max_epochs": 10, "train.patience": 2}


@pytest.fixture(scope="module")
def laq_run(tmp_path_factory: pytest.TempPathFactory) -> RunResult:
    return fit_tiny(tmp_path_factory.mktemp("laq-callback"), **TRAIN, laq={"mode": "paper"})


def test_fit_with_laq_section_writes_the_laq_file_and_summary(laq_run: RunResult) -> None:
    run_dir = laq_run.run_dir
    assert (run_dir / "model.laq").is_file() and (run_dir / "laq.json").is_file()
    summary = json.loads((run_dir / "laq.json").read_text())
    assert summary["laq_file"] == "model.laq"
    assert summary["settings"]["mode"] == "paper" and summary["settings"]["criterion"] == "accuracy"
    # the trace lists every tried bit-width, lowest first, ending at the chosen one
    for layer in summary["search"]["trace"]:
        tried = [t["bits"] for t in layer["trials"]]
        assert tried == list(range(1, len(tried) + 1))
        assert tried[-1] == layer["bits"] or (layer["bits"] == 8 and not any(t["accepted"] for t in layer["trials"]))
    assert summary["plan"] == {name: {t["name"]: t["bits"] for t in summary["search"]["trace"]}[name] for name in summary["plan"]}
    assert list(summary["plan"]) == ["net.0", "net.3", "net.6"]  # forward order
    laq = LaqModel.load(run_dir / "model.laq")
    assert laq.metadata["laq"]["plan"] == summary["plan"]
    assert laq.avg_bits == pytest.approx(summary["avg_bits"])


def test_the_file_compresses_the_model_fit_scored(laq_run: RunResult) -> None:
    run_dir = laq_run.run_dir
    best = SERClassifier.load_from_checkpoint(laq_run.checkpoint, map_location="cpu").eval()
    summary = json.loads((run_dir / "laq.json").read_text())
    assert summary["accuracy"]["fp32_test"] == pytest.approx(laq_run.metrics["test"]["accuracy"])
    dm = SERDataModule.from_model(best)
    x, _ = dm.split_tensors("test")
    fq = fake_quantize(best, summary["plan"], QuantScheme())
    np.testing.assert_array_equal(LaqModel.load(run_dir / "model.laq").logits(x.numpy()).argmax(1), fq(x).argmax(1).numpy())


def test_callback_and_compress_on_the_checkpoint_give_the_same_file(laq_run: RunResult, tmp_path: Path) -> None:
    out = tmp_path / "again.laq"
    outcome = compress(laq_run.checkpoint, out)  # the run's laq section: mode paper
    assert outcome.settings.mode == "paper"
    assert out.read_bytes() == (laq_run.run_dir / "model.laq").read_bytes()
    assert (tmp_path / "again.json").is_file()


def test_callback_on_a_plain_trainer_compresses_the_in_memory_weights(tmp_path: Path) -> None:
    import lightning as L

    cfg = tiny_config(tmp_path / "runs", tmp_path / "cache", **{"train.max_epochs": 2})
    dm = SERDataModule(cfg)
    dm.setup()
    model = SERClassifier(dm.feature_dim, len(dm.labels), hidden=[16], labels=dm.labels)
    model.set_normalization(dm.feature_mean, dm.feature_std)
    cb = LAQCallback(LaqConfig(mode="paper", margin=10.0), out_path=tmp_path / "x.laq")
    trainer = L.Trainer(max_epochs=2, callbacks=[cb], logger=False, enable_checkpointing=False, enable_progress_bar=False)
    trainer.fit(model, datamodule=dm)
    assert (tmp_path / "x.laq").is_file() and (tmp_path / "x.json").is_file()
    assert cb.outcome is not None
    x, _ = dm.split_tensors("val")
    torch.testing.assert_close(cb.outcome.model(x), model.eval()(x))  # the in-memory weights
    # a margin of 10 (1000 points) accepts any drop: every layer goes to 1 bit
    assert set(cb.outcome.plan.values()) == {1}


def test_fit_with_the_default_mode_fine_tunes_inside_the_run(tmp_path: Path) -> None:
    result = fit_tiny(tmp_path, "q", **TRAIN, laq={"qat": {"epochs": 2}})
    run_dir = result.run_dir
    summary = json.loads((run_dir / "laq.json").read_text())
    assert summary["settings"]["mode"] == "qat" and summary["qat"]["epochs"] == 2
    assert (run_dir / "qat" / "last.ckpt").is_file() and (run_dir / "qat" / "logs" / "metrics.csv").is_file()
    laq = LaqModel.load(run_dir / "model.laq")
    assert laq.avg_bits == pytest.approx(summary["avg_bits"]) and laq.avg_bits <= 1.1
    # the fp32 accuracy in laq.json is the model metrics.json scored (QAT starts from it)
    assert summary["accuracy"]["fp32_test"] == pytest.approx(result.metrics["test"]["accuracy"])
