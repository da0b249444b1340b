"""Rust features (`_native.features`, the runtime path) against the torch reference
(`serlaq.features.FeatureExtractor`, the training path) on generated audio.

The acceptance measure of the torch-free runtime: after standardization (dividing by
each feature's std over a set of clips, as a model's input layer does), the largest
difference stays below `STANDARDIZED_TOL`. The options the torch reference does not
have yet (mel_scale, std pooling, deltas; the `accuracy` branch adds them) are checked
against a small torch reimplementation below, built from the reference's own pieces and
`torchaudio.functional.compute_deltas`.
"""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
import torchaudio.functional as AF

from serlaq import _native
from serlaq.data.synthetic import EMOTIONS, _speakers, synthesize_clip
from serlaq.errors import AudioError
from serlaq.features import FeatureConfig, FeatureExtractor

# Largest |rust - torch| / std_over_clips of any feature (issue 10's acceptance target).
# Measured on these clips: at most 4e-5, except 3.9e-4 with top_db None (tone clips: mel
# bands whose power sits at the float32 FFT rounding floor, where the two FFTs' rounding
# noise differs and log10 magnifies it; top_db's floor removes exactly those values).
STANDARDIZED_TOL = 1e-3
# Raw relative closeness, per value, relative to the largest magnitude of its block
# (MFCC coefficients near zero carry the absolute error of the large ones). Measured 3e-6.
RAW_BLOCK_REL = 3e-5

CONFIGS = {
    "default": {},
    "small n_fft/hop": {"n_fft": 512, "hop_length": 128, "n_mels": 40, "n_mfcc": 13},
    "win_length < n_fft": {"win_length": 1000},
    "f_max set": {"f_min": 50.0, "f_max": 6000.0},
    "top_db None": {"top_db": None},
    "chroma power": {"chroma_spectrum": "power", "chroma_tuning": 0.2},
    "16 kHz": {"sample_rate": 16000, "n_fft": 1024, "hop_length": 256, "n_mels": 64},
    "11025 Hz odd grid": {"sample_rate": 11025, "n_fft": 1000, "hop_length": 250, "n_mels": 60, "n_chroma": 24},
}


@functools.lru_cache(maxsize=None)
def clips(sr: int) -> list[np.ndarray]:
    """Tones, noise, chirps and synthetic-corpus utterances at `sr`, 0.4-1.2 s."""
    rng = np.random.default_rng(sr)
    out = []
    for i, f0 in enumerate((110.0, 440.0, 1760.0)):
        t = np.arange(int(sr * (0.4 + 0.2 * i))) / sr
        out.append(0.4 * np.sin(2 * np.pi * f0 * t) + 0.003 * rng.standard_normal(t.size))
    for level in (0.02, 0.3):
        out.append(level * rng.standard_normal(int(sr * 0.6)))
    t = np.arange(int(sr * 0.8)) / sr
    out.append(0.3 * np.sin(2 * np.pi * (80 + 0.25 * sr * t / 0.8) * t))
    speakers = _speakers(3, seed=5)
    for i, emotion in enumerate(EMOTIONS):
        out.append(synthesize_clip(emotion, speakers[i % 3], 1.0, sr, np.random.default_rng([sr, i])))
    return [np.ascontiguousarray(c, dtype=np.float32) for c in out]


def spec_json(cfg: FeatureConfig, **extra: object) -> str:
    return json.dumps({**cfg.model_dump(mode="json"), **extra})


def standardized_gap(torch_feats: np.ndarray, rust_feats: np.ndarray) -> float:
    std = torch_feats.astype(np.float64).std(axis=0)
    std = np.where(std > 0, std, 1.0)  # as serlaq.data.datamodule.standardization
    return float(np.max(np.abs(torch_feats.astype(np.float64) - rust_feats) / std))


def raw_block_rel(blocks: dict[str, slice], a: np.ndarray, b: np.ndarray) -> float:
    worst = 0.0
    for sl in blocks.values():
        scale = np.abs(a[:, sl]).max(axis=1, keepdims=True) + 1e-12
        worst = max(worst, float(np.max(np.abs(a[:, sl].astype(np.float64) - b[:, sl]) / scale)))
    return worst


@pytest.mark.parametrize("name", list(CONFIGS))
def test_rust_matches_torch_reference(name: str) -> None:
    cfg = FeatureConfig(**CONFIGS[name])
    ext = FeatureExtractor(cfg)
    waves = clips(cfg.sample_rate)
    ref = np.stack([ext(torch.from_numpy(w)).numpy() for w in waves])
    got = np.stack([_native.features(spec_json(cfg), w) for w in waves])
    assert got.shape == ref.shape == (len(waves), cfg.dim) and got.dtype == np.float32
    assert standardized_gap(ref, got) < STANDARDIZED_TOL
    assert raw_block_rel(cfg.block_slices(), ref, got) < RAW_BLOCK_REL


