"""`serlaq.metrics`: accuracy, macro-F1, UAR and the per-class table, checked by hand."""

from __future__ import annotations

import numpy as np
import pytest

from serlaq.metrics import accuracy, confusion_matrix, label_scores, scores

LABELS = ["a", "b", "c"]


def test_confusion_counts_rows_true_columns_predicted() -> None:
    cm = confusion_matrix([0, 0, 1, 2, 2, 2], [0, 1, 1, 2, 2, 0], 3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    with pytest.raises(ValueError, match="0..2"):
        confusion_matrix([0, 3], [0, 0], 3)
    with pytest.raises(ValueError, match="2 true labels but 1 predictions"):
        confusion_matrix([0, 1], [0], 3)


def test_uar_is_the_mean_recall_and_differs_from_accuracy_on_unbalanced_data() -> None:
    # 8 clips of a (all right), 2 of b (both predicted a): accuracy 0.8, recalls 1 and 0
    s = label_scores([0] * 8 + [1] * 2, [0] * 10, ["a", "b"])
    assert s.accuracy == 0.8
    assert s.uar == 0.5
    a, b = s.per_class
    assert (a.precision, a.recall, a.support) == (0.8, 1.0, 8)
    assert a.f1 == pytest.approx(2 * 0.8 / 1.8)
    assert (b.precision, b.recall, b.f1, b.support) == (0.0, 0.0, 0.0, 2)
    assert s.macro_f1 == pytest.approx(0.8 / 1.8)


def test_classes_absent_from_truth_and_predictions_do_not_count() -> None:
    # class c never occurs: macro-F1 and UAR average a and b only
    s = scores([[2, 0, 0], [1, 1, 0], [0, 0, 0]], LABELS)
    assert s.uar == pytest.approx((1.0 + 0.5) / 2)
    assert s.macro_f1 == pytest.approx((2 * (2 / 3) / (2 / 3 + 1) + 2 * 0.5 / 1.5) / 2)
    assert [c.label for c in s.present()] == ["a", "b"]
    # predicted but never true: it counts for macro-F1 (an F1 of 0), not for UAR
    s = scores([[1, 0, 1], [0, 1, 0], [0, 0, 0]], LABELS)
    assert s.uar == 0.75 and s.macro_f1 == pytest.approx((2 / 3 + 1.0 + 0.0) / 3)


def test_empty_and_accuracy() -> None:
    s = label_scores([], [], LABELS)
    assert (s.accuracy, s.macro_f1, s.uar, s.count) == (0.0, 0.0, 0.0, 0)
    assert accuracy([1, 2, 3, 4], [1, 2, 0, 4]) == 0.75 and accuracy([], []) == 0.0
