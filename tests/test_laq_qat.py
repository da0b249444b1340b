"""Quantization-aware fine-tuning: STE forward/backward, the Lightning stage, and the config modes."""

from __future__ import annotations

import copy
import csv
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_config

from serlaq.data.datamodule import SERDataModule
from serlaq.errors import ConfigError
from serlaq.laq.config import DEFAULT_BUDGET_BITS, LaqConfig
from serlaq.laq.fakequant import fake_quantize, quantizable_layers
from serlaq.laq.qat import QATModule, finetune
from serlaq.laq.quantize import QuantScheme
from serlaq.model import SERClassifier

SETTINGS = {"enable_progress_bar": False, "deterministic": True}


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[SERClassifier, SERDataModule]:
    root = tmp_path_factory.mktemp("qat")
    cfg = tiny_config(root / "runs", root / "cache")
    dm = SERDataModule(cfg)
    dm.setup()
    torch.manual_seed(0)
    model = SERClassifier(dm.feature_dim, len(dm.labels), hidden=[32, 16], labels=dm.labels)
    model.set_normalization(dm.feature_mean, dm.feature_std)
    return model.eval(), dm


PLAN = {"net.0": 1, "net.3": 3, "net.6": 2}


@pytest.mark.parametrize("scheme", [QuantScheme(), QuantScheme(per_channel=True, range_search=True)])
def test_forward_is_the_fake_quantized_model(setup: tuple[SERClassifier, SERDataModule], scheme: QuantScheme) -> None:
    model, dm = setup
    x, _ = dm.split_tensors("val")
    module = QATModule(model, PLAN, scheme, lr=1e-3, epochs=1).eval()
    torch.testing.assert_close(module(x), fake_quantize(model, PLAN, scheme)(x), rtol=0, atol=0)


def test_straight_through_gradient(setup: tuple[SERClassifier, SERDataModule]) -> None:
    model, dm = setup
    x, y = dm.split_tensors("train")
    module = QATModule(model, PLAN, QuantScheme(), lr=1e-3, epochs=1).eval()
    module.zero_grad()
    F.cross_entropy(module(x), y).backward()
    # reference: the same loss with the quantized weights as leaves
    ref = fake_quantize(model, PLAN).eval()
    ref.zero_grad()
    F.cross_entropy(ref(x), y).backward()
    for (name, layer), (_, ref_layer) in zip(quantizable_layers(module.model), quantizable_layers(ref)):
        assert layer.weight.grad is not None
        torch.testing.assert_close(layer.weight.grad, ref_layer.weight.grad, msg=name)


def test_finetune_trains_a_copy_deterministically_and_logs(setup: tuple[SERClassifier, SERDataModule], tmp_path: Path) -> None:
    model, dm = setup
    before = {k: v.clone() for k, v in model.state_dict().items()}
    a = finetune(model, PLAN, QuantScheme(), dm, epochs=3, patience=None, trainer_settings=SETTINGS, folder=tmp_path, seed=1)
    b = finetune(model, PLAN, QuantScheme(), dm, epochs=3, patience=None, trainer_settings=SETTINGS, seed=1)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), f"the original model changed: {k}"
    assert a.epochs == 3 and not a.stopped_early
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert not torch.equal(a.model.state_dict()["net.0.weight"], before["net.0.weight"])
    assert (tmp_path / "qat" / "last.ckpt").is_file()
    with open(tmp_path / "qat" / "logs" / "metrics.csv") as fh:
        losses = [float(r["val_loss"]) for r in csv.DictReader(fh) if r.get("val_loss")]
    assert len(losses) == 3 and a.best_val_loss == pytest.approx(min(losses))


def test_restore_best_ends_on_the_lowest_validation_loss(setup: tuple[SERClassifier, SERDataModule]) -> None:
    model, dm = setup
    res = finetune(model, PLAN, QuantScheme(), dm, epochs=6, lr=0.05, patience=None, restore_best=True, trainer_settings=SETTINGS)
    x, y = dm.split_tensors("val")
    with torch.no_grad():
        loss = F.cross_entropy(QATModule(res.model, PLAN, QuantScheme(), 1e-3, 1).eval()(x), y)
    assert float(loss) == pytest.approx(res.best_val_loss, rel=1e-5)


