"""Calibration in the LAQ stage: the temperature fitted on the compressed model's
validation logits, stored in the `.laq` and applied by the runtime; ECE in metrics.json
and laq.json; the out-of-domain threshold from the training split."""

from __future__ import annotations

import json

import numpy as np
import torch
import pytest

from conftest import fit_tiny
from serlaq.data.datamodule import SERDataModule
from serlaq.laq.calibration import FIT_RANGE, TEMPERATURE_RANGE, fit_temperature, nll, ood_threshold
from serlaq.laq_config import DEFAULT_OOD_FLOOR, DEFAULT_OOD_TEMPER
from serlaq.model import SERClassifier
from serlaq.runtime import LaqModel


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, (4000, 5))
    for t0 in (1.0, 1.7, 3.0):
        p = np.exp(z / t0 - (z / t0).max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = np.array([rng.choice(5, p=row) for row in p])
        t = fit_temperature(z, y)
        assert t == pytest.approx(t0, rel=0.1)
        assert nll(z, y, t) <= min(nll(z, y, t * 1.05), nll(z, y, t / 1.05))
    # an overconfident model is cooled, within bounds; a perfect one is never sharpened
    y = rng.integers(0, 5, 500)
    assert fit_temperature(z[:500] * 50, y) == pytest.approx(FIT_RANGE[1])
    assert fit_temperature(z[:500], z[:500].argmax(1)) == pytest.approx(1.0)
    assert fit_temperature(np.zeros((0, 5)), []) == 1.0


def test_ood_threshold_is_the_99th_percentile_of_the_training_clips():
    x = np.random.default_rng(1).normal(0, 1, (1000, 50))
    t = ood_threshold(x, x.mean(0), x.std(0))
    rms = np.sqrt((((x - x.mean(0)) / x.std(0)) ** 2).mean(1))
    assert (rms > t).mean() == pytest.approx(0.01, abs=0.002)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory):
    return fit_tiny(tmp_path_factory.mktemp("calibration"), **{"train.max_epochs": 10}, laq={"mode": "paper"})


def test_the_laq_file_carries_the_fitted_temperature_and_the_runtime_applies_it(run):
    summary = json.loads((run.run_dir / "laq.json").read_text())
    cal = summary["calibration"]
    laq = LaqModel.load(run.run_dir / "model.laq")
    assert laq.metadata["calibration"] == {"temperature": round(cal["temperature"], 6), "fitted_on": "val"}
    assert laq.temperature == pytest.approx(cal["temperature"], abs=1e-6)
    assert FIT_RANGE[0] <= laq.temperature <= FIT_RANGE[1] <= TEMPERATURE_RANGE[1]
    for split in ("val", "test"):
        assert 0.0 <= cal[split]["ece"] <= 1.0
    assert cal["val"]["nll"] <= cal["val"]["nll_before"] + 1e-9  # the fit never makes val worse
    # the runtime's probabilities are softmax(logits / T) of the compressed model
    model = SERClassifier.load_from_checkpoint(run.checkpoint, map_location="cpu").eval()
    x, _ = SERDataModule.from_model(model).split_tensors("val")
    z = np.asarray(laq.logits(x.numpy()), dtype=np.float64) / laq.temperature
    want = np.exp(z - z.max(1, keepdims=True))
    want /= want.sum(1, keepdims=True)
    assert np.allclose(laq.predict_proba(x.numpy()), want, atol=1e-9)
    # out-of-domain threshold from the training split
    assert laq.metadata["ood"]["fitted_on"] == "train" and laq.ood_threshold == summary["ood_threshold"] > 0


def test_metrics_json_has_ece_and_mean_confidence(run):
    metrics = json.loads((run.run_dir / "metrics.json").read_text())
    for split in ("val", "test"):
        assert 0.0 <= metrics[split]["ece"] <= 1.0
        assert 0.0 < metrics[split]["mean_confidence"] <= 1.0


@pytest.fixture(scope="module")
def tempered(tmp_path_factory: pytest.TempPathFactory):
    """A default-mode run (`laq.ood_temper` 12, `laq.ood_floor` 2): the `.laq` stores the hidden reference."""
    return fit_tiny(tmp_path_factory.mktemp("tempered"), **{"train.max_epochs": 10}, laq={"qat": False})


def packed_hidden(laq: LaqModel, x: np.ndarray) -> np.ndarray:
    """The last hidden layer of the packed file, layer by layer (`LaqFile.forward`), float64."""
    from serlaq import _native

    f = _native.LaqFile(str(laq.path))
    h = (x.astype(np.float32) - f.tensor("norm.mean")) / f.tensor("norm.std")
    for i in range(len(f.layers()) - 1):
        h = np.maximum(np.asarray(f.forward(i, h)), 0.0)
    return h.astype(np.float64)