def torch_rich(
    ext: FeatureExtractor, wave: np.ndarray, mel_scale: str, stats: list[str], delta_stats: list[str], delta_width: int
) -> np.ndarray:
    """The plan's new options from the reference's own pieces (until the torch side has them)."""
    cfg = ext.cfg
    with torch.inference_mode():
        x = torch.from_numpy(wave)[None]
        magnitude, power = ext._spectra(x)
        mel = ext.mel_fb @ power[0]  # (n_mels, frames)
        db = torch.log10(torch.clamp(mel, min=1e-10)) * 10.0
        if cfg.top_db is not None:
            db = torch.maximum(db, db.max() - cfg.top_db)
        mfcc = ext.dct @ db  # (n_mfcc, frames)
        spectrum = magnitude[0] if cfg.chroma_spectrum == "magnitude" else power[0]
        raw = ext.chroma_fb @ spectrum
        top = raw.amax(dim=0, keepdim=True)
        chroma = raw / torch.where(top < torch.finfo(torch.float32).tiny, 1.0, top)
        mel_block = mel if mel_scale == "power" else db
        pool = {"mean": lambda a: a.mean(-1), "std": lambda a: a.std(-1, unbiased=False)}
        parts = [pool[s](b) for s in stats for b in (mfcc, chroma, mel_block)]
        if delta_stats:
            d = AF.compute_deltas(mfcc, win_length=delta_width, mode="replicate")
            parts += [pool[s](d) for s in delta_stats]
        return torch.cat(parts).numpy()


RICH = {
    "db mel": ("db", ["mean"], [], 9),
    "mean+std": ("power", ["mean", "std"], [], 9),
    "std first, deltas": ("db", ["std", "mean"], ["mean", "std"], 5),
    "rich-like": ("db", ["mean", "std"], ["std"], 9),
    "wide deltas": ("db", ["mean"], ["std"], 31),
}


@pytest.mark.parametrize("name", list(RICH))
def test_new_options_match_torch_reimplementation(name: str) -> None:
    mel_scale, stats, delta_stats, width = RICH[name]
    cfg = FeatureConfig(n_fft=1024, hop_length=256, n_mels=64, n_mfcc=20)
    ext = FeatureExtractor(cfg)
    waves = clips(cfg.sample_rate)
    ref = np.stack([torch_rich(ext, w, mel_scale, stats, delta_stats, width) for w in waves])
    js = spec_json(cfg, mel_scale=mel_scale, stats=stats, delta_stats=delta_stats, delta_width=width)
    got = np.stack([_native.features(js, w) for w in waves])
    dim = len(stats) * (cfg.n_mfcc + cfg.n_chroma + cfg.n_mels) + len(delta_stats) * cfg.n_mfcc
    assert got.shape == ref.shape == (len(waves), dim)
    assert standardized_gap(ref, got) < STANDARDIZED_TOL


def test_paper_layout_is_a_prefix_of_richer_layouts() -> None:
    cfg = FeatureConfig()
    w = clips(cfg.sample_rate)[-1]
    paper = _native.features(spec_json(cfg), w)
    rich = _native.features(spec_json(cfg, stats=["mean", "std"], delta_stats=["std"]), w)
    assert rich.shape == (2 * 180 + 40,)
    np.testing.assert_array_equal(rich[:180], paper)


def test_spec_and_waveform_errors() -> None:
    cfg = FeatureConfig()
    good = clips(cfg.sample_rate)[0]
    with pytest.raises(ValueError, match=r"features\.n_fft: 1073741824 is outside 16\.\.=16384"):
        _native.features(spec_json(cfg, n_fft=2**30), good)
    with pytest.raises(ValueError, match=r"features\.sample_rate: 2000000000 is outside 1000\.\.=192000"):
        _native.features(spec_json(cfg, sample_rate=2_000_000_000), good)
    with pytest.raises(ValueError, match=r"features\.colour: unknown key"):
        _native.features(spec_json(cfg, colour=1), good)
    bad = good.copy()
    bad[7] = np.nan
    with pytest.raises(AudioError, match="waveform: sample 7 is NaN or infinite"):
        _native.features(spec_json(cfg), bad)
    with pytest.raises(AudioError, match="too short"):
        _native.features(spec_json(cfg), good[:100])
    with pytest.raises(ValueError, match="1-D mono"):
        _native.features(spec_json(cfg), np.stack([good, good]))
