"""Calibration in the LAQ stage: the temperature fitted on the compressed model's
validation logits, stored in the `.laq` and applied by the runtime; ECE in metrics.json
and laq.json; the out-of-domain threshold from the training split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import fit_tiny
from serlaq.data.datamodule import SERDataModule
from serlaq.laq.calibration import TEMPERATURE_RANGE, fit_temperature, nll, ood_threshold
from serlaq.model import SERClassifier
from serlaq.runtime import LaqModel


def test_fit_temperature_recovers_a_known_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 4, (4000, 5))
    for t0 in (0.5, 1.0, 3.0):
        p = np.exp(z / t0 - (z / t0).max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        y = np.array([rng.choice(5, p=row) for row in p])
        t = fit_temperature(z, y)
        assert t == pytest.approx(t0, rel=0.1)
        assert nll(z, y, t) <= min(nll(z, y, t * 1.05), nll(z, y, t / 1.05))
    # an overconfident model is cooled, within the runtime's bounds
    y = rng.integers(0, 5, 500)
    assert fit_temperature(z[:500] * 50, y) == pytest.approx(TEMPERATURE_RANGE[1])
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
    assert TEMPERATURE_RANGE[0] <= laq.temperature <= TEMPERATURE_RANGE[1]
    for split in ("val", "test"):
        assert cal[split]["nll"] <= cal[split]["nll_before"] + 1e-12 or split == "test"
        assert 0.0 <= cal[split]["ece"] <= 1.0
    assert cal["val"]["nll"] <= cal["val"]["nll_before"] + 1e-12
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
