"""Audio files -> validated mono float32 waveforms at one sample rate.

Decoding is done by `soundfile` (libsndfile: WAV, FLAC, OGG, MP3, AIFF, ...), channels
are averaged, and the signal is resampled with torchaudio's windowed-sinc resampler.
Anything that would silently give garbage features is an `AudioError` naming the file.
"""

from __future__ import annotations

import functools
import math
import struct
from pathlib import Path
from typing import Any

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
        decoded = _read_pcm16_wav(path)
        data, rate = decoded if decoded is not None else sf.read(str(path), dtype="float32", always_2d=True)
    except sf.LibsndfileError as exc:
        raise AudioError(f"{path}: cannot decode audio ({_one_line(exc)})") from None
    except (RuntimeError, OSError, ValueError, TypeError) as exc:
        raise AudioError(f"{path}: cannot read audio ({_one_line(exc)})") from None

    return prepare_waveform(
        data, int(rate), sample_rate, source=str(path), channel_axis=1, min_samples=min_samples, silence_peak=silence_peak
    )


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
    NaN/inf samples, silence (peak below `silence_peak`) or fewer than `min_samples`
    samples after resampling.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)) or sample_rate <= 0:
        raise AudioError(f"{source}: sample_rate must be a positive integer, got {sample_rate!r}")
    if hasattr(wave, "detach"):  # a torch tensor
        wave = wave.detach().cpu().numpy()
    arr = np.asarray(wave)
    if arr.dtype.kind not in "fiu":
        raise AudioError(f"{source}: expected a numeric array, got dtype {arr.dtype}")
    if arr.dtype.kind in "iu":  # PCM integers -> [-1, 1), as soundfile decodes them
        full = float(2 ** (8 * arr.dtype.itemsize - 1))
        arr = (arr.astype(np.float64) - (full if arr.dtype.kind == "u" else 0.0)) / full
    if arr.ndim == 2:
        axis = channel_axis if channel_axis is not None else int(arr.shape[0] > arr.shape[1])
        chans = arr if axis == 0 else arr.T  # (channels, samples)
        # the mean keeps NaN/inf non-finite, so the one peak pass below still catches them
        mono = chans.mean(axis=0, dtype=np.float32) if chans.shape[0] > 1 else chans[0]
    elif arr.ndim == 1:
        mono = arr
    else:
        raise AudioError(f"{source}: must be 1-D or (channels, samples), got shape {arr.shape}")
    mono = np.ascontiguousarray(mono, dtype=np.float32)
    if mono.size == 0:
        raise AudioError(f"{source}: empty audio (0 samples)")
    peak = float(np.abs(mono).max())  # NaN or inf anywhere makes the peak non-finite: one pass
    if not math.isfinite(peak):
        bad = int((~np.isfinite(arr)).sum())
        raise AudioError(f"{source}: NaN/inf samples ({bad} of {arr.size})")
    if peak < silence_peak:
        level = "-inf" if peak == 0 else f"{20 * math.log10(peak):.1f}"
        raise AudioError(
            f"{source}: all silent (peak {level} dBFS, threshold {20 * math.log10(silence_peak):.0f} dBFS)"
        )
    out = resample(mono, int(sample_rate), int(target_rate))
    if out.shape[0] < min_samples:
        raise AudioError(
            f"{source}: too short ({mono.shape[0] / sample_rate:.3f} s; features need at least "
            f"{min_samples / target_rate:.3f} s = {min_samples} samples at {target_rate} Hz)"
        )
    return out


_PCM = 1
_EXTENSIBLE = 0xFFFE
# KSDATAFORMAT_SUBTYPE_PCM, 00000001-0000-0010-8000-00aa00389b71: other GUIDs that start
# with 0x0001 (e.g. Ambisonic B-format) are not plain PCM and libsndfile rejects them.
_SUBTYPE_PCM = bytes.fromhex("0100000000001000800000aa00389b71")


def _read_pcm16_wav(path: Path) -> tuple[np.ndarray, int] | None:
    """A plain 16-bit PCM WAV as (samples, channels) float32 and its rate; None for anything else.

    The common case of every SER corpus, read without libsndfile's per-file set-up (~5x
    faster for a 2-s clip). The samples are bit-identical to `soundfile.read(dtype="float32")`
    (int16 / 32768, an exact float32 product; see tests/test_audio.py). Any other format,
    or a header this parser does not fully understand (truncated data, streaming sizes),
    returns None and goes to soundfile, which decodes it or names the problem.
    """
    with open(path, "rb") as fh:
        head = fh.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        body = fh.read()
    pos, fmt = 0, None
    while pos + 8 <= len(body):
        chunk, size = body[pos : pos + 4], struct.unpack_from("<I", body, pos + 4)[0]
        start = pos + 8
        if chunk == b"fmt ":
            if size < 16 or start + size > len(body) or fmt is not None:  # a second fmt: ambiguous
                return None
            tag, channels, rate, _, align, bits = struct.unpack_from("<HHIIHH", body, start)
            if tag == _EXTENSIBLE:
                if size < 40 or body[start + 24 : start + 40] != _SUBTYPE_PCM:
                    return None
            elif tag != _PCM:
                return None
            if bits != 16 or channels < 1 or align != 2 * channels or rate < 1:
                return None
            fmt = (channels, rate)
        elif chunk == b"data":
            if fmt is None or start + size > len(body) or size % (2 * fmt[0]):
                return None
            pcm = np.frombuffer(body, dtype="<i2", count=size // 2, offset=start)
            data = pcm.astype(np.float32) * np.float32(1.0 / 32768.0)
            return data.reshape(-1, fmt[0]), fmt[1]
        pos = start + size + (size & 1)  # chunks are word-aligned
    return None


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__
