"""`serlaq.reports.cross`: the cross-corpus scores (UAR, accuracy, top-label share, confidence, ECE)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serlaq.data.corpora import Clip
from serlaq.errors import ConfigError
from serlaq.reports.cross import cross_scores, find_laq, render_cross_markdown
from serlaq.runtime import Prediction


class FakeModel:
    """Answers each path with fixed probabilities over its labels."""

    def __init__(self, labels: list[str], answers: dict[str, list[float]]) -> None:
        self.labels = labels
        self.answers = answers

    def predict_files(self, paths: list[Path]) -> list[Prediction]:
        return [Prediction.from_probabilities(self.labels, self.answers[str(p)], path=str(p)) for p in paths]


def clip(i: int, label: str) -> Clip:
    return Clip(path=Path(f"c{i}.wav"), label=label, speaker="s")


def test_collapsed_confident_model_scores_chance_with_a_large_ece() -> None:
    labels = ["angry", "happy", "sad", "boredom"]
    clips = [clip(i, lab) for i, lab in enumerate(["angry", "happy", "sad"] * 4)]
    # always 'angry' at 0.97 among the shared labels (boredom, not in the corpus, is left out)
    model = FakeModel(labels, {str(c.path): [0.9, 0.02, 0.01, 0.07] for c in clips})
    s = cross_scores(model, clips, ["angry", "happy", "sad"])
    assert s["top_label"] == "angry" and s["top_share"] == 1.0
    assert s["uar"] == pytest.approx(1 / 3) and s["accuracy"] == pytest.approx(1 / 3)
    assert s["mean_confidence"] == pytest.approx(0.9 / 0.93, abs=1e-6)  # renormalised over the shared labels
    assert s["ece"] == pytest.approx(0.9 / 0.93 - 1 / 3, abs=1e-6)


def test_right_and_honest_model_has_no_collapse_and_small_ece() -> None:
    labels = ["angry", "happy"]
    clips = [clip(i, lab) for i, lab in enumerate(["angry", "happy"] * 5)]
    answers = {str(c.path): ([0.95, 0.05] if c.label == "angry" else [0.05, 0.95]) for c in clips}
    s = cross_scores(FakeModel(labels, answers), clips, labels)
    assert (s["uar"], s["accuracy"], s["top_share"]) == (1.0, 1.0, 0.5)
    assert s["ece"] == pytest.approx(0.05, abs=1e-6)
    text = render_cross_markdown({"model": "m.laq", "features": "portable", "rows": [{"data_dir": "d", "zero-shot": s}]})
    assert "| d | zero-shot | 10 | 100.0 | 100.0 | angry 50 % | 0.95 | 0.050 |" in text


def test_find_laq_names_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no .laq file"):
        find_laq(tmp_path)
    (tmp_path / "a.laq").write_bytes(b"x")
    assert find_laq(tmp_path).name == "a.laq"
    (tmp_path / "b.laq").write_bytes(b"x")
    with pytest.raises(ConfigError, match="2 .laq files"):
        find_laq(tmp_path)


def test_cross_ece_is_the_one_evaluate_reports_and_torchmetrics_computes() -> None:
    """The cross-corpus table and `serlaq evaluate` print one ECE: the same bins as
    torchmetrics' multiclass calibration error (15, equal width), the training side's reference."""
    import numpy as np

    torch = pytest.importorskip("torch")
    tm = pytest.importorskip("torchmetrics.functional.classification")
    from serlaq.metrics import confidence_scores

    labels = ["angry", "happy", "neutral", "sad"]
    rng = np.random.default_rng(7)
    logits = rng.normal(size=(200, 4)) * 1.5
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    truth = rng.integers(0, 4, 200)
    clips = [clip(i, labels[t]) for i, t in enumerate(truth)]
    model = FakeModel(labels, {str(c.path): list(p) for c, p in zip(clips, proba)})
    s = cross_scores(model, clips, labels)
    assert s["ece"] == pytest.approx(confidence_scores(proba, truth)["ece"], abs=1e-12)
    ref = tm.multiclass_calibration_error(torch.tensor(proba), torch.tensor(truth), num_classes=4, n_bins=15, norm="l1")
    assert s["ece"] == pytest.approx(float(ref), abs=1e-6)

