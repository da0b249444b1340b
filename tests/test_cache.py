"""The feature cache: content keys, config keys, reuse, damage, skip/fail, parallel = serial."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tone, write_wav

import serlaq.data.cache as cache_mod
from serlaq.data.audio import load_audio
from serlaq.data.cache import config_key, extract_features
from serlaq.data.corpora import Clip, discover
from serlaq.errors import AudioError, DataError
from serlaq.features import FeatureConfig, FeatureExtractor

CFG = FeatureConfig(preset="paper")


@pytest.fixture()
def corpus(tmp_path: Path, tiny_corpus: Path) -> list[Clip]:
    """A private copy of a few tiny-corpus clips (tests here modify files)."""
    clips = discover(tiny_corpus)[::6]
    out = []
    for c in clips:
        dst = tmp_path / "audio" / c.path.name
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(c.path, dst)
        out.append(Clip(dst, c.label, c.speaker))
    return out


FLOAT32_ROUNDING = 1e-6  # relative: a few float32 ulps


def count_calls(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    calls: list[Path] = []
    real = cache_mod.load_audio

    def spy(path, *a, **kw):
        calls.append(Path(path))
        return real(path, *a, **kw)

    monkeypatch.setattr(cache_mod, "load_audio", spy)
    return calls


def test_features_equal_the_extractor_and_second_run_reads_the_cache(
    corpus: list[Clip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = count_calls(monkeypatch)
    X, kept, skipped = extract_features(corpus, CFG, tmp_path / "cache", progress=False)
    assert X.shape == (len(corpus), 180) and X.dtype == np.float32
    assert kept == corpus and skipped == []
    assert len(calls) == len(corpus)
    expected = FeatureExtractor(CFG)(torch.from_numpy(load_audio(corpus[3].path, 22050)))
    # the batch runs the same extractor in worker threads, where torch may sum the chroma
    # products in another order: equal to float32 rounding (measured: <= 6e-8 absolute)
    np.testing.assert_allclose(X[3], expected.numpy(), rtol=FLOAT32_ROUNDING, atol=0)

    X2, _, _ = extract_features(corpus, CFG, tmp_path / "cache", progress=False)
    assert len(calls) == len(corpus)  # no audio decoded the second time
    np.testing.assert_array_equal(X, X2)
    entries = list((tmp_path / "cache").rglob("*.npy"))
    assert len(entries) == len(corpus)
    assert not list((tmp_path / "cache").rglob(".tmp-*"))  # atomic writes leave no temp files


def test_key_is_the_file_content_and_the_config(corpus: list[Clip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    extract_features(corpus, CFG, cache, progress=False)
    calls = count_calls(monkeypatch)

    renamed = tmp_path / "elsewhere" / "renamed.wav"
    renamed.parent.mkdir()
    shutil.copyfile(corpus[0].path, renamed)
    extract_features([Clip(renamed, "sad", "x")], CFG, cache, progress=False)
    assert calls == []  # same bytes under another name: a hit

    write_wav(corpus[1].path, tone(0.5))  # edited in place: a miss
    X, _, _ = extract_features(corpus[:2], CFG, cache, progress=False)
    assert calls == [corpus[1].path]

    other = FeatureConfig(preset="paper", n_mfcc=20)
    assert config_key(other) != config_key(CFG)
    X20, _, _ = extract_features(corpus[:2], other, cache, progress=False)
    assert X20.shape == (2, 160) and len(calls) == 3
    assert len(list(cache.iterdir())) == 2  # one folder per feature config


def test_damaged_entries_are_recomputed(corpus: list[Clip], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    X, _, _ = extract_features(corpus, CFG, cache, progress=False)
    entries = sorted(cache.rglob("*.npy"))
    entries[0].write_bytes(b"garbage")
    np.save(entries[1], np.zeros(7, dtype=np.float32))  # wrong shape
    X2, _, _ = extract_features(corpus, CFG, cache, progress=False)
    np.testing.assert_array_equal(X, X2)


def test_fail_and_skip_on_bad_audio(corpus: list[Clip], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    silent = write_wav(tmp_path / "audio" / "silent.wav", np.zeros(22050, dtype=np.float32))
    broken = tmp_path / "audio" / "broken.wav"
    broken.write_text("not audio")
    clips = [*corpus[:2], Clip(silent, "sad", "x"), Clip(broken, "sad", "x"), Clip(tmp_path / "gone.wav", "sad", "x")]
    with pytest.raises(AudioError, match=r"silent\.wav: all silent"):
        extract_features(clips, CFG, tmp_path / "cache", progress=False)
    with caplog.at_level(logging.WARNING, logger="serlaq.data"):
        X, kept, skipped = extract_features(clips, CFG, tmp_path / "cache", on_error="skip", progress=False)
    assert X.shape == (2, 180) and kept == corpus[:2]
    assert [(p.name, r.split(" (")[0].split(":")[0]) for p, r in skipped] == [
        ("silent.wav", "all silent"),
        ("broken.wav", "cannot decode audio"),
        ("gone.wav", "file not found"),
    ]
    # in the words predict uses, not the decoder's
    assert skipped[1][1].startswith("cannot decode audio: not a WAV, FLAC"), skipped[1][1]
    assert "skipped 3 of 5 files (all silent: 1, cannot decode audio: 1, file not found: 1)" in caplog.text
    with pytest.raises(DataError, match="no usable clips: all 1 failed"):
        extract_features([Clip(silent, "sad", "x")], CFG, None, on_error="skip", progress=False)


def test_parallel_equals_serial_and_torch_threads_are_restored(corpus: list[Clip]) -> None:
    before = torch.get_num_threads()
    serial, _, _ = extract_features(corpus, CFG, None, workers=1, progress=False)
    parallel, _, _ = extract_features(corpus, CFG, None, workers=3, progress=False)
    np.testing.assert_array_equal(serial, parallel)
    assert torch.get_num_threads() == before


def test_argument_errors(corpus: list[Clip]) -> None:
    with pytest.raises(DataError, match="no clips given"):
        extract_features([], CFG, None)
    with pytest.raises(DataError, match="on_error"):
        extract_features(corpus, CFG, None, on_error="ignore")
    with pytest.raises(DataError, match="workers"):
        extract_features(corpus, CFG, None, workers=0)


def test_key_changes_with_the_feature_code(corpus: list[Clip], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Editing the feature source (or the audio loader, or rebuilding the native module) moves
    the cache to a new folder by itself; restoring the bytes restores the key."""
    files = cache_mod.fingerprint_files()
    assert [f.name for f in files[:3]] == ["features.py", "feature_config.py", "audio.py"]
    assert files[3].name.startswith("_native") and files[3].suffix in (".so", ".pyd")
    copies = []
    for f in files:
        dst = tmp_path / "code" / f.name
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(f, dst)
        copies.append(dst)
    monkeypatch.setattr(cache_mod, "fingerprint_files", lambda: copies)
    before = config_key(CFG)
    cache = tmp_path / "cache"
    extract_features(corpus[:2], CFG, cache, progress=False)
    calls = count_calls(monkeypatch)
    for edited in copies:
        original = edited.read_bytes()
        edited.write_bytes(original + b"\n# an edit\n")
        assert config_key(CFG) != before, edited.name
        edited.write_bytes(original)
        assert config_key(CFG) == before, edited.name
    copies[0].write_bytes(copies[0].read_bytes() + b"\n# an edit\n")
    extract_features(corpus[:2], CFG, cache, progress=False)
    assert len(calls) == 2 and len(list(cache.iterdir())) == 2  # recomputed into a new folder
