"""Audio files -> validated mono float32 waveforms at one sample rate, through `_native`.

Decoding (symphonia: WAV PCM 8/16/24/32 and float, WAVE_FORMAT_EXTENSIBLE, mu-law,
A-law and IMA/MS ADPCM, FLAC, OGG/Vorbis, MP3, AIFF, M4A with AAC-LC or ALAC; ropus:
Opus in OGG and WebM), the
downmix (mean of channels), resampling (one rubato sinc
resampler for every rate pair, the same one the runtime uses) and validation all run in
Rust (`rust/core/src/audio/`), packet by packet. This module only adapts in-memory
waveforms (dtype, torch tensors, channel axis) before handing float32 to Rust.
Anything that would silently give garbage features is an `AudioError` naming the file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from serlaq import _native
from serlaq.errors import AudioError
from serlaq.waveform import planar_float32

# A clip whose peak is below -80 dBFS holds no usable signal: that is under 4 LSB of
# 16-bit PCM, i.e. only dither or quantization noise. (Rust: audio::limits::SILENCE_PEAK_DBFS.)
SILENCE_PEAK = 10 ** (-80 / 20)

AUDIO_SUFFIXES: tuple[str, ...] = _native.AUDIO_SUFFIXES
"""File extensions the native decoder reads (lower case, with the dot)."""


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D signal to float32, ceil(n * new / orig) samples (`_native.resample`:
    a windowed sinc 128 taps long at the lower rate, cut-off 0.95 of its Nyquist).
    Equal rates return `wave` itself."""
    if orig_rate == new_rate:
        return wave
    return _native.resample(np.ascontiguousarray(wave, dtype=np.float32), int(orig_rate), int(new_rate))


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    min_samples: int = 2048,
    silence_peak: float = SILENCE_PEAK,
) -> np.ndarray:
    """Read `path` as a mono float32 array at `sample_rate`.

    Raises `AudioError` ("<path>: <what is wrong>") for a missing, unreadable, truncated,
    corrupt or non-audio file, a file with no samples, NaN/inf samples, a clip whose peak is
    below -80 dBFS (all silent), or a clip shorter than `min_samples` after resampling
    (default: one 2048-sample analysis window; pass `FeatureConfig.min_samples`).
    `silence_peak` other than the default is applied on top of the native -80 dBFS check.
    """
    out = _native.load_audio(str(path), int(sample_rate), int(min_samples))
    _check_silence(out, silence_peak, str(path))
    return out


def prepare_waveform(
    wave: Any,
    sample_rate: int,
    target_rate: int,
    *,
    source: str = "waveform",
    channel_axis: int | None = None,
    min_samples: int = 2048,
    silence_peak: float = SILENCE_PEAK,
) -> np.ndarray:
    """An in-memory waveform -> validated mono float32 at `target_rate` (what `load_audio`
    does after decoding; `LaqModel.predict(wave, sample_rate)` uses it directly).

    `wave`: numpy array or torch tensor, 1-D or 2-D, float or PCM integers (scaled to
    [-1, 1) as soundfile decodes them). For 2-D input `channel_axis` says which axis holds
    the channels; None takes the shorter one, so both (channels, samples) (torchaudio) and
    (samples, channels) (soundfile) work. Channels are averaged, then resampled. Raises
    `AudioError` ("<source>: <what is wrong>") for a bad rate or shape, no samples,
    NaN/inf samples, silence (peak below -80 dBFS) or fewer than `min_samples` samples
    after resampling.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(f"{source}: sample_rate must be a positive integer, got {sample_rate!r}")
    planar = planar_float32(wave, source=source, channel_axis=channel_axis)
    out = _native.prepare_waveform(planar, int(sample_rate), int(target_rate), int(min_samples), source)
    _check_silence(out, silence_peak, source)
    return out


def _check_silence(out: np.ndarray, silence_peak: float, source: str) -> None:
    """A caller's stricter silence threshold (the native check is -80 dBFS)."""
    if silence_peak <= SILENCE_PEAK:
        return
    peak = float(np.abs(out).max())
    if peak < silence_peak:
        level = "-inf" if peak == 0 else f"{20 * np.log10(peak):.1f}"
        raise AudioError(f"{source}: all silent (peak {level} dBFS, threshold {20 * np.log10(silence_peak):.0f} dBFS)")
