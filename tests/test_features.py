"""The torch features against librosa's definitions (librosa is a test-only dependency).

Tolerance: per block, max |ours - librosa| / max |librosa| <= 1e-4 (we measure ~1e-6:
both sides are float32, they differ only in summation order). Both sides get the same
samples at the same rate, so resampling is not part of the comparison.
"""

from __future__ import annotations

import librosa
import numpy as np
import pydantic
import pytest
import torch
from conftest import tone

from serlaq.data.audio import load_audio
from serlaq.features import FeatureConfig, FeatureExtractor, chroma_filterbank

REL_TOL = 1e-4


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


def librosa_blocks(y: np.ndarray, cfg: FeatureConfig) -> dict[str, np.ndarray]:
    """The librosa recipe with our settings: mfcc, chroma_stft (tuning fixed), melspectrogram."""
    kw = dict(sr=cfg.sample_rate, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length)
    mel = librosa.feature.melspectrogram(y=y, n_mels=cfg.n_mels, fmin=cfg.f_min, fmax=cfg.f_max, **kw)
    mfcc = librosa.feature.mfcc(S=librosa.power_to_db(mel, top_db=cfg.top_db), n_mfcc=cfg.n_mfcc)
    if cfg.chroma_spectrum == "magnitude":
        stft = np.abs(librosa.stft(y, n_fft=cfg.n_fft, hop_length=cfg.hop_length, win_length=cfg.win_length))
        chroma = librosa.feature.chroma_stft(S=stft, sr=cfg.sample_rate, n_chroma=cfg.n_chroma, tuning=cfg.chroma_tuning)
    else:
        chroma = librosa.feature.chroma_stft(y=y, n_chroma=cfg.n_chroma, tuning=cfg.chroma_tuning, **kw)
    return {"mfcc": mfcc.mean(axis=1), "chroma": chroma.mean(axis=1), "mel": mel.mean(axis=1)}


