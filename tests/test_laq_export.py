"""`.laq` export: the packed file (Rust GEMV) and the fake-quantized torch model predict identically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import fit_tiny

from serlaq import _native
from serlaq.data.datamodule import SERDataModule
from serlaq.laq_config import LaqConfig
from serlaq.laq.export import size_report, write_laq_file
from serlaq.laq.fakequant import PlanQuantizer, fake_quantize, quantizable_layers
from serlaq.laq.pipeline import compress_model, splits_of
from serlaq.laq.quantize import QuantScheme
from serlaq.model import SERClassifier
from serlaq.runtime import LaqModel


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[SERClassifier, SERDataModule]:
    result = fit_tiny(tmp_path_factory.mktemp("laq-export"), **{"train.max_epochs": 8})
    model = SERClassifier.load_from_checkpoint(result.best_checkpoint, map_location="cpu").eval()
    return model, SERDataModule.from_model(model)


PLANS = [
    ({"net.0": 8, "net.3": 8, "net.6": 8}, QuantScheme()),
    ({"net.0": 1, "net.3": 1, "net.6": 1}, QuantScheme()),
    ({"net.0": 3, "net.3": 1, "net.6": 5}, QuantScheme()),
    ({"net.0": 2, "net.3": 7, "net.6": 1}, QuantScheme(per_channel=True)),
    ({"net.0": 2, "net.3": 3, "net.6": 4}, QuantScheme(range_search=True)),
    ({"net.0": 1, "net.3": 6, "net.6": 2}, QuantScheme(per_channel=True, range_search=True)),
]


@pytest.mark.parametrize(("plan", "scheme"), PLANS)
def test_packed_file_and_fake_quantized_model_predict_identically(
    trained: tuple[SERClassifier, SERDataModule], plan: dict[str, int], scheme: QuantScheme, tmp_path: Path
) -> None:
    model, dm = trained
    pq = PlanQuantizer(quantizable_layers(model), scheme)
    quantized = {n: pq.get(n, plan[n]) for n in pq.names}
    path = tmp_path / "m.laq"
    size = write_laq_file(path, model, quantized, {"mode": "test", "plan": plan})
    laq = LaqModel.load(path)
    fq = fake_quantize(model, plan, scheme)
    for split in ("test", "val", "train"):
        x, _ = dm.split_tensors(split)
        torch_logits = fq(x).detach().numpy()
        laq_logits = laq.logits(x.numpy())
        np.testing.assert_array_equal(laq_logits.argmax(1), torch_logits.argmax(1))
        np.testing.assert_allclose(laq_logits, torch_logits, rtol=1e-4, atol=1e-4)
    # what the file stores is exactly what was quantized
    f = _native.LaqFile(str(path))
    assert f.file_size == size == path.stat().st_size
    for i, name in enumerate(pq.names):
        np.testing.assert_array_equal(f.codes(i), quantized[name].codes)
        np.testing.assert_array_equal(f.scale(i), quantized[name].scale)
        np.testing.assert_array_equal(f.zero(i), quantized[name].zero)
        assert f.layers()[i]["bits"] == plan[name]
        assert f.layers()[i]["granularity"] == ("channel" if scheme.per_channel else "tensor")
    sizes = size_report(quantized, {n: m.bias for n, m in quantizable_layers(model)}, size)
    assert laq.payload_bytes == sizes.payload_bytes
    assert laq.avg_bits == pytest.approx(sum(q.codes.size * q.bits for q in quantized.values()) / sum(q.codes.size for q in quantized.values()))
    assert sizes.information_bound_bytes <= sizes.payload_bytes < size


def test_metadata_carries_labels_features_architecture_normalization_and_laq(
    trained: tuple[SERClassifier, SERDataModule], tmp_path: Path
) -> None:
    model, _ = trained
    pq = PlanQuantizer(quantizable_layers(model))
    path = tmp_path / "m.laq"
    write_laq_file(path, model, {n: pq.get(n, 4) for n in pq.names}, {"mode": "paper", "avg_bits": 4.0})
    f = _native.LaqFile(str(path))
    meta = json.loads(f.metadata_json)
    assert meta["labels"] == list(model.labels)
    assert meta["features"] == model.hparams.feature_config
    assert meta["architecture"] == {"type": "mlp", "input_dim": model.feature_mean.numel(), "hidden": [64, 32], "activation": "relu", "num_classes": 7}
    assert meta["normalization"] == {"mean": "norm.mean", "std": "norm.std"}
    assert meta["laq"] == {"mode": "paper", "avg_bits": 4.0}
    np.testing.assert_array_equal(f.tensor("norm.mean"), model.feature_mean.numpy())
    np.testing.assert_array_equal(f.tensor("norm.std"), model.feature_std.numpy())


def test_same_model_and_plan_give_a_byte_identical_file(trained: tuple[SERClassifier, SERDataModule], tmp_path: Path) -> None:
    model, _ = trained
    for name in ("a.laq", "b.laq"):
        pq = PlanQuantizer(quantizable_layers(model), QuantScheme(range_search=True))
        write_laq_file(tmp_path / name, model, {n: pq.get(n, 3) for n in pq.names}, {"mode": "x"})
    assert (tmp_path / "a.laq").read_bytes() == (tmp_path / "b.laq").read_bytes()


def test_a_missing_layer_is_refused(trained: tuple[SERClassifier, SERDataModule], tmp_path: Path) -> None:
    model, _ = trained
    pq = PlanQuantizer(quantizable_layers(model))
    with pytest.raises(ValueError, match="net.6"):
        write_laq_file(tmp_path / "m.laq", model, {n: pq.get(n, 2) for n in pq.names[:-1]}, {})
    assert not (tmp_path / "m.laq").exists()


def test_constant_and_zero_layers_export_exactly(trained: tuple[SERClassifier, SERDataModule], tmp_path: Path) -> None:
    import copy

    model, dm = trained
    odd = copy.deepcopy(model)
    with torch.no_grad():
        odd.net[3].weight.fill_(0.02)
        odd.net[6].weight.zero_()
    plan = {"net.0": 4, "net.3": 3, "net.6": 2}
    pq = PlanQuantizer(quantizable_layers(odd))
    write_laq_file(tmp_path / "m.laq", odd, {n: pq.get(n, plan[n]) for n in pq.names}, {})
    f = _native.LaqFile(str(tmp_path / "m.laq"))
    w1 = f.scale(1)[0] * (f.codes(1).astype(np.float32) - f.zero(1)[0])
    np.testing.assert_array_equal(w1, np.full((32, 64), np.float32(0.02)))
    assert f.scale(2)[0] == 0.0
    x, _ = dm.split_tensors("test")
    np.testing.assert_array_equal(
        LaqModel.load(tmp_path / "m.laq").logits(x.numpy()).argmax(1), fake_quantize(odd, plan)(x).argmax(1).numpy()
    )


@pytest.mark.parametrize("mode", ["paper", "qat"])
def test_compress_model_outcome_writes_the_model_it_scores(
    trained: tuple[SERClassifier, SERDataModule], mode: str, tmp_path: Path
) -> None:
    model, dm = trained
    settings = LaqConfig(mode=mode, qat={"epochs": 3}).resolved()
    outcome = compress_model(
        model, splits_of(dm), settings, datamodule=dm, trainer_settings={"enable_progress_bar": False}, folder=tmp_path
    )
    n = outcome.write(tmp_path / "m.laq")
    assert outcome.sizes.file_bytes == n
    laq = LaqModel.load(tmp_path / "m.laq")
    x, y = dm.split_tensors("test")
    preds = laq.logits(x.numpy()).argmax(1)
    np.testing.assert_array_equal(preds, outcome.fake_quantized()(x).argmax(1).numpy())
    assert outcome.accuracy["laq_test"] == pytest.approx(float((torch.from_numpy(preds) == y).float().mean()))
    assert json.loads(_native.LaqFile(str(tmp_path / "m.laq")).metadata_json)["laq"]["plan"] == outcome.plan
    assert laq.avg_bits == pytest.approx(outcome.avg_bits)


def test_budget_in_kb_is_met_by_the_real_file(trained: tuple[SERClassifier, SERDataModule], tmp_path: Path) -> None:
    model, dm = trained
    one_bit = compress_model(model, splits_of(dm), LaqConfig(budget_bits=1.0, qat=False).resolved())
    floor = one_bit.write(tmp_path / "one.laq")
    budget_kb = (floor + 900) / 1000  # room for some layers to get more bits, not all
    outcome = compress_model(model, splits_of(dm), LaqConfig(budget_kb=budget_kb, qat=False).resolved())
    size = outcome.write(tmp_path / "budget.laq")
    assert size <= budget_kb * 1000
    assert outcome.avg_bits > 1.0  # the spare bytes were spent
    with pytest.raises(ValueError, match="budget"):
        compress_model(model, splits_of(dm), LaqConfig(budget_kb=floor / 2000, qat=False).resolved())


@pytest.mark.parametrize("per_channel", [False, True])
def test_file_size_estimate_is_a_tight_upper_bound(
    trained: tuple[SERClassifier, SERDataModule], per_channel: bool, tmp_path: Path
) -> None:
    from serlaq.laq.pipeline import file_size_function

    model, dm = trained
    settings = LaqConfig(budget_kb=100, qat=False, per_channel=per_channel).resolved()
    outcome = compress_model(model, splits_of(dm), settings)
    estimate = file_size_function(model, settings, outcome.importance)
    for plan in ({"net.0": 1, "net.3": 1, "net.6": 1}, {"net.0": 3, "net.3": 7, "net.6": 5}, outcome.plan):
        outcome.plan = dict(plan)
        pq = PlanQuantizer(quantizable_layers(model), QuantScheme(per_channel=per_channel, range_search=True))
        outcome.quantized = {n: pq.get(n, plan[n]) for n in pq.names}
        real = outcome.write(tmp_path / "m.laq")
        assert real <= estimate(plan) <= real + 256
