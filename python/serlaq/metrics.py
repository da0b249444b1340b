"""Classification scores from labels, numpy only: the one place they are defined.

`confusion_matrix(y_true, y_pred, k)` counts (rows: true, columns: predicted);
`scores(confusion, labels)` derives from it, in float64:

- accuracy: correct / all;
- macro-F1: the mean F1 over the classes that occur in the truth or the predictions
  (the scikit-learn / torchmetrics convention: a class absent from both does not count
  as a zero);
- UAR (unweighted average recall): the mean per-class recall over the classes present
  in the truth, the usual headline of speech emotion recognition on unbalanced corpora;
- per class: precision, recall, F1 and support.

Confidence (`confidence_scores(probabilities, y_true)`):

- mean confidence: the mean of the top probability of each prediction;
- ECE (expected calibration error): predictions binned by their top probability into 15
  equal-width bins ((0, 1/15], ..., (14/15, 1]); the sum over bins of the bin's share of
  the predictions times |bin accuracy - bin mean confidence|. 0 is honest confidence; a
  model that says 1.0 and is right 20 % of the time has 0.8.

`collapse_warning(y_true, y_pred, labels)`: one line when one label takes more than half
of the predictions but less than a third of the true labels (a model that answers one
class for everything, the usual failure on a corpus it never heard).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ClassScores:
    label: str
    precision: float
    recall: float
    f1: float
    support: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Scores:
    accuracy: float
    macro_f1: float
    uar: float
    per_class: tuple[ClassScores, ...]  # every label, in label order
    confusion: np.ndarray  # int64 (k, k)

    @property
    def count(self) -> int:
        return int(self.confusion.sum())

    def present(self) -> list[ClassScores]:
        """The classes that occur in the truth or the predictions (what macro-F1 averages)."""
        cm = self.confusion
        return [c for i, c in enumerate(self.per_class) if cm[i].sum() + cm[:, i].sum() > 0]


def confusion_matrix(y_true: Any, y_pred: Any, num_classes: int) -> np.ndarray:
    """int64 (k, k): rows the true class, columns the predicted one."""
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    if t.size and (min(t.min(), p.min()) < 0 or max(t.max(), p.max()) >= num_classes):
        raise ValueError(f"class ids must be in 0..{num_classes - 1}")
    cm = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(cm, (t, p), 1)
    return cm


def accuracy(y_true: Any, y_pred: Any) -> float:
    """Fraction of equal entries (0.0 for no samples)."""
    t = np.asarray(y_true).reshape(-1)
    p = np.asarray(y_pred).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"{t.size} true labels but {p.size} predictions")
    return float(np.mean(t == p)) if t.size else 0.0


def scores(confusion: Any, labels: Sequence[str]) -> Scores:
    """Accuracy, macro-F1, UAR and per-class scores of a confusion matrix."""
    cm = np.asarray(confusion, dtype=np.int64)
    k = len(labels)
    if cm.shape != (k, k):
        raise ValueError(f"confusion matrix of shape {cm.shape} for {k} labels")
    c = cm.astype(np.float64)
    hit = np.diag(c)
    support = c.sum(axis=1)
    predicted = c.sum(axis=0)
    recall = np.divide(hit, support, out=np.zeros(k), where=support > 0)
    precision = np.divide(hit, predicted, out=np.zeros(k), where=predicted > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    present = (support + predicted) > 0
    n = c.sum()
    return Scores(
        accuracy=float(hit.sum() / n) if n else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        uar=float(recall[support > 0].mean()) if (support > 0).any() else 0.0,
        per_class=tuple(
            ClassScores(label, float(precision[i]), float(recall[i]), float(f1[i]), int(support[i]))
            for i, label in enumerate(labels)
        ),
        confusion=cm,
    )


def label_scores(y_true: Any, y_pred: Any, labels: Sequence[str]) -> Scores:
    """`scores` of the confusion matrix of class ids `y_true` / `y_pred`."""
    return scores(confusion_matrix(y_true, y_pred, len(labels)), labels)


#: Equal-width confidence bins of the ECE.
ECE_BINS = 15


def expected_calibration_error(confidence: Any, correct: Any, bins: int = ECE_BINS) -> float:
    """ECE of top-label confidences in [0, 1] against 0/1 correctness (0.0 for no samples)."""
    c = np.asarray(confidence, dtype=np.float64).reshape(-1)
    ok = np.asarray(correct, dtype=np.float64).reshape(-1)
    if c.shape != ok.shape:
        raise ValueError(f"{c.size} confidences but {ok.size} outcomes")
    if c.size == 0:
        return 0.0
    # bin i holds (i/bins, (i+1)/bins]; a confidence of exactly 0 goes to the first bin
    idx = np.clip(np.ceil(c * bins).astype(np.int64) - 1, 0, bins - 1)
    total = 0.0
    for b in range(bins):
        m = idx == b
        if m.any():
            total += m.sum() / c.size * abs(ok[m].mean() - c[m].mean())
    return float(total)


def confidence_scores(probabilities: Any, y_true: Any) -> dict[str, float]:
    """`mean_confidence` and `ece` of class probabilities (n, k) against class ids (n,)."""
    p = np.asarray(probabilities, dtype=np.float64)
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    if p.ndim != 2 or p.shape[0] != t.size:
        raise ValueError(f"probabilities of shape {p.shape} for {t.size} labels")
    if t.size == 0:
        return {"mean_confidence": 0.0, "ece": 0.0}
    conf = p.max(axis=1)
    correct = p.argmax(axis=1) == t
    return {"mean_confidence": float(conf.mean()), "ece": expected_calibration_error(conf, correct)}


def top_label_share(y_pred: Any, num_classes: int) -> tuple[int, float]:
    """(class id, share of the predictions) of the most predicted label."""
    p = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if p.size == 0:
        return 0, 0.0
    counts = np.bincount(p, minlength=num_classes)
    k = int(counts.argmax())
    return k, float(counts[k] / p.size)


def collapse_warning(y_true: Any, y_pred: Any, labels: Sequence[str]) -> str | None:
    """One line when one label takes > 1/2 of the predictions but < 1/3 of the true labels."""
    t = np.asarray(y_true, dtype=np.int64).reshape(-1)
    k, share = top_label_share(y_pred, len(labels))
    if t.size == 0 or share <= 0.5:
        return None
    truth = float(np.mean(t == k))
    if truth >= 1 / 3:
        return None
    return (
        f"warning: {share * 100:.0f}% of the predictions are '{labels[k]}' but only {truth * 100:.0f}% of the clips "
        f"are: the model is collapsing onto one label on this data (a room, microphone or corpus it never heard?); "
        f"try serlaq adapt MODEL AUDIO --out ADAPTED.laq"
    )