def signals(sr: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    t = np.arange(int(1.3 * sr)) / sr
    chirp = (0.4 * np.sin(2 * np.pi * (100 * t + 900 * t**2))).astype(np.float32)
    gapped = tone(1.0, sr, freq=330.0)
    gapped[int(0.3 * sr) : int(0.7 * sr)] = 0.0  # exact-zero frames: silent chroma frames stay 0
    return {
        "tone": tone(1.7, sr),
        "chirp": chirp,
        "noise": (0.1 * rng.standard_normal(int(0.8 * sr))).astype(np.float32),
        "gapped": gapped,
        "short": tone(0.1, sr, freq=500.0),  # fewer samples than 2 windows: edge frames dominate
    }


def test_default_config_is_the_papers_180_dims() -> None:
    cfg = FeatureConfig()
    assert (cfg.sample_rate, cfg.n_mfcc, cfg.n_chroma, cfg.n_mels, cfg.n_fft, cfg.hop_length) == (22050, 40, 12, 128, 2048, 512)
    assert cfg.dim == 180 and FeatureExtractor(cfg).dim == 180
    assert cfg.block_slices() == {"mfcc": slice(0, 40), "chroma": slice(40, 52), "mel": slice(52, 180)}
    assert len(cfg.feature_names()) == 180


def test_config_round_trips_through_json_and_rejects_bad_fields() -> None:
    cfg = FeatureConfig(n_mfcc=20, chroma_spectrum="power")
    assert FeatureConfig.model_validate_json(cfg.model_dump_json()) == cfg
    with pytest.raises(pydantic.ValidationError, match="n_mfc"):
        FeatureConfig(n_mfc=20)  # unknown key
    with pytest.raises(pydantic.ValidationError, match="win_length"):
        FeatureConfig(win_length=4096)
    with pytest.raises(pydantic.ValidationError, match="n_mfcc"):
        FeatureConfig(n_mfcc=200)
    with pytest.raises(pydantic.ValidationError, match="f_max"):
        FeatureConfig(f_max=20000.0, sample_rate=16000)


@pytest.mark.parametrize("n_chroma,tuning", [(12, 0.0), (12, 0.25), (24, -0.1)])
@pytest.mark.parametrize("sr,n_fft", [(22050, 2048), (16000, 1024)])
def test_chroma_filterbank_is_librosas(sr: int, n_fft: int, n_chroma: int, tuning: float) -> None:
    ours = chroma_filterbank(sr, n_fft, n_chroma, tuning=tuning).numpy()
    ref = librosa.filters.chroma(sr=sr, n_fft=n_fft, n_chroma=n_chroma, tuning=tuning)
    assert ours.shape == ref.shape
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


CONFIGS = {
    "default": FeatureConfig(),
    "power-chroma": FeatureConfig(chroma_spectrum="power"),
    "16k-small": FeatureConfig(sample_rate=16000, n_fft=1024, hop_length=256, win_length=800, n_mels=64, n_mfcc=20, f_min=50.0, f_max=7000.0, top_db=60.0),
    "no-top-db": FeatureConfig(top_db=None, chroma_tuning=0.2),
}


@pytest.mark.parametrize("cfg_name", CONFIGS)
def test_each_block_matches_librosa(cfg_name: str) -> None:
    cfg = CONFIGS[cfg_name]
    extractor = FeatureExtractor(cfg)
    for name, y in signals(cfg.sample_rate).items():
        ours = extractor(torch.from_numpy(y)).numpy()
        assert ours.shape == (cfg.dim,) and ours.dtype == np.float32
        ref = librosa_blocks(y, cfg)
        for block, sl in cfg.block_slices().items():
            err = rel_err(ours[sl], ref[block])
            assert err <= REL_TOL, f"{cfg_name}/{name}/{block}: relative error {err:.2e}"


def test_synthetic_speech_matches_librosa(tiny_corpus) -> None:
    cfg = FeatureConfig()
    path = sorted(tiny_corpus.rglob("*.wav"))[0]
    y = load_audio(path, cfg.sample_rate)
    ours = FeatureExtractor(cfg)(torch.from_numpy(y)).numpy()
    ref = librosa_blocks(y, cfg)
    for block, sl in cfg.block_slices().items():
        assert rel_err(ours[sl], ref[block]) <= REL_TOL, block


def test_padded_batch_with_lengths_equals_one_clip_at_a_time() -> None:
    extractor = FeatureExtractor()
    waves = [tone(0.6, freq=200.0), tone(1.1, freq=300.0, seed=1), tone(0.3, freq=440.0, seed=2)]
    single = torch.stack([extractor(torch.from_numpy(w)) for w in waves])
    longest = max(len(w) for w in waves)
    batch = torch.zeros(len(waves), longest)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = torch.from_numpy(w)
    lengths = torch.tensor([len(w) for w in waves])
    padded = extractor(batch, lengths)
    torch.testing.assert_close(padded, single, rtol=1e-5, atol=1e-5)
    # Without lengths the padding would count as signal: the short clips' means change.
    assert not torch.allclose(extractor(batch)[2], single[2], rtol=1e-3)
    torch.testing.assert_close(extractor.extract_batch(waves), single, rtol=1e-6, atol=1e-6)


def test_extractor_is_pure_buffers_and_rejects_bad_shapes() -> None:
    extractor = FeatureExtractor()
    assert list(extractor.parameters()) == []
    assert extractor.state_dict() == {}  # rebuilt from the config, never stored
    with pytest.raises(ValueError, match="shape"):
        extractor(torch.zeros(2, 2, 4096))


def test_features_differ_between_tones() -> None:
    extractor = FeatureExtractor()
    a = extractor(torch.from_numpy(tone(1.0, freq=220.0)))
    b = extractor(torch.from_numpy(tone(1.0, freq=261.63)))  # A3 vs C4: chroma peaks move
    sl = FeatureConfig().block_slices()["chroma"]
    assert int(a[sl].argmax()) == 9 and int(b[sl].argmax()) == 0  # chroma 0 is C, 9 is A


def test_scratch_buffers_carry_nothing_between_clips() -> None:
    """The CPU path reuses per-thread scratch arrays: a short clip after a long one (stale
    samples past its end) must give what the allocation-per-call path gives."""
    extractor = FeatureExtractor()
    long, short = tone(1.5, freq=300.0, seed=4), tone(0.2, freq=500.0, seed=5)
    extractor(torch.from_numpy(long))
    reused = extractor(torch.from_numpy(short))
    fresh = extractor(torch.from_numpy(short).requires_grad_()).detach()  # autograd: no scratch
    torch.testing.assert_close(reused, fresh, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(extractor(torch.from_numpy(long)), extractor(torch.from_numpy(long).requires_grad_()).detach(), rtol=1e-5, atol=1e-6)
