"""The synthetic corpus: layout, determinism, reuse, atomic install, learnable-not-trivial."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serlaq.data.corpora import discover
from serlaq.data.synthetic import EMOTIONS, MARKER, generate_corpus, read_marker
from serlaq.errors import DataError

SMALL = {"clips_per_class": 2, "speakers": 2, "seconds": 0.4}


def digest_tree(root: Path) -> dict[str, str]:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_format_and_marker(tiny_corpus: Path) -> None:
    clips = discover(tiny_corpus, "folder")
    assert sorted({c.label for c in clips}) == sorted(EMOTIONS)
    assert all(sum(c.label == e for c in clips) == 6 for e in EMOTIONS)
    assert [c.speaker for c in clips if c.label == "sad"] == ["f01", "f01", "f03", "f03", "m02", "m02"]
    info = sf.info(str(clips[0].path))
    assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
    marker = read_marker(tiny_corpus)
    assert marker["params"]["seed"] == 7 and len(marker["files"]) == len(clips)
    durations = [sf.info(str(c.path)).duration for c in clips]
    assert 0.4 < min(durations) and max(durations) < 0.6  # 0.5 s +- 15%


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path) -> None:
    a = digest_tree(generate_corpus(tmp_path / "a", seed=1, **SMALL))
    b = digest_tree(generate_corpus(tmp_path / "b", seed=1, **SMALL))
    c = digest_tree(generate_corpus(tmp_path / "c", seed=2, **SMALL))
    assert a == b
    wavs = [k for k in a if k.endswith(".wav")]
    assert len(wavs) == 14 and all(a[k] != c[k] for k in wavs)


def test_a_clip_does_not_depend_on_the_other_emotions(tmp_path: Path) -> None:
    both = digest_tree(generate_corpus(tmp_path / "both", emotions=("sad", "happy"), **SMALL))
    one = digest_tree(generate_corpus(tmp_path / "one", emotions=("sad",), **SMALL))
    assert all(both[k] == v for k, v in one.items() if k.endswith(".wav"))


def test_existing_identical_corpus_is_reused_and_changed_params_regenerate(tmp_path: Path) -> None:
    root = generate_corpus(tmp_path / "c", **SMALL)
    wav = next(root.rglob("*.wav"))
    stamp = wav.stat().st_mtime_ns
    generate_corpus(tmp_path / "c", **SMALL)
    assert wav.stat().st_mtime_ns == stamp  # nothing rewritten

    wav.unlink()  # incomplete corpus: regenerated
    generate_corpus(tmp_path / "c", **SMALL)
    assert wav.is_file()

    generate_corpus(tmp_path / "c", **{**SMALL, "clips_per_class": 3})
    assert len(list(root.rglob("*.wav"))) == 21
    assert json.loads((root / MARKER).read_text())["params"]["clips_per_class"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["c"]  # no temp or old folders left behind


def test_refuses_to_overwrite_a_foreign_folder(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.txt").write_text("precious")
    with pytest.raises(DataError, match="not a serlaq synthetic corpus"):
        generate_corpus(tmp_path / "mine", **SMALL)
    assert (tmp_path / "mine" / "thesis.txt").read_text() == "precious"


def test_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unknown emotion"):
        generate_corpus(tmp_path / "x", emotions=("angry", "elated"))
    with pytest.raises(DataError, match="clips_per_class >= 1"):
        generate_corpus(tmp_path / "x", clips_per_class=0)
    assert not (tmp_path / "x").exists()


def ridge_accuracy(X: np.ndarray, y: np.ndarray, repeats: int = 4) -> float:
    """Mean test accuracy of a one-vs-all ridge classifier over seeded stratified 75/25 splits."""
    from serlaq.data.splits import split_indices

    classes, yi = np.unique(y, return_inverse=True)
    accs = []
    for seed in range(repeats):
        train, _, test = split_indices(y, seed=seed, fractions=(0.75, 0.0, 0.25))
        mu, sd = X[train].mean(0), X[train].std(0) + 1e-8

        def design(rows: np.ndarray) -> np.ndarray:
            return np.c_[(X[rows] - mu) / sd, np.ones(len(rows))]

        A = design(train)
        W = np.linalg.solve(A.T @ A + 10.0 * np.eye(A.shape[1]), A.T @ np.eye(len(classes))[yi[train]])
        accs.append(float(((design(test) @ W).argmax(1) == yi[test]).mean()))
    return float(np.mean(accs))


def test_classes_are_learnable_but_not_trivial(tmp_path: Path) -> None:
    """A linear classifier on the 180 features: far above chance (1/7), far from perfect.

    (The demo's MLP does better: about 85% test accuracy on the 7 x 35-clip corpus.)
    """
    from serlaq.data.cache import extract_features
    from serlaq.features import FeatureConfig

    root = generate_corpus(tmp_path / "demo", seed=0, clips_per_class=24, speakers=4, seconds=0.8)
    X, clips, _ = extract_features(discover(root), FeatureConfig(), None, progress=False)
    acc = ridge_accuracy(X, np.array([c.label for c in clips]))
    assert 0.4 < acc < 0.95, acc
