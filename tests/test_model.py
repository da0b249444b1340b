"""The paper's MLP: Table-2 presets, parameter count, standardization inside forward, metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score
from torch import nn

from serlaq.errors import ConfigError
from serlaq.model import MLP, PRESETS, SERClassifier, classification_metrics, count_parameters, resolve_hidden


def test_presets_are_table_2() -> None:
    assert PRESETS == {
        "2HL": [256, 64],
        "3HL": [256, 512, 64],
        "5HL": [256, 512, 256, 128, 64],
        "7HL": [256, 512, 384, 256, 128, 96, 64],
        "9HL": [256, 512, 384, 256, 192, 128, 96, 72, 64],
    }
    for name, widths in PRESETS.items():
        assert len(widths) == int(name[0])
    assert resolve_hidden("3hl") == [256, 512, 64]
    assert resolve_hidden([32, 16]) == [32, 16]
    with pytest.raises(ConfigError, match="model.hidden"):
        resolve_hidden("4HL")
    with pytest.raises(ConfigError, match="model.hidden"):
        resolve_hidden([32, 0])


def test_default_model_has_211207_parameters() -> None:
    # method notes: [256, 512, 64] with 180 inputs and 7 classes, not the paper's "about 169K"
    model = SERClassifier(input_dim=180, num_classes=7)
    assert model.hparams.hidden == [256, 512, 64]
    assert count_parameters(model.net) == 211_207
    assert count_parameters(model) == 211_207  # the standardization stats are buffers, not parameters


@pytest.mark.parametrize("preset", list(PRESETS))
def test_parameter_count_of_every_preset(preset: str) -> None:
    widths = [180, *PRESETS[preset], 7]
    expected = sum(a * b + b for a, b in zip(widths, widths[1:]))
    assert count_parameters(SERClassifier(180, 7, hidden=preset).net) == expected


def test_mlp_layout_and_quantizable_layers_in_forward_order() -> None:
    model = SERClassifier(input_dim=20, num_classes=4, hidden=[16, 8], dropout=0.25)
    kinds = [type(layer) for layer in model.net]
    assert kinds == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert model.net[2].p == 0.25
    layers = model.quantizable_layers()
    assert [name for name, _ in layers] == ["net.0", "net.3", "net.6"]
    assert [(layer.in_features, layer.out_features) for _, layer in layers] == [(20, 16), (16, 8), (8, 4)]
    for name, layer in layers:  # names address the same modules (and state_dict keys)
        assert model.get_submodule(name) is layer
        assert f"{name}.weight" in model.state_dict()


def test_forward_standardizes_raw_features() -> None:
    torch.manual_seed(0)
    model = SERClassifier(input_dim=6, num_classes=3, hidden=[5]).eval()
    mean, std = torch.randn(6), torch.rand(6) + 0.5
    model.set_normalization(mean, std)
    x = torch.randn(4, 6) * 3 + 1
    assert torch.allclose(model(x), model.net((x - mean) / std))
    state = model.state_dict()
    assert torch.equal(state["feature_mean"], mean) and torch.equal(state["feature_std"], std)


def test_hparams_carry_what_a_checkpoint_needs() -> None:
    model = SERClassifier(
        input_dim=180,
        num_classes=3,
        hidden="2HL",
        labels=["angry", "happy", "sad"],
        feature_config={"sample_rate": 16000},
        run_config={"seed": 1},
    )
    assert model.hparams.labels == ["angry", "happy", "sad"]
    assert model.hparams.hidden == [256, 64]
    assert model.hparams.feature_config == {"sample_rate": 16000}
    assert model.hparams.run_config == {"seed": 1}
    assert model.hparams.lr == 1e-3 and model.hparams.dropout == 0.1
    with pytest.raises(ConfigError, match="labels"):
        SERClassifier(input_dim=4, num_classes=3, labels=["a", "b"])


def test_adam_at_the_configured_learning_rate() -> None:
    optimizer = SERClassifier(input_dim=4, num_classes=2, hidden=[3], lr=5e-4).configure_optimizers()
    assert isinstance(optimizer, torch.optim.Adam)
    assert optimizer.param_groups[0]["lr"] == 5e-4


def test_classification_metrics_match_sklearn() -> None:
    generator = torch.Generator().manual_seed(3)
    target = torch.randint(0, 4, (60,), generator=generator)
    logits = torch.randn(60, 5, generator=generator)  # class 4 never occurs in the targets
    logits[:30, :4] += 3 * torch.nn.functional.one_hot(target[:30], 4)
    labels = ["a", "b", "c", "d", "e"]
    metrics = classification_metrics(logits, target, labels)
    preds = logits.argmax(1).numpy()
    present = sorted(set(target.tolist()) | set(preds.tolist()))
    assert metrics["accuracy"] == pytest.approx(accuracy_score(target.numpy(), preds))
    assert metrics["macro_f1"] == pytest.approx(f1_score(target.numpy(), preds, labels=present, average="macro"))
    confusion = torch.tensor(metrics["confusion_matrix"])
    assert confusion.shape == (5, 5) and int(confusion.sum()) == 60
    assert confusion.sum(1).tolist() == [metrics["support"][label] for label in labels]
    for i, label in enumerate(labels[:4]):
        mask = target == i
        assert metrics["per_class_accuracy"][label] == pytest.approx(float((logits.argmax(1)[mask] == i).float().mean()))
    assert metrics["per_class_accuracy"]["e"] is None  # no test clip of that class
    # UAR: the mean recall over the classes that occur (sklearn's balanced accuracy)
    assert metrics["uar"] == pytest.approx(balanced_accuracy_score(target.numpy(), preds))
    assert metrics["uar"] == pytest.approx(float(np.mean([metrics["per_class_accuracy"][label] for label in labels[:4]])))


def test_mlp_is_a_plain_sequential() -> None:
    mlp = MLP(10, [4], 2, dropout=0.0)
    assert isinstance(mlp, nn.Sequential)
    assert mlp(torch.zeros(3, 10)).shape == (3, 2)