def test_paper_mode_stores_no_hidden_reference(run):
    laq = LaqModel.load(run.run_dir / "model.laq")
    assert "reference" not in laq.metadata["ood"]


def test_the_hidden_reference_is_the_training_split_and_the_runtime_measures_it(tempered):
    """The stored reference is the compressed model's last hidden layer over the training
    split; the runtime's score is its distance (the Python definition, computed from the
    packed layers), about 1 there, and the threshold its 99th percentile."""
    from serlaq.laq.calibration import feature_rms, hidden_distance, hidden_reference, ood_scores

    laq = LaqModel.load(tempered.run_dir / "model.laq")
    ref_meta = laq.metadata["ood"]["reference"]
    feature_threshold = ref_meta.pop("feature_threshold")
    assert ref_meta == {"space": "hidden", "mean": "ood.mean", "basis": "ood.basis", "scale": "ood.scale", "temper": DEFAULT_OOD_TEMPER,
                        "floor": DEFAULT_OOD_FLOOR}
    model = SERClassifier.load_from_checkpoint(tempered.checkpoint, map_location="cpu").eval()
    x, _ = SERDataModule.from_model(model).split_tensors("train")
    x = x.numpy()
    hidden = packed_hidden(laq, x)
    from serlaq import _native

    f = _native.LaqFile(str(laq.path))
    stored = {k: f.tensor(f"ood.{k}") for k in ("mean", "basis", "scale")}
    refit = hidden_reference(hidden)
    assert np.allclose(stored["mean"], refit["mean"], atol=1e-4)
    assert np.allclose(stored["scale"], refit["scale"], rtol=1e-3)
    d = hidden_distance(hidden, stored)
    assert np.sqrt(np.mean(d**2)) == pytest.approx(1.0, abs=0.05)
    assert laq.ood_threshold == pytest.approx(np.percentile(d, 99), rel=1e-3)
    # the features' own threshold: the 99th percentile of their RMS z-score on the same split;
    # the score is the larger of the two distances, each in the hidden threshold's units
    rms = feature_rms(x, f.tensor("norm.mean"), f.tensor("norm.std"))
    assert feature_threshold == pytest.approx(np.percentile(rms, 99), rel=1e-3)
    want = ood_scores(d, rms, laq.ood_threshold, feature_threshold)
    assert np.allclose(laq.ood_scores(x), want, rtol=1e-4, atol=1e-5)
    # on the training split the two scales agree: about as many rows scored by either
    assert 0.1 < np.mean(want > d) < 0.9


def test_confidence_fades_beyond_the_threshold_and_no_label_changes(tempered):
    """Within the threshold the probabilities are softmax(logits / T); beyond it the
    temperature is T * (d / threshold)^k (at most 1e6 times T), stopped where the top label keeps m / classes
    (the Python reference of the runtime's rule): the same argmax, a lower top probability,
    never below the floor unless the calibration alone is."""
    from serlaq.laq.calibration import MAX_TEMPER_FACTOR, floored_temperature, runtime_temperatures, softmax

    laq = LaqModel.load(tempered.run_dir / "model.laq")
    model = SERClassifier.load_from_checkpoint(tempered.checkpoint, map_location="cpu").eval()
    x, _ = SERDataModule.from_model(model).split_tensors("train")
    x = x.numpy()
    far = x[:20] + 6.0 * np.asarray(model.feature_std).reshape(1, -1) * np.sign(np.arange(x.shape[1]) % 2 - 0.5)
    rows = np.concatenate([x, far])
    d = np.asarray(laq.ood_scores(rows))
    assert (d[len(x):] > laq.ood_threshold).all() and (d[: len(x)] <= laq.ood_threshold).mean() > 0.95
    grown = laq.temperature * np.minimum(np.maximum(1.0, d / laq.ood_threshold) ** DEFAULT_OOD_TEMPER, MAX_TEMPER_FACTOR)
    logits = np.asarray(laq.logits(rows), dtype=np.float64)
    t = floored_temperature(logits, laq.temperature, grown, DEFAULT_OOD_FLOOR)
    assert np.array_equal(t, runtime_temperatures(logits, d, laq.temperature, laq.ood_threshold, DEFAULT_OOD_TEMPER, DEFAULT_OOD_FLOOR))
    want = np.stack([softmax(z[None], float(ti))[0] for z, ti in zip(logits, t)])
    got = laq.predict_proba(rows)
    assert np.allclose(got, want, atol=1e-9)
    plain = softmax(logits, laq.temperature)
    assert (got.argmax(1) == plain.argmax(1)).all()
    assert (got.max(1)[len(x):] < plain.max(1)[len(x):]).all()
    floor = DEFAULT_OOD_FLOOR / logits.shape[1]
    assert (got.max(1) >= np.minimum(floor, plain.max(1)) - 1e-9).all()
    unfloored = np.stack([softmax(z[None], float(ti))[0] for z, ti in zip(logits, grown)])
    stopped = (unfloored.max(1) < floor - 1e-6) & (plain.max(1) > floor)
    assert stopped[len(x):].any() and np.allclose(got.max(1)[stopped], floor, atol=1e-9)