def test_early_stopping_on_validation_loss(setup: tuple[SERClassifier, SERDataModule]) -> None:
    model, dm = setup
    # a huge constant learning rate makes val_loss stop improving quickly
    res = finetune(model, PLAN, QuantScheme(), dm, epochs=40, lr=5.0, schedule="constant", patience=1, trainer_settings=SETTINGS)
    assert res.stopped_early and res.epochs < 40


def test_finetune_trains_with_the_recipes_label_smoothing(setup: tuple[SERClassifier, SERDataModule]) -> None:
    """QAT's loss is the run's: a recipe with label smoothing ends less sure of itself than
    plain cross-entropy on the same model, plan and data."""
    model, dm = setup
    smooth = copy.deepcopy(model)
    smooth.hparams["run_config"] = {"train": {"label_smoothing": 0.5}}
    assert smooth.recipe()["label_smoothing"] == 0.5 and model.recipe()["label_smoothing"] == 0.0
    x, _ = dm.split_tensors("train")

    def confidence(m: SERClassifier) -> float:
        res = finetune(m, PLAN, QuantScheme(), dm, epochs=8, lr=0.01, trainer_settings=SETTINGS, seed=0)
        with torch.no_grad():
            p = QATModule(res.model, PLAN, QuantScheme(), 1e-3, 1).eval()(x).softmax(1)
        return float(p.max(1).values.mean())

    plain, smoothed = confidence(model), confidence(smooth)
    assert smoothed < plain - 0.05, (plain, smoothed)
    # `laq.qat.label_smoothing` overrides the recipe (0 = how files were compressed before)
    res = finetune(smooth, PLAN, QuantScheme(), dm, epochs=1, label_smoothing=0.0, trainer_settings=SETTINGS)
    assert res.label_smoothing == 0.0 and res.as_dict()["label_smoothing"] == 0.0
    assert LaqConfig.model_validate({"qat": {"label_smoothing": 0.0}}).resolved().qat_label_smoothing == 0.0
    assert LaqConfig().resolved().qat_label_smoothing is None


def test_fp32_control_trains_without_quantizing(setup: tuple[SERClassifier, SERDataModule]) -> None:
    model, dm = setup
    res = finetune(model, None, QuantScheme(), dm, epochs=2, trainer_settings=SETTINGS)
    w = res.model.net[0].weight.detach()
    assert torch.unique(w).numel() > 1000  # not binarized


# --- modes ---------------------------------------------------------------------------------


def test_paper_mode_is_the_papers_procedure() -> None:
    s = LaqConfig(mode="paper").resolved()
    assert (s.search, s.criterion, s.margin, s.per_channel, s.range_search, s.qat) == ("paper", "accuracy", 0.01, False, False, False)
    assert s.weights == (0.11, 0.01, 0.88) and s.reference_bits == 8


def test_default_mode_is_budget_search_with_qat() -> None:
    s = LaqConfig().resolved()
    assert s.mode == "qat" and s.search == "budget" and s.budget_bits == DEFAULT_BUDGET_BITS
    assert s.criterion == "agreement" and s.range_search and s.qat and not s.per_channel
    assert (s.qat_epochs, s.qat_schedule, s.qat_patience, s.qat_restore_best) == (30, "cosine", None, False)


def test_explicit_fields_override_the_mode() -> None:
    s = LaqConfig(mode="paper", per_channel=True, qat=True, budget_kb=30).resolved()
    assert s.per_channel and s.qat and s.search == "budget" and s.budget_kb == 30 and s.budget_bits is None
    assert LaqConfig(qat=False).resolved().qat is False
    assert LaqConfig(qat={"epochs": 4}).resolved().qat_epochs == 4


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"laq": {"mode": "fast"}}, "laq.mode"),
        ({"laq": {"qat": {"epochs": 0}}}, "laq.qat.epochs"),
        ({"laq": {"qat": {"label_smoothing": 1.5}}}, "laq.qat.label_smoothing"),
        ({"laq": {"qat": {"label_smoothing": -0.1}}}, "laq.qat.label_smoothing"),
        ({"laq": {"search": "paper", "budget_bits": 1.5}}, "laq"),
        ({"laq": {"out": "../x.laq"}}, "laq.out"),
        ({"laq": {"weights": [0.5, -1, 0]}}, "laq.weights"),
    ],
)
def test_bad_laq_config_names_the_key(raw: dict[str, Any], key: str) -> None:
    from serlaq.config import validate_config

    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        validate_config(raw, "run.yaml")
