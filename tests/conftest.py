"""Shared fixtures: a tiny generated corpus and WAV helpers (tests never touch real data)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from serlaq.data.synthetic import generate_corpus

TINY_CORPUS = {"seed": 7, "clips_per_class": 6, "speakers": 3, "seconds": 0.5}


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """7 emotions x 6 clips x 0.5 s from 3 speakers, folder layout (read-only: do not modify)."""
    return generate_corpus(tmp_path_factory.mktemp("corpus") / "tiny", **TINY_CORPUS)


def tone(seconds: float = 1.0, sample_rate: int = 22050, freq: float = 220.0, amp: float = 0.3, seed: int = 0) -> np.ndarray:
    """A harmonic tone with vibrato and a little noise, float32."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sample_rate)) / sample_rate
    phase = 2 * np.pi * freq * t + 0.01 * freq / 5 * np.sin(2 * np.pi * 5 * t)  # 1% vibrato at 5 Hz
    y = sum(amp / k * np.sin(k * phase) for k in range(1, 6)) + 0.01 * rng.standard_normal(t.size)
    return y.astype(np.float32)


def write_wav(path: Path, data: np.ndarray, sample_rate: int = 22050, subtype: str = "PCM_16") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data, sample_rate, subtype=subtype)
    return path