def test_a_floor_at_or_above_the_class_count_is_not_stored():
    """m / classes >= 1 would be certainty (twice chance with two classes): the writer
    leaves the floor out (the runtime would refuse the file), and 0 writes no key at all."""
    from serlaq.laq.calibration import reference_metadata

    assert reference_metadata(5.0, 2.0, 7)["floor"] == 2.0
    assert "floor" not in reference_metadata(5.0, 2.0, 2)
    assert "floor" not in reference_metadata(5.0, 0.0, 7)
    assert "feature_threshold" not in reference_metadata(5.0, 2.0, 7)
    assert reference_metadata(5.0, 2.0, 7, 1.5)["feature_threshold"] == 1.5


def test_paper_mode_and_the_switch_leave_the_feature_threshold_out():
    from serlaq.laq_config import LaqConfig

    assert LaqConfig().resolved().ood_features is True
    assert LaqConfig(mode="paper").resolved().ood_features is False
    assert LaqConfig(ood_features=False).resolved().ood_features is False


def test_laq_json_reports_the_confidence_the_runtime_gives(tempered):
    """laq.json's `*_shipped` figures are those of the runtime's answers on the test split
    (growth and floor included), not of the temperature alone."""
    import json

    from serlaq.metrics import confidence_scores

    report = json.loads((tempered.run_dir / "laq.json").read_text())["calibration"]["test"]
    laq = LaqModel.load(tempered.run_dir / "model.laq")
    model = SERClassifier.load_from_checkpoint(tempered.checkpoint, map_location="cpu").eval()
    x, y = SERDataModule.from_model(model).split_tensors("test")
    runtime = confidence_scores(laq.predict_proba(x.numpy()), y.numpy())
    assert report["mean_confidence_shipped"] == pytest.approx(runtime["mean_confidence"], abs=1e-5)
    assert report["ece_shipped"] == pytest.approx(runtime["ece"], abs=1e-5)


def test_the_shipped_confidence_far_from_home_is_the_runtimes(tempered, tmp_path):
    """calibrate()'s `*_shipped` figures on clips far outside the training data (growth and
    floor acting) equal those of the written file's runtime answers on the same clips."""
    from serlaq.laq.pipeline import calibrate, compress_model, splits_of
    from serlaq.laq_config import LaqConfig
    from serlaq.metrics import confidence_scores

    model = SERClassifier.load_from_checkpoint(tempered.checkpoint, map_location="cpu").eval()
    splits = splits_of(SERDataModule.from_model(model))
    outcome = compress_model(model, splits, LaqConfig(qat=False).resolved())
    outcome.write(tmp_path / "m.laq")
    x, y = splits["test"]
    far = x + 6.0 * model.feature_std.reshape(1, -1) * torch.sign(torch.arange(x.shape[1]) % 2 - 0.5)
    deployed = outcome.quantizer.overrides(outcome.plan)
    report, threshold, _ = calibrate(
        outcome.model, deployed, {**splits, "test": (far, y)}, DEFAULT_OOD_TEMPER, DEFAULT_OOD_FLOOR, ood_features=True
    )
    laq = LaqModel.load(tmp_path / "m.laq")
    assert (np.asarray(laq.ood_scores(far.numpy())) > threshold).all()
    runtime = confidence_scores(laq.predict_proba(far.numpy()), y.numpy())
    assert report["test"]["mean_confidence_shipped"] == pytest.approx(runtime["mean_confidence"], abs=1e-5)
    assert report["test"]["ece_shipped"] == pytest.approx(runtime["ece"], abs=1e-5)
    # the temperature alone would have been surer there: the growth acted
    assert report["test"]["mean_confidence"] > runtime["mean_confidence"] + 1e-3
