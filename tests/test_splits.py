"""Stratified and speaker-independent splits: partition, proportions, determinism, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from serlaq.data.splits import split_indices
from serlaq.errors import DataError

# EMODB's class sizes (W L N F A T E) and 10 speakers.
EMODB_COUNTS = {"angry": 127, "boredom": 81, "neutral": 79, "happy": 71, "fear": 69, "sad": 62, "disgust": 46}


def emodb_like(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    labels = np.array([lab for lab, n in EMODB_COUNTS.items() for _ in range(n)])
    rng = np.random.default_rng(seed)
    return rng.permutation(labels), rng.integers(0, 10, labels.size).astype(str)


def assert_partition(parts: tuple[np.ndarray, ...], n: int) -> None:
    joined = np.concatenate(parts)
    assert joined.dtype == np.int64
    assert np.array_equal(np.sort(joined), np.arange(n))
    for p in parts:
        assert np.array_equal(p, np.sort(p))


def test_emodb_sizes_and_per_class_proportions() -> None:
    labels, _ = emodb_like()
    train, val, test = split_indices(labels, seed=3)
    assert_partition((train, val, test), labels.size)
    assert (len(train), len(val), len(test)) == (427, 54, 54)  # as sklearn's train_test_split twice
    for lab, n in EMODB_COUNTS.items():
        for part, frac in ((test, 0.1), (val, 0.1)):
            got = int((labels[part] == lab).sum())
            assert abs(got - frac * n) <= 1, (lab, got, frac * n)


def test_same_seed_same_split_other_seed_other_split() -> None:
    labels, _ = emodb_like()
    a = split_indices(labels, seed=1)
    b = split_indices(list(labels), seed=1)
    c = split_indices(labels, seed=2)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[2], c[2])


def test_custom_fractions_and_no_validation() -> None:
    labels = np.repeat(["a", "b"], 50)
    train, val, test = split_indices(labels, fractions=(0.7, 0.0, 0.3))
    assert (len(train), len(val), len(test)) == (70, 0, 30)
    assert (labels[test] == "a").sum() == 15


def test_every_class_keeps_a_training_clip() -> None:
    labels = np.array(["a"] * 3 + ["b"] * 40)
    train, val, test = split_indices(labels, fractions=(0.4, 0.3, 0.3))
    assert (labels[train] == "a").sum() >= 1


def test_speaker_independent_holds_out_whole_speakers() -> None:
    labels, speakers = emodb_like()
    train, val, test = split_indices(labels, speakers, seed=4, speaker_independent=True)
    assert_partition((train, val, test), labels.size)
    s_train, s_val, s_test = (set(speakers[p]) for p in (train, val, test))
    assert len(s_val) == 1 and len(s_test) == 1 and len(s_train) == 8
    assert not (s_train & s_val or s_train & s_test or s_val & s_test)
    again = split_indices(labels, speakers, seed=4, speaker_independent=True)
    assert np.array_equal(again[2], test)


def test_errors_are_clear() -> None:
    with pytest.raises(DataError, match=r"too few clips to stratify \('b' has 2\).*at least 3 per class"):
        split_indices(["a"] * 10 + ["b"] * 2)
    with pytest.raises(DataError, match="at least 3 speakers, the corpus has 2"):
        split_indices(["a", "b"] * 10, ["s1", "s2"] * 10, speaker_independent=True)
    with pytest.raises(DataError, match="needs the clips' speaker ids"):
        split_indices(["a"] * 10, speaker_independent=True)
    with pytest.raises(DataError, match="summing to 1"):
        split_indices(["a"] * 10, fractions=(0.8, 0.1, 0.2))
    with pytest.raises(DataError, match="expected 3 numbers"):
        split_indices(["a"] * 10, fractions=(0.8, 0.2))
    with pytest.raises(DataError, match="no clips"):
        split_indices([])


def test_speaker_independent_reports_a_class_only_held_out_speakers_have() -> None:
    labels = ["a"] * 6 + ["b"] * 2
    speakers = ["s1", "s2", "s4", "s1", "s2", "s4", "s3", "s3"]  # only s3 says "b"
    raised = 0
    for seed in range(20):
        try:
            train, _, _ = split_indices(labels, speakers, seed=seed, speaker_independent=True)
        except DataError as exc:
            assert "class(es) ['b'] have no clips from the training speakers" in str(exc)
            raised += 1
        else:
            assert "s3" in {speakers[i] for i in train}
    assert 0 < raised < 20


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(3, 40), min_size=1, max_size=6),
    seed=st.integers(0, 2**32 - 1),
    val=st.sampled_from([0.0, 0.1, 0.2]),
)
@example(counts=[3, 3, 3, 30], seed=0, val=0.0)  # 4 test clips, one per class: the 30 gives two
def test_property_partition_and_stratification(counts: list[int], seed: int, val: float) -> None:
    labels = np.repeat(np.arange(len(counts)).astype(str), counts)
    n = labels.size
    test = 0.1
    if np.ceil(test * n) + np.ceil(val * n) > n - len(counts):
        return
    parts = split_indices(labels, seed=seed, fractions=(1 - val - test, val, test))
    assert_partition(parts, n)
    assert len(parts[2]) == int(np.ceil(test * n))
    # a class whose proportional share rounds to no test clip takes one from the largest share
    # ("every class in every split"): a large class may give up one clip per such class
    lifted = sum(test * c < 1 for c in counts)
    for k, c in enumerate(counts):
        got = (labels[parts[2]] == str(k)).sum()
        assert (labels[parts[0]] == str(k)).sum() >= 1
        assert got - test * c < 2
        assert test * c - got < 2 + lifted
        if len(parts[2]) >= len(counts):
            assert got >= 1


def test_loso_folds_hold_out_each_speaker_once() -> None:
    from serlaq.data.splits import loso_folds

    rng = np.random.default_rng(0)
    speakers = np.repeat([f"s{i}" for i in range(4)], 30)
    labels = np.array([["a", "b", "c"][i % 3] for i in range(120)])
    rng.shuffle(labels)
    folds = loso_folds(labels, speakers, seed=1)
    assert [name for name, _ in folds] == ["s0", "s1", "s2", "s3"]
    tested = np.concatenate([test for _, (_, _, test) in folds])
    assert sorted(tested.tolist()) == list(range(120))  # every clip tested exactly once
    for name, (train, val, test) in folds:
        assert set(speakers[test]) == {name} and name not in set(speakers[np.concatenate([train, val])])
        assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(120))
        assert len(val) == 9 and set(labels[val]) == {"a", "b", "c"}  # ceil(0.1 * 90), stratified
    assert [v.tolist() for _, (_, v, _) in folds] == [v.tolist() for _, (_, v, _) in loso_folds(labels, speakers, seed=1)]
    with pytest.raises(DataError, match="at least 2 speakers"):
        loso_folds(labels, np.repeat("s0", 120))
