"""Waveform augmentation (`data.augment`): determinism, each transform's measurable effect, config errors, caching."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from conftest import tone, write_wav

from serlaq.config import AugmentConfig, load_config
from serlaq.data import augment as A
from serlaq.errors import ConfigError

RATE = 16000


def cfg(**sections: Any) -> AugmentConfig:
    return AugmentConfig.model_validate(sections)


def wave(seconds: float = 0.5, seed: int = 0) -> np.ndarray:
    return tone(seconds, RATE, 180.0, amp=0.3, seed=seed)


def spectrum_db(x: np.ndarray, lo: float, hi: float) -> float:
    f = np.fft.rfftfreq(x.shape[0], 1 / RATE)
    p = np.abs(np.fft.rfft(x)) ** 2
    return 10 * math.log10(p[(f >= lo) & (f < hi)].sum())


ALL = {"pause": {}, "speed": {}, "pitch": {}, "reverb": {}, "eq": {}, "resample": {}, "noise": {}, "gain": {}}


def test_same_seed_same_samples_other_seed_or_copy_other_samples() -> None:
    c = cfg(**{k: {"p": 1.0} for k in ALL})
    x = wave()
    a = A.augmented_copy(x, RATE, c, seed=3, digest="ab" * 32, copy=1)
    assert np.array_equal(a, A.augmented_copy(x, RATE, c, seed=3, digest="ab" * 32, copy=1))
    assert not np.allclose(a[:1000], A.augmented_copy(x, RATE, c, seed=4, digest="ab" * 32, copy=1)[:1000])
    assert not np.allclose(a[:1000], A.augmented_copy(x, RATE, c, seed=3, digest="ab" * 32, copy=2)[:1000])
    assert np.isfinite(a).all()


def test_probability_zero_leaves_the_clip_alone_and_one_always_applies() -> None:
    x = wave()
    off = cfg(**{k: {"p": 0.0} for k in ALL})
    assert np.array_equal(A.augmented_copy(x, RATE, off, 0, "cd" * 32, 1), x)
    on = cfg(gain={"p": 1.0, "db": [6.0, 6.0]})
    assert np.allclose(A.augmented_copy(x, RATE, on, 0, "cd" * 32, 1), x * 10 ** (6 / 20), atol=1e-6)


@pytest.mark.parametrize("snr", [5.0, 17.0, 30.0])
@pytest.mark.parametrize("color", [0.0, 1.0, 2.0])
def test_noise_reaches_the_target_snr(snr: float, color: float) -> None:
    x = torch.from_numpy(wave())
    y = A.noise(x, RATE, snr, color, torch.Generator().manual_seed(1))
    measured = 10 * math.log10(float(x.double().pow(2).mean()) / float((y - x).double().pow(2).mean()))
    assert abs(measured - snr) < 0.05


def test_noise_color_tilts_its_spectrum() -> None:
    x = torch.from_numpy(wave())
    g = torch.Generator().manual_seed(2)
    white = (A.noise(x, RATE, 10.0, 0.0, g) - x).numpy()
    brown = (A.noise(x, RATE, 10.0, 2.0, g) - x).numpy()
    # per octave: white noise gains ~+3 dB, brown (1/f^2) loses ~-3 dB from 1-2 kHz to 2-4 kHz
    assert spectrum_db(white, 2000, 4000) - spectrum_db(white, 1000, 2000) > 2.0
    assert spectrum_db(brown, 2000, 4000) - spectrum_db(brown, 1000, 2000) < -2.0


def test_band_limiting_removes_the_band_above_the_lower_rate() -> None:
    noise = np.random.default_rng(0).standard_normal(RATE // 2).astype(np.float32) * 0.1
    y = A.band_limit(torch.from_numpy(noise), RATE, 8000).numpy()
    assert y.shape == noise.shape
    assert spectrum_db(noise, 5000, 7500) - spectrum_db(y, 5000, 7500) > 30  # above 4 kHz: gone
    assert abs(spectrum_db(noise, 500, 3000) - spectrum_db(y, 500, 3000)) < 1.0  # below: kept


def test_eq_tilt_and_low_cut_shape_the_spectrum_and_keep_the_level() -> None:
    noise = torch.from_numpy(np.random.default_rng(1).standard_normal(RATE).astype(np.float32) * 0.1)
    y = A.eq(noise, RATE, tilt_db_per_octave=3.0, low_cut_hz=0.0).numpy()
    change = [spectrum_db(y, f, 2 * f) - spectrum_db(noise.numpy(), f, 2 * f) for f in (500, 1000, 2000)]
    assert 2.0 < change[1] - change[0] < 4.0 and 2.0 < change[2] - change[1] < 4.0  # ~3 dB per octave
    assert math.isclose(float(np.sqrt((y**2).mean())), float(noise.pow(2).mean().sqrt()), rel_tol=1e-4)
    cut = A.eq(noise, RATE, 0.0, 400.0).numpy()
    assert spectrum_db(noise.numpy(), 50, 150) - spectrum_db(cut, 50, 150) > 15


def test_reverb_spreads_an_impulse_with_the_asked_decay() -> None:
    x = torch.zeros(RATE)
    x[100] = 1.0
    y = A.reverb(x, RATE, rt60=0.5, drr_db=0.0, g=torch.Generator().manual_seed(0)).numpy()
    e = y[101:].astype(np.float64) ** 2
    early, late = e[: RATE // 10].sum(), e[RATE // 10 : RATE // 5].sum()  # 0-100 ms vs 100-200 ms after the direct sound
    assert 10 * math.log10(early / late) == pytest.approx(12.0, abs=1.5)  # 60 dB per 0.5 s = 12 dB per 100 ms
    assert math.isclose(float(np.sqrt((y**2).mean())), float(x.pow(2).mean().sqrt()), rel_tol=1e-4)  # level kept


def test_pause_adds_room_tone_before_and_after_at_the_asked_level() -> None:
    x = torch.from_numpy(wave(0.5))
    y = A.pause(x, RATE, 0.25, 1.0, -50.0, torch.Generator().manual_seed(2)).numpy()
    before, after = int(0.25 * RATE), RATE
    assert y.shape[0] == before + x.shape[0] + after
    assert np.array_equal(y[before : before + x.shape[0]], x.numpy())  # the clip itself untouched
    rms = lambda s: float(np.sqrt(np.mean(s.astype(np.float64) ** 2)))  # noqa: E731
    for pad in (y[:before], y[before + x.shape[0] :]):
        assert 20 * math.log10(rms(pad) / rms(x.numpy())) == pytest.approx(-50.0, abs=0.5)
    c = cfg(pause={"p": 1.0, "seconds": [0.5, 0.5], "level_db": [-60.0, -60.0]})
    assert A.augmented_copy(x.numpy(), RATE, c, 0, "ef" * 32, 1).shape[0] == x.shape[0] + RATE


def test_speed_changes_duration_and_pitch() -> None:
    x = torch.from_numpy(wave(1.0))
    y = A.speed(x, RATE, 1.1).numpy()
    assert abs(y.shape[0] - round(RATE / 1.1)) <= 2
    f0 = lambda s: np.fft.rfftfreq(s.shape[0], 1 / RATE)[np.argmax(np.abs(np.fft.rfft(s * np.hanning(s.shape[0]))))]  # noqa: E731
    assert f0(y) == pytest.approx(180.0 * 1.1, rel=0.02)


@pytest.mark.parametrize("semitones", [-3.0, -1.5, 2.0, 4.0])
def test_pitch_moves_the_voice_and_keeps_the_tempo(semitones: float) -> None:
    n = RATE
    t = np.arange(n) / RATE
    burst = (t >= 0.5) & (t < 0.7)  # a syllable half a second in: it must stay there
    x = torch.from_numpy((0.3 * np.sin(2 * np.pi * 180.0 * t) * np.where(burst, 1.0, 0.05)).astype(np.float32))
    y = A.pitch(x, RATE, semitones).numpy()
    assert y.shape[0] == n and np.isfinite(y).all()
    f0 = lambda s: np.fft.rfftfreq(s.shape[0], 1 / RATE)[np.argmax(np.abs(np.fft.rfft(s * np.hanning(s.shape[0]))))]  # noqa: E731
    assert f0(y) == pytest.approx(180.0 * 2 ** (semitones / 12), rel=0.01)
    envelope = np.convolve(np.abs(y), np.ones(160) / 160, mode="same")
    loud = np.flatnonzero(envelope > 0.5 * envelope.max()) / RATE
    assert loud[0] == pytest.approx(0.5, abs=0.02) and loud[-1] == pytest.approx(0.7, abs=0.02)
    assert math.isclose(float(np.sqrt((y.astype(np.float64) ** 2).mean())), float(x.double().pow(2).mean().sqrt()), rel_tol=1e-4)


@pytest.mark.parametrize(
    ("section", "named"),
    [
        ({}, "turns on no transform"),
        ({"noise": {"snr_db": [30, 5]}}, "data.augment.noise.snr_db"),
        ({"noise": {"snr": [5, 30]}}, "unknown key 'data.augment.noise.snr'"),
        ({"gain": {"p": 1.5}}, "data.augment.gain.p"),
        ({"copies": 0, "gain": {}}, "data.augment.copies"),
        ({"resample": {"rates": [16000, 100]}}, "data.augment.resample.rates"),
        ({"speed": {"factor": [0.1, 1.0]}}, "data.augment.speed.factor"),
        ({"pitch": {"semitones": [-24, 0]}}, "data.augment.pitch.semitones"),
        ({"reverb": {"rt60": [0.2, "long"]}}, "data.augment.reverb.rt60"),
        ({"echo": {}}, "unknown key 'data.augment.echo'"),
        ({"pause": {"seconds": [0.0, 60.0]}}, "data.augment.pause.seconds"),
    ],
)
def test_bad_augment_configs_name_the_key(section: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(None, {"data.augment": section})
    assert named in str(err.value) and "\n" not in str(err.value)


def test_params_key_follows_the_transforms_not_copies_or_seed() -> None:
    base = A.params_key(cfg(noise={}))
    assert A.params_key(cfg(noise={}, copies=3, seed=9)) == base
    assert A.params_key(cfg(noise={"snr_db": [10, 20]})) != base


def test_training_rows_gain_cached_augmented_copies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from serlaq.data.datamodule import SERDataModule

    corpus = tmp_path / "corpus"
    for k in range(12):  # 2 classes x 2 speakers x 3 clips of 0.25 s
        write_wav(corpus / ("sad", "happy")[k % 2] / f"s{k % 4 // 2}" / f"{k}.wav", tone(0.25, RATE, 150.0 + 20 * k, seed=k), RATE)

    def config(seed: int):
        return load_config(
            None,
            {
                "seed": seed, "data.dataset": "folder", "data.data_dir": str(corpus), "data.cache_dir": str(tmp_path / "cache"),
                "data.split": [0.5, 0.25, 0.25],
                "data.workers": 1, "trainer.enable_progress_bar": False,
                "data.augment": {"copies": 2, "noise": {"p": 1.0}, "gain": {}},
                "train.speaker_copies": False,  # the augmented rows alone
            },
        )

    dm = SERDataModule(config(0))
    dm.setup()
    n = len(dm.split_indices("train"))
    rows = dm.train_dataloader().dataset
    assert len(rows) == 3 * n and len(dm.split_tensors("train")[0]) == n  # split_tensors stays the clean split
    assert torch.equal(rows.tensors[1][n : 2 * n], rows.tensors[1][:n])
    assert not torch.allclose(rows.tensors[0][n : 2 * n], rows.tensors[0][:n])
    assert len(list((tmp_path / "cache").rglob("augment-*/*/*-s0-c2.npy"))) == n
    # a second setup reads every copy from the cache: no clip is augmented again
    monkeypatch.setattr(A, "augmented_copy", lambda *a, **k: pytest.fail("augmented again despite the cache"))
    again = SERDataModule(config(0))
    again.setup()
    assert torch.equal(again.train_dataloader().dataset.tensors[0], rows.tensors[0])
    monkeypatch.undo()
    other = SERDataModule(config(1))
    other.setup()
    assert len(list((tmp_path / "cache").rglob("augment-*/*/*-s1-c1.npy"))) == len(other.split_indices("train"))
