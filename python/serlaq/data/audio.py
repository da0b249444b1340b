"""Audio files -> validated mono float32 waveforms at one sample rate.

Decoding is done by `soundfile` (libsndfile: WAV, FLAC, OGG, MP3, AIFF, ...), channels
are averaged, and the signal is resampled with torchaudio's windowed-sinc resampler.
Anything that would silently give garbage features is an `AudioError` naming the file.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio
from torch import Tensor

from serlaq.errors import AudioError

# A clip whose peak is below -80 dBFS holds no usable signal: that is under 4 LSB of
# 16-bit PCM, i.e. only dither or quantization noise.
SILENCE_PEAK = 10 ** (-80 / 20)


class _Resampler:
    """torchaudio's windowed-sinc resampling kernel, applied as banded matrix products.

    `torchaudio.functional.resample` applies its kernel with a strided conv1d: every output
    phase (e.g. 441 of them for 16 -> 22.05 kHz) against a block of `2 * width + orig` input
    samples (334), although each phase's sinc only reaches about a dozen of them, and the
    conv's oneDNN backend re-plans for every new input length. Here the padded input is
    unfolded into those blocks once, and groups of adjacent phases are multiplied with
    only the taps they use: the same sums (equal up to float rounding, see
    tests/test_audio.py), about 10x faster on clips of varying length.
    """

    def __init__(self, orig: int, new: int) -> None:
        g = math.gcd(orig, new)
        self.orig, self.new = orig // g, new // g
        t = torchaudio.transforms.Resample(orig, new)  # builds the kernel: Hann sinc, width 6, rolloff 0.99
        self.width = int(t.width)
        kernel = t.kernel[:, 0, :]  # (new phases, taps)
        self.taps = kernel.shape[1]
        self.groups: list[tuple[int, int, Tensor]] = []  # (first tap, end tap, (taps, phases))
        for start in range(0, self.new, _PHASE_GROUP):
            part = kernel[start : start + _PHASE_GROUP]
            used = torch.nonzero(part.abs().sum(0)).flatten()
            lo, hi = (int(used.min()), int(used.max()) + 1) if used.numel() else (0, 1)
            self.groups.append((lo, hi, part[:, lo:hi].T.contiguous()))

    def __call__(self, wave: Tensor) -> Tensor:
        length = wave.shape[-1]
        padded = torch.nn.functional.pad(wave, (self.width, self.width + self.orig))
        blocks = padded.unfold(-1, self.taps, self.orig)  # (n_blocks, taps), a view
        out = torch.cat([blocks[:, lo:hi] @ k for lo, hi, k in self.groups], dim=1)  # (n_blocks, new)
        return out.reshape(-1)[: math.ceil(self.new * length / self.orig)]


_PHASE_GROUP = 32  # output phases per banded product in _Resampler


@functools.lru_cache(maxsize=16)
def _resampler(orig: int, new: int) -> _Resampler:
    return _Resampler(orig, new)


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Resample a 1-D float32 signal (torchaudio's Hann-windowed sinc, width 6, rolloff 0.99)."""
    if orig_rate == new_rate:
        return wave
    with torch.inference_mode():
        out = _resampler(int(orig_rate), int(new_rate))(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)))
    return out.numpy()


def load_audio(
    path: str | Path,
    sample_rate: int,
    *,
    min_samples: int = 2048,
    silence_peak: float = SILENCE_PEAK,
) -> np.ndarray:
    """Read `path` as a mono float32 array at `sample_rate`.

    Raises `AudioError` ("<path>: <what is wrong>") for a missing, unreadable or non-audio
    file, a file with no samples, NaN/inf samples, a clip whose peak is below
    `silence_peak` (all silent), or a clip shorter than `min_samples` after resampling
    (default: one 2048-sample analysis window; pass `FeatureConfig.min_samples`).
    """
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: file not found")
    if not path.is_file():
        raise AudioError(f"{path}: not a file")
    try:
        data, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: cannot decode audio ({_one_line(exc)})") from None
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise AudioError(f"{path}: cannot read audio ({_one_line(exc)})") from None

    if data.shape[0] == 0:
        raise AudioError(f"{path}: empty audio (0 samples)")
    peak = float(np.abs(data).max())  # NaN or inf anywhere makes the peak non-finite: one pass
    if not math.isfinite(peak):
        bad = int((~np.isfinite(data)).sum())
        raise AudioError(f"{path}: NaN/inf samples ({bad} of {data.size})")
    if data.shape[1] > 1:
        wave = data.mean(axis=1, dtype=np.float32)
        peak = float(np.abs(wave).max())
    else:
        wave = data[:, 0]
    if peak < silence_peak:
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.1f}"
        raise AudioError(
            f"{path}: all silent (peak {level} dBFS, threshold {20 * math.log10(silence_peak):.0f} dBFS)"
        )
    wave = resample(np.ascontiguousarray(wave, dtype=np.float32), int(rate), int(sample_rate))
    if wave.shape[0] < min_samples:
        raise AudioError(
            f"{path}: too short ({data.shape[0] / rate:.3f} s; features need at least "
            f"{min_samples / sample_rate:.3f} s = {min_samples} samples at {sample_rate} Hz)"
        )
    return wave


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
