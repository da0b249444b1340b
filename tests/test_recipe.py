"""Training-recipe options (train.recipe, label smoothing, weight decay, cosine schedule, feature noise)."""

from __future__ import annotations

import pydantic
import pytest
import torch
import torch.nn.functional as F

from serlaq.config import RECIPES, TrainConfig, load_config
from serlaq.errors import ConfigError
from serlaq.model import SERClassifier


def test_recipe_fills_unset_keys_and_explicit_keys_win() -> None:
    assert TrainConfig().recipe == "tuned"  # the default, chosen on inner holdouts
    paper = TrainConfig(recipe="paper")
    assert (paper.recipe, paper.max_epochs, paper.patience, paper.scheduler, paper.label_smoothing) == ("paper", 200, 5, "none", 0.0)
    tuned = TrainConfig(recipe="tuned")
    for key, value in RECIPES["tuned"].items():
        assert getattr(tuned, key) == value
    assert TrainConfig(recipe="tuned", max_epochs=100, label_smoothing=0.0).model_dump() == {
        **tuned.model_dump(), "max_epochs": 100, "label_smoothing": 0.0
    }  # fmt: skip
    assert TrainConfig.model_validate(tuned.model_dump()) == tuned
    with pytest.raises(pydantic.ValidationError, match="recipe"):
        TrainConfig(recipe="fast")
    with pytest.raises(ConfigError, match="label_smoothing"):
        load_config(None, ["train.label_smoothing=1.0"])


def _model(**train: object) -> SERClassifier:
    torch.manual_seed(0)
    run = {"train": TrainConfig(**{"recipe": "paper", **train}).model_dump()}
    return SERClassifier(input_dim=6, num_classes=3, hidden=[8], dropout=0.0, run_config=run)


def test_loss_uses_label_smoothing_and_noise_only_when_asked() -> None:
    x, y = torch.randn(10, 6), torch.arange(10) % 3
    plain = _model()
    assert torch.equal(plain.training_step((x, y), 0), F.cross_entropy(plain(x), y))
    smooth = _model(label_smoothing=0.2)
    assert torch.allclose(smooth.training_step((x, y), 0), F.cross_entropy(smooth(x), y, label_smoothing=0.2))
    assert not torch.allclose(smooth.training_step((x, y), 0), F.cross_entropy(smooth(x), y))
    noisy = _model(feature_noise=0.5)
    torch.manual_seed(1)
    a = noisy.training_step((x, y), 0)
    torch.manual_seed(1)
    z = noisy.standardize(x) + 0.5 * torch.randn_like(x)
    assert torch.allclose(a, F.cross_entropy(noisy.net(z), y))
    assert not torch.allclose(a, F.cross_entropy(noisy(x), y))


def test_optimizer_and_schedule() -> None:
    assert type(_model().configure_optimizers()) is torch.optim.Adam
    opt = _model(weight_decay=0.01).configure_optimizers()
    assert type(opt) is torch.optim.AdamW and opt.param_groups[0]["weight_decay"] == 0.01
    cfg = _model(recipe="tuned").configure_optimizers()
    sched = cfg["lr_scheduler"]["scheduler"]
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingLR) and sched.T_max == 60
    # A checkpoint from before the recipe options (no such keys) trains as before.
    old = SERClassifier(input_dim=6, num_classes=3, hidden=[8], run_config={"train": {"lr": 1e-3}})
    assert old.recipe() == {"label_smoothing": 0.0, "weight_decay": 0.0, "scheduler": "none", "feature_noise": 0.0, "max_epochs": 200}
